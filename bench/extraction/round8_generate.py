"""Round 8: real outputs of the embedded Qwen2.5-Coder-0.5B-Instruct on dev questions no earlier round used
(round 4 took rows 0-23), in eight prompt styles none of them used (an examinee's system prompt, a
comparison, zh-Hans in brief, reasons for and against, a teacher's system prompt, JSON, one line, a
ranking), half greedy and half sampled at temperature 0.7. Generated before round 7's fixes were written
and read only after them: a held-out check of those fixes. Writes id, style, options, text a line."""

import json

import torch

from mcqflow.ingest import ingest_split
from mcqflow.models import load_for_inference

torch.manual_seed(4)
model, tok = load_for_inference("embedded", dtype="bfloat16")
zh = ingest_split("data/sample/dev.csv", "dev").records
en = ingest_split("data/sample/en/dev.jsonl", "dev").records


def body(r):
    return f"{r.question}\nA. {r.options['A']}\nB. {r.options['B']}\nC. {r.options['C']}\nD. {r.options['D']}"


def chat(text, system=None):
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


STYLES = [  # (style, language, prompt, temperature; 0 = greedy)
    ("zh-examinee", "zh", lambda r: chat(body(r), "你是一名正在參加考試的考生，請選出答案並說明。"), 0.0),
    ("zh-compare", "zh", lambda r: chat(body(r) + "\n\n請比較各選項後作答。"), 0.7),
    ("zh-hans-brief", "zh", lambda r: chat(body(r) + "\n\n请简要回答。"), 0.0),
    (
        "zh-for-against",
        "zh",
        lambda r: chat(body(r) + "\n\n請先列出每個選項的支持與反對理由，再選出最佳答案。"),
        0.7,
    ),
    (
        "en-teacher",
        "en",
        lambda r: chat(body(r), "You are a civics teacher explaining the answer to a student."),
        0.0,
    ),
    (
        "en-json",
        "en",
        lambda r: chat(body(r) + "\n\nRespond in JSON with the keys answer and explanation."),
        0.7,
    ),
    ("en-one-line", "en", lambda r: chat(body(r) + "\n\nAnswer in one line."), 0.0),
    (
        "en-rank",
        "en",
        lambda r: chat(body(r) + "\n\nRank the options from best to worst, then state your answer."),
        0.7,
    ),
]
with open("bench/extraction/round8-raw.jsonl", "w", encoding="utf-8") as out:
    for k, (style, lang, make, temperature) in enumerate(STYLES):
        recs = (zh if lang == "zh" else en)[24 + 8 * (k % 4) : 32 + 8 * (k % 4)]
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
