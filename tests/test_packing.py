"""Padding-free SFT (the `fast` profile's `padding_free` lever) trains what padded batches train."""

import dataclasses
import json

import torch

from conftest import sample_records
from mcqflow.train.fast import packing
from mcqflow.train.profiles import PROFILES
from mcqflow.train.training import SFTParams, train_sft


def _ragged_records():
    recs = sample_records("train")[:12]
    # Lengths far apart, so that padded rows hold a lot of padding and a leak across examples would show.
    return [dataclasses.replace(r, question=r.question * (1 + i % 4)) for i, r in enumerate(recs)]


def test_packed_batches_train_the_same_weights_as_padded_ones(tiny_dir, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    calls = []
    real = packing.varlen_attention
    run = ["padded"]
    monkeypatch.setattr(
        packing, "varlen_attention", lambda *a, **k: calls.append((run[0], k)) or real(*a, **k)
    )
    params = SFTParams(
        finetune="full",
        learning_rate=1e-3,
        num_train_epochs=1,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        max_length=512,
        lr_scheduler_type="constant",
    )
    records = _ragged_records()
    # Packed rows padded to a multiple of 64 tokens: the pad tokens are segments of their own, without loss.
    rounded = dataclasses.replace(params, trainer={"pad_to_multiple_of": 64})
    out, metrics = {}, {}
    for name, free, p in (("padded", False, params), ("packed", True, params), ("rounded", True, rounded)):
        profile = dataclasses.replace(PROFILES["cpu"], padding_free=free)
        run[0] = name
        metrics[name] = train_sft(records, "plain", tiny_dir, tmp_path / name, p, profile=profile)
        out[name] = load_file(tmp_path / name / "model.safetensors")
    assert (metrics["padded"]["padding_free"], metrics["packed"]["padding_free"]) == (False, True)
    seen = {name: [k["cu_seq_lens_q"] for n, k in calls if n == name] for name in metrics}
    assert not seen["padded"]
    assert seen["packed"] and all(len(cu) == 5 for cu in seen["packed"])  # 4 examples a row, packed
    assert seen["rounded"] and all(int(cu[-1]) % 64 == 0 for cu in seen["rounded"])
    assert any(len(cu) > 5 for cu in seen["rounded"])  # pad tokens as segments after the 4 examples
    for name in ("packed", "rounded"):
        assert abs(metrics[name]["train_loss"] - metrics["padded"]["train_loss"]) < 1e-5, name
    start = load_file(f"{tiny_dir}/model.safetensors")
    moved = 0.0
    for k, w in out["padded"].items():
        torch.testing.assert_close(out["packed"][k], w, rtol=0, atol=2e-5)
        torch.testing.assert_close(out["rounded"][k], w, rtol=0, atol=2e-5)
        moved = max(moved, (w - start[k]).abs().max().item())
    assert moved > 1e-3
    # The saved model loads with its own attention, not the training-only packed one.
    assert packing.ATTENTION not in json.dumps(json.loads((tmp_path / "packed" / "config.json").read_text()))


def test_examples_do_not_attend_across_their_bounds():
    """Each example's output depends on its own tokens alone: changing the first example leaves the second's
    attention output unchanged (padding-free attention with a leak would not)."""
    torch.manual_seed(0)
    heads, kv_heads, dim = 4, 2, 8
    cu = torch.tensor([0, 5, 12], dtype=torch.int32)

    def run(q, k, v):
        module = torch.nn.Module()
        out, _ = packing.varlen_attention(module, q, k, v, None, cu_seq_lens_q=cu, max_length_q=7)
        return out

    q = torch.randn(1, heads, 12, dim)
    k, v = torch.randn(1, kv_heads, 12, dim), torch.randn(1, kv_heads, 12, dim)
    a = run(q, k, v)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, :5] += 3.0
    v2[:, :, :5] -= 2.0
    b = run(q, k2, v2)
    assert a.shape == (1, 12, heads, dim)
    torch.testing.assert_close(a[:, 5:], b[:, 5:])
    assert not torch.allclose(a[:, :5], b[:, :5])
    # Causal within an example: the second example's first token sees only itself.
    expected = v[0, :, 5].repeat_interleave(heads // kv_heads, dim=0)
    torch.testing.assert_close(a[0, 5], expected)
