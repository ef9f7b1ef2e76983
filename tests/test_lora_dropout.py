"""LoRA's dropout drawn inside the adapter's products (`fused_dropout`): the kernels' products are those of
the mask they draw, forward and backward draw the same mask, and the layer trains as with that mask.

On a CPU the kernels run in Triton's interpreter (TRITON_INTERPRET=1, set before they are first built);
on a GPU, compiled."""

import os

import pytest
import torch

pytest.importorskip("triton")

from mcqflow.train.fast import lora_dropout  # noqa: E402
from mcqflow.train.fast.lora_fused import fuse_lora  # noqa: E402

GPU = torch.cuda.is_available()
DEVICE = "cuda" if GPU else "cpu"


if not GPU and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip(
        "Triton's interpreter was not on when Triton was imported (conftest.py)", allow_module_level=True
    )


def _operands(t, k, r, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g).to(DEVICE, dtype) for shape in ((t, k), (r, k), (t, r), (t, k))]


@pytest.mark.parametrize(
    "t,k,r,p",
    [(70, 200, 4, 0.3), (33, 64, 16, 0.05), (5, 24, 8, 0.5)],  # rows and columns off the blocks; rank < 16
)
def test_forward_and_backward_are_the_products_of_one_drawn_mask(t, k, r, p):
    dtype = torch.bfloat16 if GPU else torch.float32
    x, a, gu, gx0 = _operands(t, k, r, dtype)
    seed = lora_dropout.new_seed(x.device)
    keep = lora_dropout.keep_mask(t, k, p, seed)
    _, scale = lora_dropout.threshold(p)
    xd = x.float() * keep * scale

    u = lora_dropout.forward(x, a, p, seed)
    gx = gx0.clone()
    ga = lora_dropout.backward(x, a, gu, gx, p, seed)
    ga_only = lora_dropout.backward(x, a, gu, None, p, seed)  # the first layer: no input gradient

    tol = dict(rtol=2e-2, atol=2e-2) if GPU else dict(rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(u.float(), xd @ a.float().t(), **tol)
    torch.testing.assert_close(ga, gu.float().t() @ xd, **tol)
    torch.testing.assert_close(gx.float(), gx0.float() + (gu.float() @ a.float()) * keep * scale, **tol)
    assert torch.equal(ga_only, ga)
    assert u.dtype == x.dtype and ga.dtype == torch.float32 and ga.shape == (r, k)


def test_the_mask_drops_at_the_rounded_rate_and_a_new_seed_draws_a_new_one():
    t, k, p = 256, 1024, 0.05
    thresh, scale = lora_dropout.threshold(p)
    assert thresh == 3277 and scale == pytest.approx(1 / (1 - 3277 / 65536), rel=1e-12)
    seed = lora_dropout.new_seed(torch.device(DEVICE))
    keep = lora_dropout.keep_mask(t, k, p, seed)
    dropped = 1 - keep.float().mean().item()
    sigma = (p * (1 - p) / (t * k)) ** 0.5
    assert abs(dropped - 3277 / 65536) < 5 * sigma
    # no pattern by row, by column or by lane of a Philox call (8 columns each)
    for share in (
        1 - keep.float().mean(1),
        1 - keep.float().mean(0),
        1 - keep.float().view(t, -1, 8).mean((0, 1)),
    ):
        n = t * k / share.numel()
        assert (share - p).abs().max() < 6 * (p * (1 - p) / n) ** 0.5
    assert torch.equal(lora_dropout.keep_mask(t, k, p, seed), keep)  # the same seed, the same mask
    other = lora_dropout.keep_mask(t, k, p, lora_dropout.new_seed(torch.device(DEVICE)))
    assert (other != keep).float().mean() > 0.05  # independent masks differ in ~2p(1-p) of places
    assert lora_dropout.keep_mask(t, k, 0.0, seed).all()
    with pytest.raises(ValueError, match="not in"):
        lora_dropout.threshold(1.0)


def _lora_layer(p, r=4, k=48, n=40):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    base = torch.nn.Sequential(torch.nn.Linear(k, n)).to(DEVICE)
    model = get_peft_model(base, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=p, target_modules=["0"]))
    with torch.no_grad():
        for name, q in model.named_parameters():
            if "lora_B" in name:
                q.normal_(0, 0.1)
    model.train()
    layer = model.base_model.model[0]
    return model, layer


def test_the_fused_layer_trains_as_with_the_mask_its_kernels_draw(monkeypatch):
    """Output and every gradient (input, A, B) of a fused layer with fused dropout against the same layer
    written out with the mask drawn from the seed it took (the first draw of the generator after
    `manual_seed`). On a CPU the layer is let take the (interpreted) kernels, which it takes on a GPU only."""
    monkeypatch.setattr(lora_dropout, "runs_on", lambda t: True)
    p, t = 0.25, 37
    model, layer = _lora_layer(p)
    assert fuse_lora(model, fused_dropout=True) == 1 and layer._fused_dropout
    x = torch.randn(t, layer.in_features, device=DEVICE, requires_grad=True)
    w_out = torch.randn(t, layer.out_features, device=DEVICE)

    torch.manual_seed(5)
    (model(x) * w_out).sum().backward()
    got = [
        x.grad.clone(),
        layer.lora_A["default"].weight.grad.clone(),
        layer.lora_B["default"].weight.grad.clone(),
    ]

    torch.manual_seed(5)
    keep = lora_dropout.keep_mask(t, layer.in_features, p, lora_dropout.new_seed(x.device))
    _, scale = lora_dropout.threshold(p)
    x.grad = None
    model.zero_grad(set_to_none=True)
    base, a, b = layer.get_base_layer(), layer.lora_A["default"].weight, layer.lora_B["default"].weight
    ref = base(x) + ((x * keep * scale) @ a.t()) @ b.t() * layer.scaling["default"]
    (ref * w_out).sum().backward()
    want = [x.grad, a.grad, b.grad]
    for g, w in zip(got, want, strict=True):
        if GPU:  # an fp32 tl.dot is tf32 there (10-bit mantissa): a sum that cancels can lose an element's
            # digits (one of 160 was off by 1.9%, H100), so the whole tensor's error is what is bounded
            assert float((g - w).norm() / w.norm()) < 5e-3  # (a wrong mask: ~0.1 and over)
        else:
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


def test_without_the_lever_the_fused_layer_keeps_torchs_dropout_draws():
    """fused_dropout off: the mask is torch's (F.dropout's draws after the same seed), as before the lever."""
    p, t = 0.25, 16
    model, layer = _lora_layer(p)
    fuse_lora(model, fused_dropout=False)
    x = torch.randn(t, layer.in_features, device=DEVICE)
    torch.manual_seed(9)
    out = model(x)
    torch.manual_seed(9)
    base, a, b = layer.get_base_layer(), layer.lora_A["default"].weight, layer.lora_B["default"].weight
    xd = torch.nn.functional.dropout(x, p, training=True)
    torch.testing.assert_close(out, base(x) + (xd @ a.t()) @ b.t() * layer.scaling["default"])
