"""SFT lifts a tiny model from chance to >= 90% on a task it can learn.

The task: the question's keyword decides the letter; option texts are random distractors. Passing proves
the chat template, completion-only loss masking, letter scoring and answer extraction fit together:
a mismatch in any of them keeps accuracy near chance."""

import pytest

from conftest import make_task
from mcqflow.evaluation.metrics import evaluate
from mcqflow.evaluation.predict import predict_records
from mcqflow.modeling.models import build_tiny, load_for_inference, tiny_corpus
from mcqflow.train.training import SFTParams, train_sft


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
