"""The fused LoRA layer (`fused_lora`) computes what PEFT's layer computes, with the same dropout masks."""

import dataclasses

import pytest
import torch

from conftest import sample_records
from mcqflow.core.prompts import render_prompt
from mcqflow.modeling.models import load_base_model, load_tokenizer
from mcqflow.train.fast import lora_fused
from mcqflow.train.fast.lora_fused import _Fp8Weight, _LoraLinear, fuse_lora, quantize_rows
from mcqflow.train.training import SFTParams, lora_config


def _policy(tiny_dir, dropout):
    from peft import get_peft_model

    torch.manual_seed(0)
    cfg = lora_config(SFTParams(finetune="lora"))
    cfg.lora_dropout = dropout
    model = get_peft_model(load_base_model(tiny_dir, dtype="float32"), cfg)
    with torch.no_grad():  # B starts at zero, which would hide a wrong B path
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    return model.train()


def _batch(tiny_dir):
    tok = load_tokenizer(tiny_dir, padding_side="right")
    texts = [render_prompt(tok, r, "plain") for r in sample_records("dev")[:4]]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    labels = enc.input_ids.masked_fill(enc.attention_mask == 0, -100)
    return {**enc, "labels": labels}


def _loss_and_grads(model, batch, seed):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    loss = model(**{k: v.to(model.device) for k, v in batch.items()}).loss
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.item(), grads


@pytest.mark.parametrize("dropout", [0.0, 0.05, 0.5])
def test_fused_layers_give_peft_s_loss_and_adapter_gradients(tiny_dir, dropout):
    batch = _batch(tiny_dir)
    plain, fused = _policy(tiny_dir, dropout), _policy(tiny_dir, dropout)
    assert fuse_lora(fused) == 7 * fused.get_base_model().config.num_hidden_layers
    calls = []
    apply = _LoraLinear.apply
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_LoraLinear, "apply", lambda *a: calls.append(1) or apply(*a))
        got_loss, got = _loss_and_grads(fused, batch, seed=3)
    assert len(calls) == 7 * fused.get_base_model().config.num_hidden_layers
    want_loss, want = _loss_and_grads(plain, batch, seed=3)
    assert got.keys() == want.keys() and len(got) == 2 * len(calls)
    assert got_loss == pytest.approx(want_loss, rel=1e-6)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-6)
    if dropout:  # another seed draws other masks: the equality above is the masks', not a coincidence
        other_loss, _ = _loss_and_grads(plain, batch, seed=4)
        assert other_loss != pytest.approx(want_loss, rel=1e-6)


def test_fused_layers_train_the_same_adapter(tiny_dir):
    batch = _batch(tiny_dir)
    out = {}
    for fused in (False, True):
        model = _policy(tiny_dir, 0.05)
        if fused:
            fuse_lora(model)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        for step in range(3):
            _loss_and_grads(model, batch, seed=step)
            opt.step()
        out[fused] = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    for name in out[False]:  # three Adam steps amplify rounding: on a GPU one element in 2048 moved 4e-5
        torch.testing.assert_close(out[True][name], out[False][name], rtol=1e-3, atol=1e-4)


def test_eval_and_no_grad_run_peft_s_own_forward(tiny_dir):
    batch = _batch(tiny_dir)
    plain, fused = _policy(tiny_dir, 0.05), _policy(tiny_dir, 0.05)
    fuse_lora(fused)
    calls = []
    apply = _LoraLinear.apply
    batch = {k: v.to(plain.device) for k, v in batch.items()}
    with pytest.MonkeyPatch.context() as mp, torch.no_grad():
        mp.setattr(_LoraLinear, "apply", lambda *a: calls.append(1) or apply(*a))
        torch.manual_seed(0)
        got = fused(**batch).logits
        torch.manual_seed(0)
        want = plain(**batch).logits
        assert torch.equal(got, want)  # no_grad (GRPO's scoring): PEFT's own path, bit for bit
        fused.eval()
        assert torch.equal(fused(**batch).logits, plain.eval()(**batch).logits)
    assert not calls
    assert fuse_lora(fused) == 0  # already routed: nothing wrapped twice


