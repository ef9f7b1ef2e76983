"""SFT lifts a tiny model from chance to >= 90% on a task it can learn.

The task: the question's keyword decides the letter; option texts are random distractors. Passing proves
the chat template, completion-only loss masking, letter scoring and answer extraction fit together:
a mismatch in any of them keeps accuracy near chance."""

import random

import pytest

from mcqflow.metrics import evaluate
from mcqflow.models import build_tiny, load_for_inference, tiny_corpus
from mcqflow.predict import predict_records
from mcqflow.schema import LETTERS, Record
from mcqflow.training import SFTParams, train_sft

KEYWORDS = {"A": ["蘋果", "火車"], "B": ["香蕉", "輪船"], "C": ["葡萄", "飛機"], "D": ["西瓜", "汽車"]}
PREFIX = ["請問", "關於", "有人提到", "在課堂上討論", "新聞報導了", "老師問到"]
SUFFIX = ["的問題應如何看待？", "這件事的看法為何？", "時，哪一項正確？", "的說法，下列何者為是？"]
FILLER = ["社會", "經濟", "文化", "歷史", "法律", "教育", "環境", "科技", "媒體", "制度", "權利", "政策"]


def make_task(n: int, seed: int) -> list[Record]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        gold = LETTERS[rng.randrange(4)]
        question = rng.choice(PREFIX) + "「" + rng.choice(KEYWORDS[gold]) + "」" + rng.choice(SUFFIX)
        texts = rng.sample(FILLER, 4)
        out.append(
            Record(
                id=f"s{seed}-{i}",
                question=question,
                options=dict(zip(LETTERS, texts, strict=True)),
                answer=gold,
                lang="zh",
            )
        )
    return out


@pytest.mark.slow
def test_sft_lifts_dev_accuracy_from_chance(tmp_path):
    train, dev = make_task(240, seed=1), make_task(80, seed=2)
    base = str(build_tiny(tiny_corpus(train), tmp_path / "tiny", seed=0))
    model, tok = load_for_inference(base)
    before = evaluate(predict_records(dev, model, tok, "letter", "plain"))["accuracy"]

    params = SFTParams(
        finetune="full",
        learning_rate=1e-3,
        num_train_epochs=4,
        per_device_train_batch_size=8,
        gradient_accumulation_steps=1,
        max_length=256,
        lr_scheduler_type="linear",
    )
    train_sft(train, "plain", base, tmp_path / "sft", params, seed=0)
    model, tok = load_for_inference(str(tmp_path / "sft"))
    letter = predict_records(dev, model, tok, "letter", "plain")
    generated = predict_records(dev, model, tok, "generate", "plain", max_new_tokens=4)

    assert before <= 0.45, f"untrained model should be near chance, got {before}"
    assert evaluate(letter)["accuracy"] >= 0.9
    m = evaluate(generated)
    assert m["accuracy"] >= 0.9 and m["fallbacks"] == 0
    # the model ends its answer where the template does: the output is the letter alone
    assert sum(p.method == "letter" for p in generated) >= 0.9 * len(dev)
