"""The fused attention projections (`fused_qkv`: q's, k's and v's LoRA layers as one function) compute what
PEFT's modules compute, with the same dropout masks; the FP8 path takes q, k and v as one product."""

import functools

import pytest
import torch

from mcqflow.train.fast.lora_fused import _LoraLinear, fuse_lora
from mcqflow.train.fast.lora_qkv import NAMES, _attention_forward, _LoraQKV, fuse_qkv, routed
from mcqflow.train.fast.lora_swiglu import fuse_swiglu
from test_lora_fused import _batch, _fp8_step_beside_bf16, _loss_and_grads, _policy
from test_lora_swiglu import _counting, _forward_outside_training


def _attentions(model):
    return [m for m in model.modules() if all(hasattr(m, n) for n in NAMES)]


@pytest.mark.parametrize("dropout", [0.0, 0.05, 0.5])
def test_the_fused_projections_give_peft_s_loss_and_adapter_gradients(tiny_dir, dropout, monkeypatch):
    batch = _batch(tiny_dir)
    plain, fused = _policy(tiny_dir, dropout), _policy(tiny_dir, dropout)
    n_layers = fused.get_base_model().config.num_hidden_layers
    assert all(getattr(a, n).get_base_layer().bias is not None for a in _attentions(fused) for n in NAMES)
    fuse_lora(fused)
    assert fuse_qkv(fused) == n_layers
    assert fuse_qkv(fused) == 0  # (once)
    attentions, layers = _counting(monkeypatch, _LoraQKV), _counting(monkeypatch, _LoraLinear)
    got_loss, got = _loss_and_grads(fused, batch, seed=3)
    assert len(attentions) == n_layers and len(layers) == 4 * n_layers  # o, gate, up, down
    assert all(a._qkv_slot == {} for a in _attentions(fused))  # nothing kept past the forward
    monkeypatch.undo()
    want_loss, want = _loss_and_grads(plain, batch, seed=3)  # the same seed: the same dropout masks
    assert got_loss == pytest.approx(want_loss, rel=1e-6)
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-6, msg=name)
    if dropout:  # another seed draws other masks: the equality above is the masks', not a coincidence
        other_loss, _ = _loss_and_grads(plain, batch, seed=4)
        assert other_loss != pytest.approx(want_loss, rel=1e-6)


def test_with_the_fused_mlp_too_only_o_and_down_stay_single_layers(tiny_dir, monkeypatch):
    batch = _batch(tiny_dir)
    plain, fused = _policy(tiny_dir, 0.05), _policy(tiny_dir, 0.05)
    n_layers = fused.get_base_model().config.num_hidden_layers
    fuse_lora(fused)
    fuse_qkv(fused)
    fuse_swiglu(fused)
    layers = _counting(monkeypatch, _LoraLinear)
    got_loss, got = _loss_and_grads(fused, batch, seed=1)
    assert len(layers) == 2 * n_layers
    monkeypatch.undo()
    want_loss, want = _loss_and_grads(plain, batch, seed=1)
    assert got_loss == pytest.approx(want_loss, rel=1e-6)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-6, msg=name)


def test_eval_no_grad_and_a_disabled_adapter_run_the_attention_s_own_forward(tiny_dir, monkeypatch):
    model = _policy(tiny_dir, 0.05)
    fuse_lora(model)
    fuse_qkv(model)
    calls = _counting(monkeypatch, _LoraQKV)
    _forward_outside_training(model, tiny_dir)
    assert calls == []


def test_a_projection_called_on_another_input_runs_its_own_layer(tiny_dir):
    """The hand-over is by identity of the input and once a call: q's layer called on anything else, or
    called twice, computes its own output."""
    model = _policy(tiny_dir, 0.0)
    fuse_lora(model)
    fuse_qkv(model)
    attn = _attentions(model)[0]
    x = torch.randn(2, 3, attn.q_proj.in_features, device=model.device)  # (a GPU's where there is one)
    outs = {}

    def plain(*args, **kwargs):  # the attention's own forward, as HF's calls the layers
        outs["q"], outs["k"], outs["v"] = attn.q_proj(x), attn.k_proj(x), attn.v_proj(x)
        outs["q again"], outs["other"] = attn.q_proj(x), attn.q_proj(x.clone())
        return outs["q"]

    attn.forward = functools.partial(_attention_forward, attn, plain)
    attn(hidden_states=x)
    assert outs["q"].grad_fn.name() == "_LoraQKVBackward"
    for key in ("q again", "other"):
        assert outs[key].grad_fn.name() == "_LoraLinearBackward"  # its own layer, not the hand-over
        torch.testing.assert_close(outs[key], outs["q"], rtol=1e-5, atol=1e-6)
    assert attn._qkv_slot == {}


