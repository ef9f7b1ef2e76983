"""The fused MLP (`fused_swiglu`: gate's and up's LoRA layers and SwiGLU as one function) computes what PEFT's
modules compute, with the same dropout masks; its FP8 path takes gate and up as one product; its passes are
the formulas (on a CPU the Triton kernels run in Triton's interpreter)."""

import os

import pytest
import torch

from mcqflow.train.fast import lora_swiglu
from mcqflow.train.fast.lora_fused import _LoraLinear, fuse_lora
from mcqflow.train.fast.lora_swiglu import _LoraSwiGLU, fuse_swiglu
from test_lora_fused import _batch, _fp8_step_beside_bf16, _loss_and_grads, _policy, _same_directions

GPU = torch.cuda.is_available()
DEVICE = "cuda" if GPU else "cpu"


def _counting(monkeypatch, fn_class):
    calls = []
    apply = fn_class.apply
    monkeypatch.setattr(fn_class, "apply", lambda *a: calls.append(1) or apply(*a))
    return calls


@pytest.mark.parametrize("dropout", [0.0, 0.05, 0.5])
def test_the_fused_mlp_gives_peft_s_loss_and_adapter_gradients(tiny_dir, dropout, monkeypatch):
    batch = _batch(tiny_dir)
    plain, fused = _policy(tiny_dir, dropout), _policy(tiny_dir, dropout)
    n_layers = fused.get_base_model().config.num_hidden_layers
    fuse_lora(fused)
    assert fuse_swiglu(fused) == n_layers
    assert fuse_swiglu(fused) == 0  # (once)
    mlps, layers = _counting(monkeypatch, _LoraSwiGLU), _counting(monkeypatch, _LoraLinear)
    got_loss, got = _loss_and_grads(fused, batch, seed=3)
    assert len(mlps) == n_layers and len(layers) == 5 * n_layers  # q, k, v, o, down
    monkeypatch.undo()
    want_loss, want = _loss_and_grads(plain, batch, seed=3)  # the same seed: the same dropout masks
    assert got_loss == pytest.approx(want_loss, rel=1e-6)
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-6, msg=name)


def _forward_outside_training(model, tiny_dir) -> None:
    """`model`'s forward under `no_grad`, in eval mode, and in training with its adapter disabled: the calls a
    fused function must leave to the module's own forward."""
    batch = {k: v.to(model.device) for k, v in _batch(tiny_dir).items() if k != "labels"}
    with torch.no_grad():
        model(**batch)
    model.eval()
    model(**batch)
    with model.disable_adapter():
        model.train()
        model(**batch)


def test_eval_and_no_grad_run_the_mlp_s_own_forward(tiny_dir, monkeypatch):
    model = _policy(tiny_dir, 0.05)
    fuse_lora(model)
    fuse_swiglu(model)
    calls = _counting(monkeypatch, _LoraSwiGLU)
    _forward_outside_training(model, tiny_dir)
    assert calls == []


def test_the_fp8_mlp_takes_gate_and_up_as_one_product(tiny_dir, monkeypatch):
    """Under bf16 autocast with FP8: gate and up are one `_scaled_mm` forward and one backward (q, k, v, o and
    down two each, the first layer's q/k/v no input gradient), one FP8 copy of both, and loss and adapter
    gradients within FP8's rounding of the bf16 base's."""
    batch = _batch(tiny_dir)
    ref, fp8 = _policy(tiny_dir, 0.0), _policy(tiny_dir, 0.0)
    fuse_lora(ref)
    fuse_lora(fp8, fp8=True)
    n_layers = fp8.get_base_model().config.num_hidden_layers
    assert fuse_swiglu(fp8, fp8=True) == n_layers
    mlps = [m for m in fp8.modules() if lora_swiglu.routed(m)]
    assert len(mlps) == n_layers and all(m._fp8_gate_up is not None for m in mlps)
    assert all(
        m.gate_proj.get_base_layer()._fp8 is None and m.up_proj.get_base_layer()._fp8 is None for m in mlps
    )
    mm, quantised = _fp8_step_beside_bf16(fp8, ref, batch, monkeypatch)
    assert mm == 12 * n_layers - 3
    # forward: q/k/v's input, o's, gate/up's, down's; backward: q, k, v, o, [gate | up], down's gradients
    assert quantised == 4 * n_layers + 6 * n_layers - 3


