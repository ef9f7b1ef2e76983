"""Round 5: fresh real outputs of the embedded model (train-split questions, other prompt styles)."""

import json

import opencc
import torch

from mcqflow.core.prompts import render_prompt
from mcqflow.data.ingest import ingest_split
from mcqflow.evaluation.predict import generate
from mcqflow.modeling.models import load_for_inference

torch.manual_seed(1)
model, tok = load_for_inference("embedded", dtype="bfloat16")
zh = ingest_split("data/sample/train.csv", "train").records
en = ingest_split("data/sample/en/train.jsonl", "train").records
t2s = opencc.OpenCC("t2s")


def body(r):
    return f"{r.question}\nA. {r.options['A']}\nB. {r.options['B']}\nC. {r.options['C']}\nD. {r.options['D']}"


def chat(text):
    return tok.apply_chat_template(
        [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
    )


STYLES = [
    ("zh-cot", "zh", lambda r: chat("請一步一步思考，最後用「答案：X」的格式回答。\n\n" + body(r))),
    ("en-final", "en", lambda r: chat(body(r) + "\n\nThink it through, then finish with 'The answer is X'.")),
    ("zh-reasoning", "zh", lambda r: render_prompt(tok, r, "reasoning")),
    ("en-plain", "en", lambda r: render_prompt(tok, r, "plain")),
    ("zh-letter", "zh", lambda r: chat(body(r) + "\n\n只回答選項字母。")),
    ("en-letter", "en", lambda r: chat(body(r) + "\n\nAnswer with the letter only.")),
    ("zh-hans", "zh", lambda r: chat(t2s.convert("請回答以下選擇題並簡要說明。\n\n" + body(r)))),
    (
        "en-markdown",
        "en",
        lambda r: chat(body(r) + "\n\nAnswer in markdown: a short analysis, then a heading '## Answer'."),
    ),
]
out = open("experiments/extraction/round5-raw.jsonl", "w", encoding="utf-8")  # noqa: SIM115
for k, (style, lang, make) in enumerate(STYLES):
    recs = (zh if lang == "zh" else en)[20 * k : 20 * k + 8]
    texts = generate(model, tok, [make(r) for r in recs], batch_size=8, max_new_tokens=256)
    for r, t in zip(recs, texts, strict=True):
        opts = {k2: (t2s.convert(v) if style == "zh-hans" else v) for k2, v in r.options.items()}
        out.write(
            json.dumps(
                {"id": r.id, "style": style, "options": opts, "gold": r.answer, "text": t}, ensure_ascii=False
            )
            + "\n"
        )
    out.flush()
    print(style, "done", flush=True)
