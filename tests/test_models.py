import hashlib
from pathlib import Path

import pytest

from conftest import SMALL_TINY, sample_records
from mcqflow.core.errors import UserError
from mcqflow.core.prompts import render_prompt
from mcqflow.evaluation.predict import letter_token_ids
from mcqflow.modeling.models import build_tiny, load_base_model, load_tokenizer, resolve_base, tiny_corpus


def _digest(d: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def test_tiny_build_is_deterministic(tmp_path):
    corpus = tiny_corpus(sample_records("dev"))
    a = build_tiny(corpus, tmp_path / "a", seed=3, **SMALL_TINY)
    b = build_tiny(corpus, tmp_path / "b", seed=3, **SMALL_TINY)
    c = build_tiny(corpus, tmp_path / "c", seed=4, **SMALL_TINY)
    assert _digest(a) == _digest(b)
    assert _digest(a)["model.safetensors"] != _digest(c)["model.safetensors"]


def test_qwen_style_chat_template(tiny_dir):
    tok = load_tokenizer(tiny_dir)
    rec = sample_records("dev")[0]
    text = render_prompt(tok, rec, "plain")
    assert text.startswith("<|im_start|>system\n你是一位中立")
    assert f"<|im_end|>\n<|im_start|>user\n題目：{rec.question}\nA. " in text
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert tok.eos_token == "<|im_end|>"
    assert len(set(letter_token_ids(tok))) == 4


def test_tokenizer_has_no_unknowns_for_unseen_script(tiny_dir):
    tok = load_tokenizer(tiny_dir)
    text = "关于网络安全的问题 — ✓ émoji 😀"
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_tiny_not_built_yet(tmp_path):
    with pytest.raises(UserError, match="dvc repro tiny_model"):
        resolve_base("tiny", tmp_path / "missing")


def test_missing_hub_model_says_how_to_get_it():
    with pytest.raises(
        UserError, match=r"not available on this machine: download it .*hf download Qwen/Nope-7B"
    ):
        load_base_model("Qwen/Nope-7B")


def test_missing_local_dir(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a loadable model directory"):
        load_base_model(str(tmp_path / "empty"))


def test_nf4_needs_a_gpu(tiny_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("has a GPU")
    with pytest.raises(UserError, match="nf4 needs a CUDA GPU"):
        load_base_model(tiny_dir, "nf4")