kernels = pytest.mark.skipif(
    not GPU and os.environ.get("TRITON_INTERPRET") != "1",
    reason="Triton's interpreter was not on when Triton was imported (conftest.py)",
)


@kernels
@pytest.mark.parametrize("t,n,r", [(70, 200, 4), (33, 64, 16), (5, 24, 8), (130, 96, 16)])
def test_the_kernels_compute_swiglu_of_the_adapted_outputs_and_its_gradients(t, n, r, monkeypatch):
    """Forward and backward passes against the formulas, gate's and up's outputs as the column blocks of one
    [t, 2n] tensor (the FP8 path's) with rows and columns off the tiles and ranks under 16."""
    pytest.importorskip("triton")
    monkeypatch.setattr(lora_swiglu, "runs_on", lambda x: True)  # a CPU runs them interpreted
    dtype = torch.bfloat16 if GPU else torch.float32
    g = torch.Generator().manual_seed(t)
    stacked, ug, uu, dh = (
        torch.randn(*s, generator=g).to(DEVICE, dtype) for s in ((t, 2 * n), (t, r), (t, r), (t, n))
    )
    bg, bu = (torch.randn(n, r, generator=g).to(DEVICE, dtype) / 4 for _ in range(2))
    gb, ub = stacked[:, :n], stacked[:, n:]

    gate = (gb.float() + ug.float() @ bg.float().t()).requires_grad_()
    up = (ub.float() + uu.float() @ bu.float().t()).requires_grad_()
    want = torch.nn.functional.silu(gate) * up
    want.backward(dh.float())

    h = lora_swiglu.swiglu(gb, ub, ug, bg, uu, bu)
    lora_swiglu.swiglu_backward(dh, gb, ub, ug, bg, uu, bu)
    tol = dict(rtol=2e-2, atol=2e-2) if GPU else dict(rtol=1e-5, atol=1e-5)
    assert h.dtype == dtype and h.shape == (t, n)
    torch.testing.assert_close(h.float(), want.detach(), **tol)
    torch.testing.assert_close(stacked[:, :n].float(), gate.grad, **tol)  # written over gate's outputs
    torch.testing.assert_close(stacked[:, n:].float(), up.grad, **tol)


@pytest.mark.skipif(
    GPU or os.environ.get("TRITON_INTERPRET") != "1",
    reason="the interpreted kernels in fp32 (a GPU runs an fp32 tl.dot as tf32: the next test checks it in bf16)",
)
def test_the_kernels_train_the_mlp_as_the_torch_passes_do(tiny_dir, monkeypatch):
    """The whole fused MLP with its passes as the interpreted kernels: PEFT's loss and gradients."""
    pytest.importorskip("triton")
    batch = _batch(tiny_dir)
    plain, fused = _policy(tiny_dir, 0.0), _policy(tiny_dir, 0.0)
    fuse_lora(fused)
    fuse_swiglu(fused)
    monkeypatch.setattr(lora_swiglu, "runs_on", lambda x: True)
    calls = []
    real = lora_swiglu._launch
    monkeypatch.setattr(lora_swiglu, "_launch", lambda *a, **k: calls.append(1) or real(*a, **k))
    got_loss, got = _loss_and_grads(fused, batch.copy(), seed=0)
    monkeypatch.undo()
    want_loss, want = _loss_and_grads(plain, batch, seed=0)
    n_layers = fused.get_base_model().config.num_hidden_layers
    assert len(calls) == 2 * n_layers
    assert got_loss == pytest.approx(want_loss, rel=1e-5)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-3, atol=1e-5, msg=name)


