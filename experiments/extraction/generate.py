"""Generate one answer-extraction round: real outputs of the embedded Qwen2.5-Coder-0.5B-Instruct on sample
questions in the round's prompt styles (rounds.yaml), written as id, style, options, text a line
(`roundN-raw.jsonl`) for labelling by hand before scoring (score.py). Offline, on a CPU (a round of 64
outputs takes minutes at 256 new tokens, longer at 512).

Usage: python experiments/extraction/generate.py ROUND [--out PATH] [--rounds rounds.yaml]
       python experiments/extraction/generate.py --plan ROUND   # the prompts only, no model"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import yaml

HERE = Path(__file__).parent


def body(r) -> str:
    return f"{r.question}\nA. {r.options['A']}\nB. {r.options['B']}\nC. {r.options['C']}\nD. {r.options['D']}"


def prompt(tok, style: dict, r, t2s=None) -> str:
    """The chat prompt of one question in one style (see rounds.yaml)."""
    if "project" in style:
        from mcqflow.core.prompts import render_prompt

        return render_prompt(tok, r, style["project"])
    text = style.get("before", "") + body(r) + style.get("after", "")
    if style.get("script") == "t2s":
        text = t2s.convert(text)
    system = [{"role": "system", "content": style["system"]}] if "system" in style else []
    return tok.apply_chat_template(
        [*system, {"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
    )


def load_rounds(path: Path = HERE / "rounds.yaml") -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def pools(split: str) -> dict:
    from mcqflow.data.ingest import ingest_split

    return {
        "zh": ingest_split(f"data/sample/{split}.csv", split).records,
        "en": ingest_split(f"data/sample/en/{split}.jsonl", split).records,
    }


def questions(spec: dict) -> list[tuple[dict, list]]:
    """Each style with its records, in the order the round generates them."""
    recs = pools(spec["split"])
    return [(style, [recs[style["lang"]][i] for i in style["rows"]]) for style in spec["styles"]]


def plan(tok, spec: dict) -> list[tuple[dict, list, list[str]]]:
    """Each style with its records and their prompts, in the order the round generates them."""
    t2s = _t2s() if any(s.get("script") == "t2s" for s in spec["styles"]) else None
    return [(style, rows, [prompt(tok, style, r, t2s) for r in rows]) for style, rows in questions(spec)]


@functools.cache
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def _sampled(model, tok, prompts: list[str], temperature: float, max_new_tokens: int) -> list[str]:
    import torch

    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
    with torch.no_grad():
        ids = model.generate(
            **enc, **(sampling if temperature else {"do_sample": False}), max_new_tokens=max_new_tokens
        )
    texts = tok.batch_decode(ids[:, enc["input_ids"].shape[1] :], skip_special_tokens=False)
    return [t.replace(tok.pad_token, "") if tok.pad_token else t for t in texts]


def run(spec: dict, out_path: Path) -> None:
    import torch

    from mcqflow.evaluation.predict import generate
    from mcqflow.modeling.models import load_for_inference

    torch.manual_seed(spec["seed"])
    model, tok = load_for_inference("embedded", dtype="bfloat16")
    if spec["decoding"] == "sample":
        tok.padding_side = "left"
    with open(out_path, "w", encoding="utf-8") as out:
        for style, recs, prompts in plan(tok, spec):
            if spec["decoding"] == "predict":
                texts = generate(model, tok, prompts, batch_size=8, max_new_tokens=spec["max_new_tokens"])
            else:
                texts = _sampled(model, tok, prompts, style["temperature"], spec["max_new_tokens"])
            for r, t in zip(recs, texts, strict=True):
                options = r.options
                if style.get("script") == "t2s":
                    options = {k: _t2s().convert(v) for k, v in options.items()}
                row = {"id": r.id, "style": style["name"], "options": options}
                row |= {"gold": r.answer} if spec.get("gold") else {}
                out.write(json.dumps(row | {"text": t}, ensure_ascii=False) + "\n")
            out.flush()
            print(style["name"], "done", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("round", type=int, help="the round's number (rounds.yaml's roundN)")
    ap.add_argument("--out", help="default: experiments/extraction/roundN-raw.jsonl")
    ap.add_argument("--rounds", default=str(HERE / "rounds.yaml"))
    ap.add_argument("--plan", action="store_true", help="print the prompts as JSON lines; load no model")
    a = ap.parse_args()
    spec = load_rounds(Path(a.rounds))[f"round{a.round}"]
    if a.plan:
        from mcqflow.modeling.embedded import ensure
        from mcqflow.modeling.models import load_tokenizer

        tok = load_tokenizer(ensure())
        for style, recs, prompts in plan(tok, spec):
            for r, p in zip(recs, prompts, strict=True):
                print(json.dumps({"id": r.id, "style": style["name"], "prompt": p}, ensure_ascii=False))
        return
    run(spec, Path(a.out or HERE / f"round{a.round}-raw.jsonl"))


if __name__ == "__main__":
    main()