def test_the_profile_lever_routes_sft_through_fused_layers(tiny_dir, tmp_path, monkeypatch):
    from mcqflow.train import training
    from mcqflow.train.profiles import PROFILES

    seen = []
    real = training.fuse_lora
    monkeypatch.setattr(
        training,
        "fuse_lora",
        lambda m, fp8, fused_dropout: seen.append((real(m), fp8, fused_dropout)) or seen[-1],
    )
    params = SFTParams(finetune="lora", trainer={"max_steps": 1})
    profile = dataclasses.replace(PROFILES["cpu"], fused_lora=True, fused_dropout=True)
    training.train_sft(
        sample_records("train")[:8], "plain", tiny_dir, tmp_path / "m", params, profile=profile
    )
    assert seen and seen[0][0] > 0
    assert seen[0][1] is False  # no GPU with FP8 here: the base stays in the compute dtype
    assert seen[0][2] is True  # the lever is passed on (the layers take its kernels on a GPU only)


# FP8 base (`fp8_base`): CPUs run torch._scaled_mm too, so the layer's arithmetic is checked here; the GPU
# check (bench/speed_gpu.sh check) runs the same tests on cuBLAS's FP8 kernels.


def test_rows_quantise_to_e4m3_with_power_of_two_scales():
    torch.manual_seed(0)
    t = torch.randn(64, 96, dtype=torch.bfloat16) * torch.logspace(-6, 6, 64).reshape(-1, 1)
    t[3] = 0  # an all-zero row: zeros back, no NaN
    t[5] = t[5].clamp(-56, 56)  # a row whose largest magnitude is exactly 56 = 448 x 2^-3
    t[5, 7] = 56
    t8, scale = quantize_rows(t)
    assert scale[5].item() == 2.0**-3 and t8[5].float().abs().max() == 448  # the scale 2^-3, not 2^-2
    assert t8.dtype == torch.float8_e4m3fn and scale.shape == (64, 1) and scale.dtype == torch.float32
    assert torch.equal(torch.exp2(torch.log2(scale).round()), scale)  # powers of two: scaling is exact
    back = t8.float() * scale
    assert torch.equal(back[3], torch.zeros(96))
    assert (t8.float().abs().amax(dim=1) <= 448).all()  # nothing saturates
    # each row uses the top of the range: its largest element lands in [224, 448]
    assert (t8.float().abs().amax(dim=1)[torch.arange(64) != 3] >= 224).all()
    # e4m3 keeps 3 mantissa bits: relative error at most 2^-4 for elements in the normal range
    normal = (t.float().abs() / scale) >= 2**-6
    rel = ((back - t.float()).abs() / t.float().abs())[normal]
    assert rel.max() <= 2**-4 and rel.mean() < 2**-5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="Triton needs a CUDA GPU")
def test_the_triton_quantiser_gives_quantize_rows_bits():
    from mcqflow.train.fast.lora_fused import _triton_quantizer

    torch.manual_seed(0)
    quantize = _triton_quantizer()
    for rows, cols in [(64, 96), (7, 3584), (33, 18944), (5, 1000), (0, 64)]:
        t = torch.randn(rows, cols, device="cuda", dtype=torch.bfloat16)
        t *= torch.logspace(-8, 8, rows, device="cuda").reshape(-1, 1).bfloat16()
        if rows > 3:
            t[3] = 0
            t[2, 0] = 448 * 2.0**-5
            t[2] = t[2].clamp(-14, 14)
        for x in (t, t.t().contiguous().t()[:, : cols - 1] if rows else t):  # strided rows too
            got, want = quantize(x), quantize_rows(x)
            assert torch.equal(got[1], want[1])
            assert torch.equal(got[0].view(torch.uint8), want[0].view(torch.uint8))


def _dequant(t8, scale):
    return t8.float() * scale.reshape(-1, 1)