def test_the_fp8_attention_takes_q_k_and_v_as_one_product(tiny_dir, monkeypatch):
    """Under bf16 autocast with FP8: q, k and v are one `_scaled_mm` forward and one backward (the first
    layer's none), one FP8 copy of the three, and loss and adapter gradients within FP8's rounding of the bf16
    base's."""
    batch = _batch(tiny_dir)
    ref, fp8 = _policy(tiny_dir, 0.0), _policy(tiny_dir, 0.0)
    fuse_lora(ref)
    fuse_lora(fp8, fp8=True)
    n_layers = fp8.get_base_model().config.num_hidden_layers
    assert fuse_qkv(fp8, fp8=True) == n_layers
    attentions = [a for a in _attentions(fp8) if routed(a)]
    assert len(attentions) == n_layers and all(a._fp8_qkv is not None for a in attentions)
    assert all(getattr(a, n).get_base_layer()._fp8 is None for a in attentions for n in NAMES)
    for a in attentions:  # the biases stacked once, in bf16, in the weights' order
        want = torch.cat([getattr(a, n).get_base_layer().bias for n in NAMES]).to(torch.bfloat16)
        assert torch.equal(a._fp8_qkv.bias, want)
    mm, quantised = _fp8_step_beside_bf16(fp8, ref, batch, monkeypatch)
    # forward: qkv, o, gate, up, down; backward: [dq | dk | dv] (not the first layer's), o, gate, up, down
    assert mm == 5 * n_layers + 5 * n_layers - 1
    # forward: qkv's input, o's, gate/up's, down's; backward: [dq | dk | dv], o, gate, up, down's gradients
    assert quantised == 4 * n_layers + 5 * n_layers - 1


