"""What the round generators from round 7 on share: the embedded Qwen2.5-Coder-0.5B-Instruct, a question as
the prompts show it, a chat prompt, and one round's loop (eight outputs a style, greedy or sampled), written
as id, style, options, text a line for labelling."""

import json

import torch

from mcqflow.data.ingest import ingest_split
from mcqflow.modeling.models import load_for_inference


def body(r) -> str:
    return f"{r.question}\nA. {r.options['A']}\nB. {r.options['B']}\nC. {r.options['C']}\nD. {r.options['D']}"


def chat(tok, text: str, system: str | None = None) -> str:
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


def run_round(out_path: str, split: str, styles: list, rows, seed: int, max_new_tokens: int = 256) -> None:
    """`styles`: (style, language, prompt(tok, record), temperature; 0 = greedy); `rows(k)`: the record
    indices of the k-th style, in the zh and en files of `split` alike; `max_new_tokens`: 256 through
    round 11, 512 (what `mcqflow evaluate --protocol generate` allows) from round 12."""
    torch.manual_seed(seed)
    model, tok = load_for_inference("embedded", dtype="bfloat16")
    tok.padding_side = "left"
    pools = {
        "zh": ingest_split(f"data/sample/{split}.csv", split).records,
        "en": ingest_split(f"data/sample/en/{split}.jsonl", split).records,
    }
    with open(out_path, "w", encoding="utf-8") as out:
        for k, (style, lang, make, temperature) in enumerate(styles):
            recs = [pools[lang][i] for i in rows(k)]
            enc = tok(
                [make(tok, r) for r in recs], return_tensors="pt", padding=True, add_special_tokens=False
            )
            sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
            with torch.no_grad():
                ids = model.generate(
                    **enc,
                    **(sampling if temperature else {"do_sample": False}),
                    max_new_tokens=max_new_tokens,
                )
            texts = tok.batch_decode(ids[:, enc["input_ids"].shape[1] :], skip_special_tokens=False)
            for r, t in zip(recs, texts, strict=True):
                t = t.replace(tok.pad_token, "") if tok.pad_token else t
                out.write(
                    json.dumps(
                        {"id": r.id, "style": style, "options": r.options, "text": t}, ensure_ascii=False
                    )
                )
                out.write("\n")
            out.flush()
            print(style, "done", flush=True)
