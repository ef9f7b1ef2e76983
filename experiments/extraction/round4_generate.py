"""Round 4: real outputs of the embedded Qwen2.5-Coder-0.5B-Instruct on dev questions in six prompt styles
for a held-out extraction check. Writes one JSON line per output: id, style, options, text."""

import json
import sys

import torch

from mcqflow.data.ingest import ingest_split
from mcqflow.evaluation.predict import generate
from mcqflow.modeling.models import load_for_inference

torch.manual_seed(0)
model, tok = load_for_inference("embedded", dtype="bfloat16")
zh = ingest_split("data/sample/dev.csv", "dev").records
en = ingest_split("data/sample/en/dev.jsonl", "dev").records
STYLES = {
    "zh-explain": (
        "zh",
        "請回答下面的單選題，先簡短說明理由，再給出答案。\n\n{q}\nA. {A}\nB. {B}\nC. {C}\nD. {D}",
    ),
    "zh-simplified": (
        "zh",
        "请回答下面的选择题，并说明你选择的理由。\n\n{q}\nA. {A}\nB. {B}\nC. {C}\nD. {D}",
    ),
    "en-explain": (
        "en",
        "Answer the following multiple-choice question. Explain briefly, then state your answer.\n\n{q}\nA. {A}\nB. {B}\nC. {C}\nD. {D}",
    ),
    "en-cot": ("en", "{q}\nA. {A}\nB. {B}\nC. {C}\nD. {D}\n\nLet's think step by step."),
    "zh-bare": ("zh", "{q}\nA. {A}\nB. {B}\nC. {C}\nD. {D}"),
    "en-json": (
        "en",
        '{q}\nA. {A}\nB. {B}\nC. {C}\nD. {D}\n\nReply in JSON with the fields "reason" and "answer".',
    ),
}
n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
out = open(sys.argv[2] if len(sys.argv) > 2 else "experiments/extraction/round4-raw.jsonl", "w", encoding="utf-8")  # noqa: SIM115
for style, (lang, tmpl) in STYLES.items():
    recs = (
        (zh if lang == "zh" else en)[:n]
        if style in ("zh-explain", "en-explain")
        else (zh if lang == "zh" else en)[n : 2 * n]
        if style in ("zh-simplified", "en-cot")
        else (zh if lang == "zh" else en)[2 * n : 3 * n]
    )
    prompts = [
        tok.apply_chat_template(
            [{"role": "user", "content": tmpl.format(q=r.question, **r.options)}],
            tokenize=False,
            add_generation_prompt=True,
        )
        for r in recs
    ]
    texts = generate(model, tok, prompts, batch_size=8, max_new_tokens=160)
    for r, t in zip(recs, texts, strict=True):
        out.write(
            json.dumps(
                {"id": r.id, "style": style, "options": r.options, "gold": r.answer, "text": t},
                ensure_ascii=False,
            )
            + "\n"
        )
    out.flush()
    print(style, "done", flush=True)