def test_the_fp8_product_gives_each_projection_its_block_q_and_k_as_views_v_as_its_own(monkeypatch):
    """One `_scaled_mm` of x against [Wq; Wk; Wv] with the biases stacked: each output is its own layer's FP8
    product plus bias plus its adapter's; q and k are views of the one output (no copy), v a tensor of its own
    (attention keeps it until backward, and a view would keep the whole output alive)."""
    from mcqflow.train.fast.lora_fused import _Fp8Weight, _mm8

    g = torch.Generator().manual_seed(0)
    # a GPU's where there is one: the CPU's row-scaled `_scaled_mm` needs a newer torch than some GPU images
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    t, d, widths, r = 12, 32, (32, 16, 16), 4
    x = torch.randn(2, t // 2, d, generator=g).to(dev, torch.bfloat16)
    ws = [(torch.randn(n, d, generator=g) / 4).to(dev) for n in widths]
    biases = [torch.randn(n, generator=g).to(dev) for n in widths]
    adapters = [
        (p / 8).to(dev)
        for n in widths
        for p in (torch.randn(r, d, generator=g), torch.randn(n, r, generator=g))
    ]
    adapters = [p.requires_grad_() for p in adapters]
    fp8 = _Fp8Weight(torch.cat(ws), torch.cat(biases))
    mm, real = [], torch._scaled_mm
    monkeypatch.setattr(torch, "_scaled_mm", lambda *a, **k: mm.append(1) or real(*a, **k))
    q, k, v = _LoraQKV.apply(
        x, *ws, *biases, *adapters, (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), torch.bfloat16, fp8, False
    )
    assert len(mm) == 1
    assert q.untyped_storage().data_ptr() == k.untyped_storage().data_ptr()  # blocks of one output
    assert v.is_contiguous() and v.untyped_storage().data_ptr() != q.untyped_storage().data_ptr()
    x2 = x.reshape(t, d)
    for i, (out, w, b) in enumerate(zip((q, k, v), ws, biases, strict=True)):
        a, b_lora, own = adapters[2 * i], adapters[2 * i + 1], _Fp8Weight(w)  # its own layer's FP8 copy
        base = _mm8(x2, own.w8, own.sw).float() + b
        want = base + (x2.float() @ a.t()) @ (2 * b_lora).t()
        torch.testing.assert_close(out.reshape(t, -1).float(), want.detach(), rtol=2e-2, atol=5e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the FP8 product and the flash path: GPU only")
def test_on_a_gpu_the_fused_attention_trains_as_the_fused_layers(tiny_dir):
    from test_lora_fused import _same_directions

    batch = _batch(tiny_dir)
    out = []
    for fused in (False, True):
        model = _policy(tiny_dir, 0.05).to("cuda")
        fuse_lora(model, fp8=True, fused_dropout=True)
        if fused:
            assert fuse_qkv(model, fp8=True) == model.get_base_model().config.num_hidden_layers
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out.append(_loss_and_grads(model, batch, seed=0))
    (want_loss, want), (got_loss, got) = out
    assert got_loss == pytest.approx(want_loss, rel=1e-2)
    _same_directions(got, want)


def test_the_profile_lever_routes_sft_through_the_fused_attention_projections(
    tiny_dir, tmp_path, monkeypatch
):
    import dataclasses

    from conftest import sample_records
    from mcqflow.train import training
    from mcqflow.train.profiles import PROFILES
    from mcqflow.train.training import SFTParams

    params = SFTParams(finetune="lora", trainer={"max_steps": 1})
    seen = {}
    for on in (False, True):
        calls = _counting(monkeypatch, _LoraQKV)
        profile = dataclasses.replace(PROFILES["cpu"], fused_lora=True, fused_qkv=on)
        training.train_sft(
            sample_records("train")[:8], "plain", tiny_dir, tmp_path / f"m{on}", params, profile=profile
        )
        seen[on] = len(calls)
        monkeypatch.undo()
    assert seen == {False: 0, True: seen[True]} and seen[True] > 0


def test_packed_rows_through_the_varlen_attention_train_as_the_fused_layers(tiny_dir):
    """The padding-free path (SFT's, and GRPO's packed micro-batches): q, k and v reach the packed attention as
    column blocks of one tensor (on a GPU torch's flash varlen kernel, which reads them with their strides)
    and give the fused layers' log-probabilities and adapter gradients."""
    from mcqflow.modeling.models import load_tokenizer
    from mcqflow.train.fast import packing
    from test_lora_fused import _same_directions
    from test_packing import _completion_logps, _grouped_micro_batch

    gpu = torch.cuda.is_available()
    ids, mask, keep, lengths, _ = _grouped_micro_batch(load_tokenizer(tiny_dir))
    out = {}
    for fused in (False, True):
        model = _policy(tiny_dir, 0.0)
        if gpu:  # flash varlen attention takes bf16, not fp32
            model = model.to("cuda", torch.bfloat16)
        fuse_lora(model, fp8=gpu)
        if fused:
            assert fuse_qkv(model, fp8=gpu) == model.get_base_model().config.num_hidden_layers
        rows = packing.pack_rows(ids.to(model.device), mask.to(model.device), keep, lengths)
        index, first = rows.pop("index"), rows.pop("first")
        rows.pop("labels")
        weights = torch.randn(ids.shape[0], keep, generator=torch.Generator().manual_seed(0)).to(model.device)
        with packing.attention(model, packing.register()):
            logps = _completion_logps(model, rows, index, first, ids.shape, keep) * mask[:, -keep:].to(
                model.device
            )
        (logps * weights).sum().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        out[fused] = (logps.detach().float(), grads)
    (want, want_grads), (got, got_grads) = out[False], out[True]
    assert got_grads.keys() == want_grads.keys() and any("q_proj" in n for n in got_grads)
    if gpu:
        torch.testing.assert_close(got, want, atol=5e-2, rtol=2e-2)  # bf16 and FP8: rounding of other shapes
        _same_directions(got_grads, want_grads)
        return
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    for name, g in want_grads.items():
        torch.testing.assert_close(got_grads[name], g, atol=1e-6, rtol=1e-4, msg=name)
