"""Write the sample data in data/sample/ (committed; re-run to regenerate byte-identically).

The questions are composed from a small bilingual concept bank written for this project
(scripts/concept_bank.json): 15 topics x 5 concepts, each with a name and a one-sentence definition in Traditional Chinese and English. Five
question forms (factual, conceptual, analytical, comparative, evaluative) turn them into questions whose
correct option really is correct, and whose reasoning chain says why each option is or is not.

Files, in the formats users have (see src/mcqflow/data/ingest.py):
  train.csv   Kaggle #2/#3 reasoning format (題目,選項A..D,正確答案,推理正確答案) + 主題,難度,題型
  dev.csv     Kaggle #1 train format (ID,question,option_A..D,answer) with messy answers and one NaN
  test.csv    Kaggle test format (ID,Question,Option A..D) with the real files' quirks, no answers
  en/*.jsonl  English counterparts as canonical records, same ids

Usage: python scripts/make_sample.py [--out data/sample]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

import opencc

from mcqflow.core.reasoning import build_chain

# The concept bank, a data file beside this script: (topic zh, topic en, [(name zh, name en, definition zh,
# definition en), ...]), and the stances evaluative questions offer, as (zh, en) pairs.
_BANK = json.loads(Path(__file__).with_name("concept_bank.json").read_text(encoding="utf-8"))
BANK = [
    (t["zh"], t["en"], [(c["zh"], c["en"], c["definition_zh"], c["definition_en"]) for c in t["concepts"]])
    for t in _BANK["topics"]
]
BALANCED = [(x["zh"], x["en"]) for x in _BANK["balanced"]]
ONE_SIDED = [(x["zh"], x["en"]) for x in _BANK["one_sided"]]
FORMS = {  # form -> (qtype, difficulty)
    "factual": ("事實性", "基礎"),
    "conceptual": ("概念性", "基礎"),
    "analytical": ("分析性", "中級"),
    "comparative": ("比較性", "中級"),
    "evaluative": ("評估性", "高級"),
}
LETTERS = "ABCD"


def compose(topic, concepts, i, form, gold, rng):
    """One question in both languages: (zh dict, en dict), the correct option placed at `gold`."""
    tz, te = topic
    nz, ne, dz, de = concepts[i]
    others = [j for j in range(len(concepts)) if j != i]
    rng.shuffle(others)
    picks = others[:3]
    if form == "factual":
        qz, qe = f"下列哪一項最準確地描述了「{nz}」？", f"Which of the following best describes {ne}?"
        correct, wrong = (dz, de), [(concepts[j][2], concepts[j][3]) for j in picks]
        labels = [(concepts[j][0], concepts[j][1]) for j in picks]
    elif form in ("conceptual", "analytical"):
        if form == "conceptual":
            qz, qe = (
                f"「{dz}」，這段描述指的是哪一個概念？",
                f"\u201c{de[0].upper() + de[1:]}\u201d: which concept is this?",
            )
        else:
            qz = f"在{tz}的討論中，有人主張應關注「{dz}」，他談的是下列哪一個概念？"
            qe = f"In a debate on {te}, someone says we should look at {de}. Which concept are they talking about?"
        correct, wrong = (nz, ne), [(concepts[j][0], concepts[j][1]) for j in picks]
        labels = wrong
    elif form == "comparative":
        o = picks[0]
        qz = f"比較「{nz}」與「{concepts[o][0]}」，下列哪一項描述屬於「{nz}」？"
        qe = f"Comparing {ne} with {concepts[o][1]}, which statement describes {ne}?"
        correct, wrong = (dz, de), [(concepts[j][2], concepts[j][3]) for j in picks]
        labels = [(concepts[j][0], concepts[j][1]) for j in picks]
    else:  # evaluative
        qz = f"討論「{nz}」這類具爭議的{tz}議題時，下列哪一種態度最為客觀、中立？"
        qe = f"When discussing a contested {te} issue such as {ne}, which attitude is the most objective and neutral?"
        correct = BALANCED[i % len(BALANCED)]
        bad = rng.sample(ONE_SIDED, 3)
        wrong = [(z.format(n=nz), e.format(n=ne)) for z, e in bad]
        labels = None
    slots = [None] * 4
    slots[LETTERS.index(gold)] = (correct, None)
    rest = [k for k in range(4) if slots[k] is None]
    for k, w, lab in zip(rest, wrong, labels or [None] * 3, strict=True):
        slots[k] = (w, lab)
    opts_z = {LETTERS[k]: slots[k][0][0] for k in range(4)}
    opts_e = {LETTERS[k]: slots[k][0][1] for k in range(4)}
    chain_z = chain_zh(qz, tz, nz, form, slots, gold)
    chain_e = chain_en(qe, te, ne, form, slots, gold)
    meta = {"topic": tz, "qtype": FORMS[form][0], "difficulty": FORMS[form][1]}
    return (
        {"question": qz, "options": opts_z, "answer": gold, "reasoning": chain_z, **meta},
        {"question": qe, "options": opts_e, "answer": gold, "reasoning": chain_e, **meta},
    )


def chain_zh(q, topic, name, form, slots, gold):
    if form == "evaluative":
        looks = [
            f"選項{LETTERS[k]}{'兼顧多方觀點並以證據為依據' if LETTERS[k] == gold else '採取絕對化或情緒化的立場'}"
            for k in range(4)
        ]
        think = f"這是一道關於{topic}的評估題，要判斷哪一種態度最中立。"
    elif form in ("conceptual", "analytical"):
        looks = [f"選項{LETTERS[k]}是「{slots[k][0][0]}」" for k in range(4)]
        think = f"這是一道關於{topic}的{FORMS[form][0]}題，要找出與描述相符的概念。"
    else:
        looks = [
            f"選項{LETTERS[k]}描述的是「{name if slots[k][1] is None else slots[k][1][0]}」" for k in range(4)
        ]
        think = f"這是一道關於{topic}的{FORMS[form][0]}題，要辨明「{name}」的含義。"
    steps = [
        "理解題目要求，找出關鍵概念。",
        "逐一檢視選項：" + "；".join(looks) + "。",
        f"只有選項{gold}符合題意，其餘選項與題目不符。",
    ]
    return build_chain(
        q,
        think,
        steps,
        "本題涉及公共議題，答案依據概念的通行定義與證據判斷，沒有偏向任何立場。",
        f"無需調整，維持選項{gold}。",
        gold,
    )


def chain_en(q, topic, name, form, slots, gold):
    if form == "evaluative":
        looks = [
            f"option {LETTERS[k]} "
            + (
                "weighs several views on evidence"
                if LETTERS[k] == gold
                else "takes an absolute or emotional stance"
            )
            for k in range(4)
        ]
        think = f"An evaluative question on {topic}: which attitude is the most neutral?"
    elif form in ("conceptual", "analytical"):
        looks = [f"option {LETTERS[k]} is {slots[k][0][1]}" for k in range(4)]
        think = f"A question on {topic}: find the concept that matches the description."
    else:
        looks = [
            f"option {LETTERS[k]} describes {name if slots[k][1] is None else slots[k][1][1]}"
            for k in range(4)
        ]
        think = f"A question on {topic}: what does {name} mean?"
    steps = [
        "Read the question and find the key concept.",
        "Check each option: " + "; ".join(looks) + ".",
        f"Only option {gold} fits the question; the others do not.",
    ]
    return build_chain(
        q,
        think,
        steps,
        "The topic is a public issue; the answer rests on the accepted definition and evidence, taking no side.",
        f"No change needed; keep option {gold}.",
        gold,
    )


def make(seed: int = 2024):
    rng = random.Random(seed)
    items = []
    for t, (_, _, concepts) in enumerate(BANK):
        for i in range(len(concepts)):
            middle = "conceptual" if i % 2 == 0 else "analytical"
            for form in ("factual", middle, "comparative", "evaluative"):
                items.append((t, i, form))
    rng.shuffle(items)
    splits = {"train": items[:180], "dev": items[180:240], "test": items[240:300]}
    out = {}
    for split, chosen in splits.items():
        pairs = []
        for n, (t, i, form) in enumerate(chosen):
            tz, te, concepts = BANK[t]
            gold = LETTERS[n % 4]  # balanced by construction
            pairs.append(compose((tz, te), concepts, i, form, gold, rng))
        out[split] = pairs
    return out


def write(out_dir: Path, seed: int = 2024) -> None:
    data = make(seed)
    rng = random.Random(seed + 1)
    t2s = opencc.OpenCC("t2s")
    (out_dir / "en").mkdir(parents=True, exist_ok=True)

    # train: Kaggle #2/#3 reasoning format, no id column (ingest numbers rows train-00001, ...)
    with (out_dir / "train.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(
            ["題目", "選項A", "選項B", "選項C", "選項D", "正確答案", "推理正確答案", "主題", "難度", "題型"]
        )
        for z, _ in data["train"]:
            o = z["options"]
            w.writerow(
                [
                    z["question"],
                    o["A"],
                    o["B"],
                    o["C"],
                    o["D"],
                    z["answer"],
                    z["reasoning"],
                    z["topic"],
                    z["difficulty"],
                    z["qtype"],
                ]
            )
    train_ids = [f"train-{n:05d}" for n in range(1, len(data["train"]) + 1)]

    # dev: Kaggle #1 train format; answers as people type them, plus one row with no answer
    messy = ["{}", " {}", "{}.", "{}", "({})", "{} "]
    with (out_dir / "dev.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["ID", "question", "option_A", "option_B", "option_C", "option_D", "answer"])
        for n, (z, _) in enumerate(data["dev"], 1):
            o = z["options"]
            ans = messy[n % len(messy)].format(z["answer"].lower() if n % 7 == 0 else z["answer"])
            w.writerow([f"dev-{n:03d}", z["question"], o["A"], o["B"], o["C"], o["D"], ans])
        z = data["dev"][0][0]
        w.writerow(["dev-999", z["question"] + "（答案缺失）", *z["options"].values(), "nan"])
    dev_ids = [f"dev-{n:03d}" for n in range(1, len(data["dev"]) + 1)]

    # test: Kaggle test format with the quirks real files have
    rows = []
    for n, (z, _) in enumerate(data["test"], 1):
        q, o = z["question"], dict(z["options"])
        if n % 9 == 0:
            q, o = t2s.convert(q), {k: t2s.convert(v) for k, v in o.items()}  # a few Simplified rows
        if n % 5 == 0:
            o = {k: f"{k}. {v}" for k, v in o.items()}
        elif n % 7 == 0:
            o = {k: f"({k}) {v}" for k, v in o.items()}
        elif n % 11 == 0:
            o = {k: f"{k}．{v}" for k, v in o.items()}
        if n % 4 == 0:
            q, o = f"  {q} ", {k: f" {v}  " for k, v in o.items()}
        rows.append([str(n), q, o["A"], o["B"], o["C"], o["D"], "", ""])
    test_ids = [r[0] for r in rows]
    for dup in rng.sample(range(len(rows)), 2):  # the same question under a second ID
        rows.append([str(len(rows) + 1), *rows[dup][1:]])
        test_ids.append(rows[-1][0])
    with (out_dir / "test.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["ID", "Question", "Option A", "Option B", "Option C", "Option D", "", ""])
        w.writerows(rows)

    # English counterparts, canonical records with the same ids
    for split, ids in (("train", train_ids), ("dev", dev_ids), ("test", test_ids)):
        with (out_dir / "en" / f"{split}.jsonl").open("w", encoding="utf-8") as f:
            for n, rid in enumerate(ids):
                if split == "test" and n >= len(data["test"]):
                    # duplicates: find the zh row they copy and reuse its English text
                    src = next(k for k in range(len(data["test"])) if rows[k][1:] == rows[n][1:])
                    e = data["test"][src][1]
                else:
                    e = data[split][n][1]
                rec = {
                    "id": rid,
                    "question": e["question"],
                    "options": e["options"],
                    "answer": None if split == "test" else e["answer"],
                    "lang": "en",
                    "topic": e["topic"],
                    "difficulty": e["difficulty"],
                    "qtype": e["qtype"],
                    "reasoning": e["reasoning"] if split == "train" else None,
                    "source": f"en/{split}.jsonl",
                }
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")


# How mcqflow reads the folder (mcqflow.data.datasets)
DATASET_YAML = """# How mcqflow reads this folder (mcqflow.data.datasets): the default, data.source: data/sample.
# Synthetic (scripts/make_sample.py, 75 concepts): dev gold answers appear in train by construction.
name: sample
format: files               # one file per split in any format ingest reads (mcqflow.data.ingest)
script: hant                # Traditional Chinese
split_by: files
langs:
  zh: {train: train.csv, dev: dev.csv, test: test.csv}
  en: {train: en/train.jsonl, dev: en/dev.jsonl, test: en/test.jsonl}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/sample")
    ap.add_argument("--seed", type=int, default=2024)
    a = ap.parse_args()
    write(Path(a.out), a.seed)
    (Path(a.out) / "dataset.yaml").write_text(DATASET_YAML, encoding="utf-8")


if __name__ == "__main__":
    main()
