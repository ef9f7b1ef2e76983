"""Round 9: real outputs of the embedded Qwen2.5-Coder-0.5B-Instruct on train questions no earlier round used
(rounds 5 and 7 took rows 20k to 20k + 15; this takes 20k + 16 to 20k + 19), in eight prompt styles none of
them used (a teacher in zh-Hans, one sentence, elimination, "which would you pick and why" in zh and en, a
student's explanation, True/False per option, a terse system prompt), half greedy and half sampled at
temperature 0.7. Generated after round 8's changes, read once, not tuned on: a held-out check of them.
Writes id, style, options, text a line."""

import json

import torch

from mcqflow.ingest import ingest_split
from mcqflow.models import load_for_inference

torch.manual_seed(5)
model, tok = load_for_inference("embedded", dtype="bfloat16")
zh = ingest_split("data/sample/train.csv", "train").records
en = ingest_split("data/sample/en/train.jsonl", "train").records
ROWS = [20 * b + i for b in range(8) for i in range(16, 20)]  # 32 rows no round used


def body(r):
    return f"{r.question}\nA. {r.options['A']}\nB. {r.options['B']}\nC. {r.options['C']}\nD. {r.options['D']}"


def chat(text, system=None):
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


STYLES = [  # (style, language, prompt, temperature; 0 = greedy)
    ("zh-hans-teacher", "zh", lambda r: chat(body(r) + "\n\n请解释并作答。", "你是一名高中老师。"), 0.0),
    ("zh-one-sentence", "zh", lambda r: chat(body(r) + "\n\n請用一句話回答。"), 0.7),
    ("zh-eliminate", "zh", lambda r: chat(body(r) + "\n\n請用排除法作答。"), 0.0),
    ("zh-pick-why", "zh", lambda r: chat(body(r) + "\n\n你會選哪一個？為什麼？"), 0.7),
    (
        "en-student",
        "en",
        lambda r: chat(body(r) + "\n\nExplain it to a high-school student, then answer."),
        0.0,
    ),
    ("en-pick-why", "en", lambda r: chat(body(r) + "\n\nWhich would you pick, and why?"), 0.7),
    (
        "en-true-false",
        "en",
        lambda r: chat(body(r) + "\n\nMark each option True or False, then answer."),
        0.0,
    ),
    ("en-terse", "en", lambda r: chat(body(r), "Answer multiple-choice questions tersely."), 0.7),
]
with open("bench/extraction/round9-raw.jsonl", "w", encoding="utf-8") as out:
    for k, (style, lang, make, temperature) in enumerate(STYLES):
        pool = zh if lang == "zh" else en
        recs = [pool[i] for i in ROWS[8 * (k % 4) : 8 * (k % 4) + 8]]
        tok.padding_side = "left"
        enc = tok([make(r) for r in recs], return_tensors="pt", padding=True, add_special_tokens=False)
        sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
        with torch.no_grad():
            ids = model.generate(
                **enc, **(sampling if temperature else {"do_sample": False}), max_new_tokens=256
            )
        texts = tok.batch_decode(ids[:, enc["input_ids"].shape[1] :], skip_special_tokens=False)
        for r, t in zip(recs, texts, strict=True):
            t = t.replace(tok.pad_token, "") if tok.pad_token else t
            row = {"id": r.id, "style": style, "options": r.options, "text": t}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        out.flush()
        print(style, "done", flush=True)