def test_the_profile_lever_routes_sft_through_the_fused_mlp(tiny_dir, tmp_path, monkeypatch):
    import dataclasses

    import transformers.trainer

    from conftest import sample_records
    from mcqflow.train import training
    from mcqflow.train.profiles import PROFILES
    from mcqflow.train.training import SFTParams

    def late_kernels(model, config):  # as Liger's SwiGLU goes on in Trainer.train: the MLPs' forward replaced
        late.append(1)
        for m in model.modules():
            if hasattr(m, "gate_proj"):
                m.forward = lambda x, m=m: m.down_proj(
                    torch.nn.functional.silu(m.gate_proj(x)) * m.up_proj(x)
                )

    late = []
    monkeypatch.setattr(training, "use_liger", lambda profile: True)
    monkeypatch.setattr(transformers.trainer, "apply_liger_kernel", late_kernels)
    calls = _counting(monkeypatch, _LoraSwiGLU)
    params = SFTParams(finetune="lora", trainer={"max_steps": 1})
    profile = dataclasses.replace(PROFILES["cpu"], fused_lora=True, fused_swiglu=True)
    training.train_sft(
        sample_records("train")[:8], "plain", tiny_dir, tmp_path / "m", params, profile=profile
    )
    assert late  # the stand-in for Liger went on in train()
    assert calls  # and the MLPs were fused after it: every MLP of the one step's forward


@pytest.mark.skipif(not GPU, reason="Liger's kernels and the compiled passes: GPU only")
def test_on_a_gpu_the_fused_mlp_over_liger_s_trains_as_liger_s_mlp(tiny_dir):
    """The lever goes on after Liger's SwiGLU (as SFT and GRPO put it): in bf16, with the compiled passes,
    loss and adapter gradients within bf16 rounding of Liger's MLP through the fused layers."""
    pytest.importorskip("liger_kernel")
    from mcqflow.train.fast.merged import liger_kernels

    batch = _batch(tiny_dir)
    out = []
    for fused in (False, True):
        model = _policy(tiny_dir, 0.0).to("cuda")
        assert liger_kernels(model.get_base_model(), "training")
        fuse_lora(model)
        if fused:
            assert fuse_swiglu(model) == model.get_base_model().config.num_hidden_layers
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out.append(_loss_and_grads(model, batch, seed=0))
    (want_loss, want), (got_loss, got) = out
    assert got_loss == pytest.approx(want_loss, rel=1e-2)
    _same_directions(got, want)


def test_adapter_gradients_come_back_in_the_parameters_dtype(monkeypatch):
    """Under bf16 compute with fp32 adapters, A's gradient (fp32 from the fused-dropout kernels) reaches the
    parameter without a round trip through bf16."""
    torch.manual_seed(0)
    t, k, n, r = 8, 32, 48, 4
    fine = torch.full((r, k), 1 + 2**-12)  # not a bf16 number
    monkeypatch.setattr(lora_swiglu, "adapter_backward", lambda *a: fine.clone())
    x = torch.randn(t, k, dtype=torch.bfloat16, requires_grad=True)
    wg, wu = (torch.randn(n, k, dtype=torch.bfloat16) for _ in range(2))
    ag, au, bg, bu = (torch.randn(*s, requires_grad=True) for s in ((r, k), (r, k), (n, r), (n, r)))
    h = _LoraSwiGLU.apply(x, wg, wu, ag, bg, au, bu, (2.0, 2.0), (0.0, 0.0), torch.bfloat16, None, False)
    h.float().sum().backward()
    assert ag.grad.dtype == torch.float32 and torch.equal(ag.grad, fine) and torch.equal(au.grad, fine)
    assert bg.grad.dtype == torch.float32 and x.grad.dtype == torch.bfloat16
