"""Round 7: real outputs of the embedded Qwen2.5-Coder-0.5B-Instruct, *sampled* (temperature 0.7-1.0, as a
GRPO policy samples; rounds 4-6 were greedy), on train questions no earlier round used (round 5 took rows 20k to 20k + 7), in eight prompt
styles none of them used (step by step in zh-Hans, a verdict for each option, letter first, an exam answer
line, markdown, a stated confidence, the project's own reasoning prompt, a plain question). For a held-out
extraction check after round 6's changes. Writes id, style, options, text a line."""

import json

import torch

from mcqflow.ingest import ingest_split
from mcqflow.models import load_for_inference
from mcqflow.prompts import render_prompt

torch.manual_seed(3)
model, tok = load_for_inference("embedded", dtype="bfloat16")
zh = ingest_split("data/sample/train.csv", "train").records
en = ingest_split("data/sample/en/train.jsonl", "train").records


def body(r):
    return f"{r.question}\nA. {r.options['A']}\nB. {r.options['B']}\nC. {r.options['C']}\nD. {r.options['D']}"


def chat(text, system=None):
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


STYLES = [  # (style, language, prompt, temperature)
    ("zh-hans-step", "zh", lambda r: chat(body(r) + "\n\n请一步一步思考，然后给出答案。"), 0.7),
    (
        "en-each",
        "en",
        lambda r: chat(body(r) + "\n\nFor each option, say whether it is right, then answer."),
        0.7,
    ),
    ("zh-letter-first", "zh", lambda r: chat(body(r) + "\n\n先寫出答案的字母，再用一句話說明理由。"), 0.7),
    ("en-exam", "en", lambda r: chat(body(r) + "\n\nAnswer:", "You are taking a multiple-choice exam."), 0.7),
    ("zh-markdown", "zh", lambda r: chat(body(r) + "\n\n請用Markdown格式作答，包括分析與結論。"), 0.7),
    (
        "en-confidence",
        "en",
        lambda r: chat(body(r) + "\n\nGive your answer and how sure you are (0-100%)."),
        0.7,
    ),
    ("zh-reasoning", "zh", lambda r: render_prompt(tok, r, "reasoning"), 1.0),
    ("en-plain-t1", "en", lambda r: chat(body(r)), 1.0),
]
with open("bench/extraction/round7-raw.jsonl", "w", encoding="utf-8") as out:
    for k, (style, lang, make, temperature) in enumerate(STYLES):
        recs = (zh if lang == "zh" else en)[20 * k + 8 : 20 * k + 16]  # round 5 took [20k, 20k + 8)
        tok.padding_side = "left"
        enc = tok([make(r) for r in recs], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            ids = model.generate(
                **enc, do_sample=True, temperature=temperature, top_p=1.0, top_k=0, max_new_tokens=256
            )
        texts = tok.batch_decode(ids[:, enc["input_ids"].shape[1] :], skip_special_tokens=False)
        for r, t in zip(recs, texts, strict=True):
            t = t.replace(tok.pad_token, "") if tok.pad_token else t
            row = {"id": r.id, "style": style, "options": r.options, "text": t}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        out.flush()
        print(style, "done", flush=True)