@pytest.mark.parametrize("p", [0.0, 0.3])
def test_fp8_layer_is_the_scaled_products_of_the_quantised_operands(p):
    """Forward: deq(x8) deq(W8)ᵀ + bias + adapter; backward: deq(g8) deq(Wᵀ8)ᵀ + the adapter's path, the
    adapter's products in bf16 (computed here in fp32 from the same bf16 operands)."""
    torch.manual_seed(1)
    torch.set_default_device("cuda" if torch.cuda.is_available() else "cpu")  # cuBLAS's FP8 on a GPU
    m, k, n, r, s = 42, 64, 48, 4, 2.0  # 2 x 21 rows: not a multiple of 16
    try:
        x = torch.randn(2, m // 2, k, dtype=torch.bfloat16, requires_grad=True)
        w, bias = torch.randn(n, k, dtype=torch.bfloat16) / 8, torch.randn(n, dtype=torch.bfloat16)
        a = (torch.randn(r, k) / 8).requires_grad_()
        b = (torch.randn(n, r) / 8).requires_grad_()
    finally:
        torch.set_default_device(None)
    fp8 = _Fp8Weight(w)
    torch.manual_seed(5)
    out = _LoraLinear.apply(x, w, bias, a, b, s, p, torch.bfloat16, fp8)
    g = torch.randn_like(out)
    out.backward(g)

    x2 = x.detach().reshape(m, k)
    torch.manual_seed(5)  # the same dropout draws
    xd = torch.nn.functional.dropout(x2, p) if p else x2
    bs = (b.detach() * s).bfloat16().float()
    u = (xd.float() @ a.detach().bfloat16().float().t()).bfloat16().float()
    base = _dequant(*quantize_rows(x2)) @ _dequant(fp8.w8, fp8.sw).t() + bias.float()
    want = base + u @ bs.t()
    torch.testing.assert_close(out.float().reshape(m, n), want, rtol=2e-2, atol=2e-2)

    g2 = g.reshape(m, n)
    gu = (g2.float() @ bs).bfloat16().float()
    through = (gu @ a.detach().bfloat16().float()).bfloat16().float()
    keep = (xd != 0) | (x2 == 0) if p else torch.ones_like(x2, dtype=torch.bool)  # the dropout mask
    want_gx = _dequant(*quantize_rows(g2)) @ _dequant(fp8.wt8, fp8.swt).t() + through * keep / (1 - p)
    torch.testing.assert_close(x.grad.float().reshape(m, k), want_gx, rtol=2e-2, atol=2e-2)
    # and the adapters' gradients are the bf16 ones (the base's precision does not reach them)
    torch.testing.assert_close(a.grad, gu.t() @ xd.float(), rtol=2e-2, atol=2e-2)


def test_fp8_base_trains_close_to_the_bf16_base(tiny_dir, monkeypatch):
    """Under bf16 autocast with `fp8=True` every projection runs `_scaled_mm` (twice: forward, and backward for
    the input gradient), q/k/v and gate/up quantise their shared input once, and loss and adapter gradients
    stay within FP8's rounding of the bf16 base's."""
    batch = _batch(tiny_dir)
    ref, fp8 = _policy(tiny_dir, 0.0), _policy(tiny_dir, 0.0)
    fuse_lora(ref)
    layers = fuse_lora(fp8, fp8=True)
    assert all(hasattr(m.get_base_layer(), "_fp8") for m in fp8.modules() if getattr(m, "_fused_lora", False))
    mm, quantised = _fp8_step_beside_bf16(fp8, ref, batch, monkeypatch)
    n_layers = fp8.get_base_model().config.num_hidden_layers
    assert layers == 7 * n_layers
    assert mm == 2 * layers - 3  # the first layer's q/k/v need no input gradient
    # forward quantises 4 inputs a layer (q/k/v's one, o's, gate/up's one, down's), backward each gradient
    assert quantised == 4 * n_layers + (layers - 3)


def _fp8_step_beside_bf16(fp8, ref, batch, monkeypatch) -> tuple[int, int]:
    """One step of `fp8` (FP8 base) and of `ref` (bf16 base) under bf16 autocast: checks that the loss differs
    but within FP8's rounding and that every adapter gradient points the same way; returns how many
    `_scaled_mm` calls and row quantisations the FP8 step made."""
    mm, quantised = [], []
    real_mm, real_q = torch._scaled_mm, lora_fused.row_quantizer
    monkeypatch.setattr(torch, "_scaled_mm", lambda *a, **k: mm.append(1) or real_mm(*a, **k))
    monkeypatch.setattr(
        lora_fused, "row_quantizer", lambda d: lambda t: quantised.append(t.shape[-1]) or real_q(d)(t)
    )
    with torch.autocast(fp8.device.type, dtype=torch.bfloat16):
        got_loss, got = _loss_and_grads(fp8, batch, seed=0)
        want_loss, want = _loss_and_grads(ref, batch, seed=0)
    assert got_loss != want_loss and got_loss == pytest.approx(want_loss, rel=1e-3)
    _same_directions(got, want)
    return len(mm), len(quantised)


def _same_directions(got: dict, want: dict, at_least: float = 0.99) -> None:
    """Every gradient in `got` at cosine similarity `at_least` or more to its namesake in `want`."""
    for name in want:
        cos = torch.nn.functional.cosine_similarity(
            got[name].flatten().float(), want[name].flatten().float(), 0
        )
        assert cos > at_least, name


def test_fp8_is_off_without_a_gpu_and_by_train_fp8():
    from mcqflow.modeling.models import fp8_supported
    from mcqflow.train.profiles import PROFILES, profile_from_params, use_fp8

    assert PROFILES["fast"].fp8_base and use_fp8(PROFILES["fast"]) == fp8_supported()  # False on a CPU
    assert not use_fp8(PROFILES["vanilla"])
    assert profile_from_params({"train": {"profile": "fast"}}).fp8_base
    assert not profile_from_params({"train": {"profile": "fast", "fp8": False}}).fp8_base


def test_the_shared_input_cache_keeps_no_graph_alive():
    """A step that fails mid-forward (out of memory) must not leave its activations reachable from the cache."""
    import gc
    import weakref

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    w = torch.randn(32, 16, dtype=torch.bfloat16, device=dev)
    fp8 = _Fp8Weight(w)
    a = torch.randn(4, 16, requires_grad=True, device=dev)
    b = torch.randn(32, 4, requires_grad=True, device=dev)
    x = (
        torch.randn(8, 16, dtype=torch.bfloat16, requires_grad=True, device=dev) * 2
    )  # a non-leaf, with a graph
    _LoraLinear.apply(x, w, None, a, b, 1.0, 0.0, torch.bfloat16, fp8)
    gone = weakref.ref(x)
    del x
    gc.collect()
    assert gone() is None


@pytest.mark.parametrize(
    "env, on",
    [
        ({}, True),
        ({"ACCELERATE_USE_FSDP": "true"}, False),
        ({"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}, False),
        ({"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}, True),
    ],
)
def test_fp8_stays_off_where_the_weights_are_sharded(monkeypatch, env, on):
    """On an FP8 card: FSDP and ZeRO-3 shard the weights after the layers are fused, so no FP8 copies there."""
    from mcqflow.modeling import models
    from mcqflow.train import profiles

    monkeypatch.setattr(profiles, "fp8_supported", lambda: True)
    monkeypatch.setattr(models, "on_gpu", lambda: True)
    for k in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED", "ACCELERATE_DEEPSPEED_ZERO_STAGE"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert profiles.use_fp8(profiles.PROFILES["fast"]) is on


@pytest.mark.parametrize("dev", ["cpu", "cuda"])
def test_dropout_keeps_no_mask_and_backward_draws_the_same_one_again(dev):
    """With dropout a layer keeps for backward exactly what it keeps without (the mask is drawn again from
    the generator's state, not saved), its gradients are those of the kept mask, and backward leaves the
    generator where forward left it."""
    if dev == "cuda" and not torch.cuda.is_available():
        pytest.skip("no GPU")
    torch.manual_seed(2)
    m, k, n, r, p = 24, 32, 16, 4, 0.3
    x = torch.randn(m, k, device=dev, requires_grad=True)
    w = torch.randn(n, k, device=dev)
    a = torch.randn(r, k, device=dev, requires_grad=True)
    b = torch.randn(n, r, device=dev, requires_grad=True)
    g = torch.randn(m, n, device=dev)

    state = torch.cuda.get_rng_state if dev == "cuda" else torch.get_rng_state

    def run(p):
        kept = []
        x.grad = a.grad = b.grad = None
        torch.manual_seed(7)
        with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t) or t, lambda t: t):
            out = _LoraLinear.apply(x, w, None, a, b, 2.0, p, torch.float32, None)
        after_forward = state()
        out.backward(g)
        return kept, torch.equal(state(), after_forward), (x.grad, a.grad, b.grad)

    kept_plain, _, _ = run(0.0)
    kept, generator_untouched, grads = run(p)
    assert [t.shape for t in kept] == [t.shape for t in kept_plain]  # no mask among them
    assert generator_untouched

    torch.manual_seed(7)  # the mask forward drew, as F.dropout draws it
    keep = torch.nn.functional.dropout(torch.ones(m, k, device=dev), p) != 0
    xd = x.detach() * keep / (1 - p)
    u = xd @ a.detach().t()
    bs = b.detach() * 2.0
    torch.testing.assert_close(grads[1], (g @ bs).t() @ xd)
    torch.testing.assert_close(grads[2], 2.0 * g.t() @ u)
    torch.testing.assert_close(grads[0], g @ w + ((g @ bs) @ a.detach()) * keep / (1 - p))
