"""Round 6: real outputs of the embedded Qwen2.5-Coder-0.5B-Instruct on test questions in six more prompt
styles (system prompts, elimination, a final-line format, one-sentence answers, JSON in Chinese), for a
held-out extraction check after round 5's changes. Writes id, style, options, text a line."""

import json

import torch

from mcqflow.data.ingest import ingest_split
from mcqflow.evaluation.predict import generate
from mcqflow.modeling.models import load_for_inference

torch.manual_seed(2)
model, tok = load_for_inference("embedded", dtype="bfloat16")
zh = ingest_split("data/sample/test.csv", "test").records
en = ingest_split("data/sample/en/test.jsonl", "test").records


def body(r):
    return f"{r.question}\nA. {r.options['A']}\nB. {r.options['B']}\nC. {r.options['C']}\nD. {r.options['D']}"


def chat(text, system=None):
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


STYLES = [
    ("zh-teacher", "zh", lambda r: chat("請作答並解釋。\n\n" + body(r), "你是一位公民與社會科的老師。")),
    ("en-brief", "en", lambda r: chat(body(r) + "\n\nWhich option is correct? Reply in one sentence.")),
    ("zh-json", "zh", lambda r: chat(body(r) + "\n\n以JSON格式回答，包含 answer 和 reason 兩個欄位。")),
    (
        "en-eliminate",
        "en",
        lambda r: chat(body(r) + "\n\nEliminate the wrong options one by one, then give the final answer."),
    ),
    (
        "zh-final-line",
        "zh",
        lambda r: chat(body(r) + "\n\n請簡要分析，最後一行寫「最終答案：」加上選項字母。"),
    ),
    (
        "en-system-cot",
        "en",
        lambda r: chat(body(r), "You are a careful exam taker. Show your reasoning, then answer."),
    ),
]
with open("experiments/extraction/round6-raw.jsonl", "w", encoding="utf-8") as out:
    for k, (style, lang, make) in enumerate(STYLES):
        recs = (zh if lang == "zh" else en)[10 * k : 10 * k + 8]
        texts = generate(model, tok, [make(r) for r in recs], batch_size=8, max_new_tokens=256)
        for r, t in zip(recs, texts, strict=True):
            row = {"id": r.id, "style": style, "options": r.options, "text": t}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        out.flush()
        print(style, "done", flush=True)
