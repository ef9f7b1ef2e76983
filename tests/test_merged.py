import pytest
import torch

from conftest import sample_records
from mcqflow.core.prompts import render_prompt
from mcqflow.modeling.models import load_base_model, load_tokenizer
from mcqflow.train.fast.merged import MergedCopy
from mcqflow.train.training import SFTParams, lora_config


@pytest.fixture
def policy(tiny_dir):
    return _policy(tiny_dir)


def _policy(tiny_dir, dtype="auto", sharp=True):
    """The tiny model with a trained-looking adapter (B is zero at init, which would hide a missing merge).
    `sharp`: its layers' weights tenfold too, so that greedy tokens depend on every layer; without, only B is
    drawn, and rounding stays small enough to compare gradients."""
    from peft import get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(load_base_model(tiny_dir, dtype=dtype), lora_config(SFTParams(finetune="lora")))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if sharp and "lora_" in name:
                p.normal_(0, 0.5)
            elif sharp and "layers" in name and "norm" not in name:
                p.mul_(10)
            elif not sharp and "lora_B" in name:
                p.normal_(0, 0.1)
    model.eval()
    return model


def _greedy(model, tok, prompts, n=12):
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    out = model.generate(**enc, max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)
    return out[:, enc.input_ids.shape[1] :].tolist()


def test_merged_copy_generates_what_the_peft_policy_generates(policy, tiny_dir):
    tok = load_tokenizer(tiny_dir, padding_side="left")
    prompts = [render_prompt(tok, r, "reasoning") for r in sample_records("dev")[:4]]
    copy = MergedCopy(policy)
    copy.sync()
    with torch.no_grad():
        peft_out = _greedy(policy, tok, prompts)
        assert _greedy(copy.model, tok, prompts) == peft_out
        with policy.disable_adapter():
            base_out = _greedy(policy, tok, prompts)
    assert base_out != peft_out  # the adapter changes the samples, so the merge is what made them equal


def test_sync_follows_the_adapter_as_it_trains(policy, tiny_dir):
    tok = load_tokenizer(tiny_dir, padding_side="left")
    prompts = [render_prompt(tok, r, "plain") for r in sample_records("dev")[:3]]
    copy = MergedCopy(policy)
    copy.sync()
    before = _greedy(copy.model, tok, prompts)
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
        copy.sync()
        after = _greedy(copy.model, tok, prompts)
        assert after == _greedy(policy, tok, prompts)
    assert after != before


def test_merged_copy_shares_every_weight_but_the_adapted_projections(policy):
    copy = MergedCopy(policy)
    base = policy.get_base_model()
    shared = {p.data_ptr() for p in base.parameters()}
    own = [n for n, p in copy.model.named_parameters() if p.data_ptr() not in shared]
    assert own and all(n.split(".")[-2].endswith("_proj") for n in own)
    assert len(own) == 7 * base.config.num_hidden_layers
    assert not any(p.requires_grad for p in copy.model.parameters() if p.data_ptr() not in shared)


def _qwen2_globals() -> dict:
    """What Liger's patching swaps module-wide in transformers' Qwen2 code."""
    from transformers.models.qwen2 import modeling_qwen2

    return {n: getattr(modeling_qwen2, n) for n in ("Qwen2RMSNorm", "Qwen2MLP", "apply_rotary_pos_emb")}


def test_liger_sampling_falls_back_to_the_plain_copy_where_it_cannot_run(policy, tiny_dir, caplog):

    if policy.device.type == "cuda":
        pytest.skip("a CPU test: on a GPU the kernels run (the next test)")
    tok = load_tokenizer(tiny_dir, padding_side="left")
    prompts = [render_prompt(tok, r, "plain") for r in sample_records("dev")[:3]]
    before = _qwen2_globals()
    with caplog.at_level("INFO", logger="mcqflow.train.fast.merged"):
        copy = MergedCopy(policy, liger=True)
    assert not copy.liger and "GPU only" in caplog.text
    copy.sync()
    with torch.no_grad(), copy.sampling():
        assert _greedy(copy.model, tok, prompts) == _greedy(policy, tok, prompts)
    assert _qwen2_globals() == before


def test_liger_sampling_computes_the_plain_copy_s_logits_and_leaves_transformers_as_it_was(tiny_dir):
    """On a GPU (bench/speed_gpu.sh check), in fp32 so that only float rounding may differ: Liger's RMSNorm,
    SwiGLU and RoPE in the copy give its logits and greedy tokens; transformers' module-wide classes and
    RoPE function are unchanged outside `sampling()`. (In bf16 the kernels round elsewhere than HF's
    modules, SwiGLU once where HF rounds twice: same distribution, other samples.)"""
    from transformers.models.qwen2 import modeling_qwen2

    if not torch.cuda.is_available():
        pytest.skip("Liger's kernels are Triton: GPU only")
    pytest.importorskip("liger_kernel")
    policy = _policy(tiny_dir, dtype="float32")
    tok = load_tokenizer(tiny_dir, padding_side="left")
    prompts = [render_prompt(tok, r, "plain") for r in sample_records("dev")[:4]]
    before = _qwen2_globals()
    plain, kernels = MergedCopy(policy), MergedCopy(policy, liger=True)
    assert kernels.liger
    assert _qwen2_globals() == before
    plain.sync()
    kernels.sync()
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(policy.device)
    with torch.no_grad():
        want, want_tokens = plain.model(**enc).logits, _greedy(plain.model, tok, prompts)
        with kernels.sampling():
            assert modeling_qwen2.apply_rotary_pos_emb is not before["apply_rotary_pos_emb"]
            got, got_tokens = kernels.model(**enc).logits, _greedy(kernels.model, tok, prompts)
    assert _qwen2_globals() == before
    real = enc.attention_mask.bool()  # pad positions attend to nothing real: left out
    torch.testing.assert_close(got[real], want[real], rtol=1e-3, atol=1e-3)  # fp32, other summation orders
    assert got_tokens == want_tokens


def test_liger_training_gives_the_plain_policy_s_loss_and_adapter_gradients(tiny_dir):
    """`liger_training` (GPU, fp32 so that only float rounding may differ): the policy with Liger's RMSNorm
    and SwiGLU on its modules and Liger's RoPE in its forward gives the plain policy's loss and LoRA
    gradients, through the fused LoRA layers too; on a CPU nothing is changed. (The tiny model as it is, an
    adapter with B drawn: `_policy`'s tenfold weights make attention so sharp that rounding alone moves its
    gradients by a fraction of a percent.)"""
    from mcqflow.train.fast.lora_fused import fuse_lora
    from mcqflow.train.fast.merged import liger_kernels, liger_rope

    def policy():
        return _policy(tiny_dir, dtype="float32", sharp=False).train()

    if not torch.cuda.is_available():
        assert not liger_kernels(policy().get_base_model(), "training")
        return
    pytest.importorskip("liger_kernel")
    tok = load_tokenizer(tiny_dir, padding_side="right")
    enc = tok([render_prompt(tok, r, "plain") for r in sample_records("dev")[:4]], return_tensors="pt",
              padding=True, add_special_tokens=False)  # fmt: skip
    labels = enc.input_ids.masked_fill(enc.attention_mask == 0, -100)
    out = []
    for kernels in (False, True):
        model = policy()
        fuse_lora(model)
        if kernels:
            assert liger_kernels(model.get_base_model(), "training")
        batch = {k: v.to(model.device) for k, v in {**enc, "labels": labels}.items()}
        torch.manual_seed(3)  # the same dropout masks
        with liger_rope(kernels):
            loss = model(**batch).loss
        loss.backward()
        out.append((loss.item(), {n: p.grad for n, p in model.named_parameters() if p.requires_grad}))
    (want, want_grads), (got, got_grads) = out
    assert got == pytest.approx(want, rel=1e-5)
    off = {n: float((got_grads[n] - g).abs().max() / g.abs().max()) for n, g in want_grads.items()}
    assert max(off.values()) < 1e-4, sorted(off.items(), key=lambda kv: -kv[1])[:5]


def _fp8_layers(copy):
    """The copy's modules holding FP8 weights: its `Fp8Linear`s and, tensor-scaled, the fused groups."""
    from mcqflow.train.fast.merged import Fp8Group, Fp8Linear

    return [m for m in copy.model.modules() if isinstance(m, Fp8Linear | Fp8Group)]


def test_fp8_copy_projections_are_the_scaled_products_of_the_quantised_merged_weights(tiny_dir):
    """`fp8_sampling`: every adapted projection holds W + scale·B·A quantised by row and computes the
    product of its quantised input and that weight (CPUs run `_scaled_mm` too); nothing else is copied."""
    from mcqflow.train.fast.lora_fused import quantize_rows
    from test_lora_fused import _dequant as dequant

    policy = _policy(tiny_dir, dtype="bfloat16", sharp=False)
    copy = MergedCopy(policy, fp8=True)
    copy.sync()
    layers = _fp8_layers(copy)
    assert copy.fp8 and len(layers) == 7 * policy.get_base_model().config.num_hidden_layers
    shared = {p.data_ptr() for p in policy.get_base_model().parameters()}
    assert all(p.data_ptr() in shared for p in copy.model.parameters())  # no bf16 copy of any weight
    lora = policy.get_base_model().model.layers[1].self_attn.q_proj
    fp8 = copy.model.model.layers[1].self_attn.q_proj
    merged = lora.get_base_layer().weight + lora.get_delta_weight("default").to(torch.bfloat16)
    x = torch.randn(3, 5, fp8.in_features, dtype=torch.bfloat16, device=fp8.w8.device)
    with torch.no_grad():
        got = fp8(x)
    want = dequant(*quantize_rows(x.reshape(15, -1))) @ dequant(*quantize_rows(merged)).t()
    want = (want + lora.get_base_layer().bias.float()).reshape(3, 5, -1)
    assert got.shape == want.shape and got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want, rtol=1e-2, atol=1e-2)  # the bf16 output's rounding
    # and it is not the unmerged weight's product: the adapter is in the weight
    base_only = (
        dequant(*quantize_rows(x.reshape(15, -1))) @ dequant(*quantize_rows(lora.get_base_layer().weight)).t()
    )
    assert (got.float().reshape(15, -1) - base_only - lora.get_base_layer().bias.float()).abs().max() > 0.05


@pytest.mark.parametrize("tensor_scaled", [False, True])
def test_fp8_copy_follows_the_adapter_in_place_and_samples_close_to_the_bf16_copy(tiny_dir, tensor_scaled):
    """`sync` rewrites the FP8 weights where they are (a captured decode graph reads them there), and the FP8
    copy's next-token distribution stays close to the bf16 copy's (e4m3 keeps 3 mantissa bits a weight):
    far closer than the adapter's own change moves it."""
    policy = _policy(tiny_dir, dtype="bfloat16", sharp=False)
    tok = load_tokenizer(tiny_dir, padding_side="left")
    prompts = [render_prompt(tok, r, "plain") for r in sample_records("dev")[:4]]
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(policy.device)
    plain, fp8 = MergedCopy(policy), MergedCopy(policy, fp8=True, fp8_tensor_scaled=tensor_scaled)
    layers = _fp8_layers(fp8)
    where = [m.w8.data_ptr() for m in layers]

    def kl(p, q):
        return float((p.exp() * (p - q)).sum(-1).max())

    dists = []
    for round_ in range(2):
        plain.sync()
        fp8.sync()
        with torch.no_grad():
            want = plain.model(**enc).logits[:, -1].float().log_softmax(-1)
            got = fp8.model(**enc).logits[:, -1].float().log_softmax(-1)
        dists.append((want, got))
        if round_ == 0:
            before = [m.w8.float().clone() for m in layers]
            with torch.no_grad():
                for name, p in policy.named_parameters():
                    if "lora_B" in name:
                        p.normal_(0, 0.2)
    assert [m.w8.data_ptr() for m in layers] == where
    assert any(not torch.equal(m.w8.float(), b) for m, b in zip(layers, before, strict=True))
    (want0, got0), (want1, got1) = dists
    moved = kl(want1, want0)  # what the adapter's change did to the bf16 copy
    assert kl(want0, got0) < 2e-3 and kl(want1, got1) < 2e-3  # measured 1e-4 and 9e-4 on CPU
    assert kl(want1, got1) < moved / 10, (kl(want1, got1), moved)


def test_fp8_copy_is_left_out_where_the_weights_are_not_bf16(tiny_dir):
    policy = _policy(tiny_dir, dtype="float32")
    copy = MergedCopy(policy, fp8=True)  # `_scaled_mm` gives bf16 out with row scales
    assert not copy.fp8 and not _fp8_layers(copy)


@pytest.mark.parametrize("tensor_scaled", [False, True])
def test_fp8_copy_quantises_each_input_once_for_the_projections_reading_it(
    tiny_dir, monkeypatch, tensor_scaled
):
    """q/k/v read one input and gate/up another: 4 quantisations a layer, not 7."""
    from mcqflow.train.fast import lora_fused

    policy = _policy(tiny_dir, dtype="bfloat16", sharp=False)
    copy = MergedCopy(policy, fp8=True, fp8_tensor_scaled=tensor_scaled)
    copy.sync()
    seen = []
    real = lora_fused.row_quantizer
    monkeypatch.setattr(lora_fused, "row_quantizer", lambda d: lambda t: seen.append(t.shape) or real(d)(t))
    x = torch.tensor([[5, 6, 7, 8]], device=policy.device)
    with torch.no_grad():
        copy.model(input_ids=x)
    assert len(seen) == 4 * policy.get_base_model().config.num_hidden_layers


def test_tensor_scaled_fp8_copy_gives_the_row_scaled_copys_products(tiny_dir):
    """`fp8_tensor_sampling`: q/k/v taken as one product and gate/up as another, each with unit scales, the
    row scales and biases applied after (`rescale`; for gate/up with silu(gate) * up in the same pass). The
    scales are powers of two, so q/k/v and o are the row-scaled copy's outputs up to summation order (none
    here) and the bias's rounding; the MLP differs by SwiGLU's rounding (one rounding in fp32 against
    bf16's two), which the FP8 input of down carries on; the next-token distributions move less than FP8
    itself moves them from the bf16 copy's."""
    from mcqflow.train.fast.merged import Fp8Group, Fp8Linear, Fp8Slice, Fp8SwiGLU

    policy = _policy(tiny_dir, dtype="bfloat16", sharp=False)
    rows, tensor = MergedCopy(policy, fp8=True), MergedCopy(policy, fp8=True, fp8_tensor_scaled=True)
    rows.sync()
    tensor.sync()
    n_layers = policy.get_base_model().config.num_hidden_layers
    groups = [m for m in tensor.model.modules() if isinstance(m, Fp8Group)]
    assert len(groups) == 2 * n_layers  # q/k/v and gate/up, a layer
    assert sum(isinstance(m, Fp8SwiGLU) for m in tensor.model.modules()) == n_layers
    assert not any(isinstance(m, Fp8Group | Fp8SwiGLU) for m in rows.model.modules())
    assert all(m.tensor_scaled for m in tensor.model.modules() if isinstance(m, Fp8Linear))
    x = torch.randn(2, 3, rows.model.config.hidden_size, dtype=torch.bfloat16, device=policy.device) * 3
    for a, b in zip(rows.model.model.layers, tensor.model.model.layers, strict=True):
        assert all(isinstance(getattr(b.self_attn, n), Fp8Slice) for n in ("q_proj", "k_proj", "v_proj"))
        with torch.no_grad():
            for name in ("q_proj", "k_proj", "v_proj"):  # each its columns of one product, biased
                want, got = getattr(a.self_attn, name)(x), getattr(b.self_attn, name)(x)
                assert got.shape == want.shape and got.dtype == want.dtype == torch.bfloat16
                torch.testing.assert_close(got, want, rtol=2**-7, atol=1e-3)  # bias added in fp32 on both
            o_in = (
                torch.randn(2, 3, a.self_attn.o_proj.in_features, dtype=torch.bfloat16, device=x.device) * 3
            )
            assert torch.equal(b.self_attn.o_proj(o_in), a.self_attn.o_proj(o_in))  # a power of two commutes
            want, got = a.mlp(x).float(), b.mlp(x).float()
        assert got.shape == want.shape
        assert float((got - want).norm() / want.norm()) < 2e-2  # (FP8's step is 1/16: one input crossing it)
    tok = load_tokenizer(tiny_dir, padding_side="left")
    enc = tok([render_prompt(tok, r, "plain") for r in sample_records("dev")[:3]], return_tensors="pt",
              padding=True, add_special_tokens=False).to(policy.device)  # fmt: skip
    plain = MergedCopy(policy)
    plain.sync()
    with torch.no_grad():
        ref, want, got = (c.model(**enc).logits.float().log_softmax(-1) for c in (plain, rows, tensor))

    def kl(p, q):
        return float((p.exp() * (p - q)).sum(-1).max())

    # measured on CPU: rows vs bf16 2.1e-4, tensor vs rows 6.7e-5, tensor vs bf16 1.9e-4
    assert kl(want, got) < kl(ref, want)  # the fused passes' rounding: inside what FP8 itself moves
    assert kl(ref, got) < 2e-3


def test_a_fused_group_computes_its_product_once_an_input_and_again_for_a_new_one(tiny_dir, monkeypatch):
    """q/k/v's members share one product while they read the same input; a member asked again, or asked
    with another input, gets that input's product, never a stale one; once all have taken theirs the group
    lets go of the input."""
    policy = _policy(tiny_dir, dtype="bfloat16", sharp=False)
    copy = MergedCopy(policy, fp8=True, fp8_tensor_scaled=True)
    copy.sync()
    attn = copy.model.model.layers[0].self_attn
    q, k, v = attn.q_proj, attn.k_proj, attn.v_proj
    calls = []
    real = torch._scaled_mm
    monkeypatch.setattr(torch, "_scaled_mm", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    x1 = torch.randn(4, q.in_features, dtype=torch.bfloat16, device=policy.device)
    x2 = torch.randn(4, q.in_features, dtype=torch.bfloat16, device=policy.device)
    with torch.no_grad():
        q1, k1, v1 = q(x1), k(x1), v(x1)
        assert len(calls) == 1 and q.group._held is None
        q2 = q(x2)  # a new input: its own product
        k1_again = k(x1)  # x1 once more (x2's product is held): computed afresh
        assert len(calls) == 3
        torch.testing.assert_close(k1_again, k1, rtol=0, atol=0)
        assert not torch.equal(q2, q1)
        assert torch.equal(q(x1), q1) and len(calls) == 3  # q's share of that same product
        q1_again = q(x1)  # q has taken its share of it already: computed afresh
        assert len(calls) == 4 and torch.equal(q1_again, q1)
    assert [t.shape[-1] for t in (q1, k1, v1)] == q.group.sizes


@pytest.mark.parametrize("rows", [1, 5])
def test_the_swiglu_rescale_kernel_is_torchs(rows):
    """The fused MLP's one pass (compiled on a GPU, interpreted on a CPU) against `swiglu_rescale`'s CPU
    path: gate's and up's columns rescaled, silu(gate) * up in fp32, rounded once."""
    pytest.importorskip("triton")
    from mcqflow.train.fast import fp8_scale_kernels
    from mcqflow.train.fast.merged import _swiglu_rescale_triton, swiglu_rescale

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    n = 1500  # over one block, not a multiple of it
    raw = (torch.randn(rows, 2 * n, device=device) * 100).bfloat16()
    sx = 2.0 ** torch.randint(-10, -4, (rows, 1), device=device).float()
    sw = 2.0 ** torch.randint(-4, 0, (1, 2 * n), device=device).float()
    want = swiglu_rescale(raw.cpu(), sx.cpu(), sw.cpu(), torch.bfloat16)
    got = _swiglu_rescale_triton(fp8_scale_kernels.swiglu_rescale_kernel, raw, sx, sw, torch.bfloat16)
    assert got.shape == (rows, n) and got.dtype == torch.bfloat16
    g, u = (raw.float().cpu() * sx.cpu() * sw.cpu()).chunk(2, dim=-1)
    torch.testing.assert_close(want.float(), g * torch.sigmoid(g) * u, rtol=2**-8, atol=1e-6)
    torch.testing.assert_close(got.cpu(), want, rtol=2**-7, atol=1e-5)  # (exp's rounding on a GPU)


@pytest.mark.parametrize("bias", [False, True])
def test_the_rescale_kernel_is_torchs_rescale(bias):
    """The one-pass Triton kernel (compiled on a GPU, interpreted on a CPU) against the torch operations of
    `rescale`'s CPU path; in place where the product is already in the output's dtype. Bit for bit on a GPU;
    within one bf16 step in the interpreter, whose cast to bf16 rounds otherwise."""
    pytest.importorskip("triton")
    from mcqflow.train.fast import fp8_scale_kernels
    from mcqflow.train.fast.merged import _rescale_triton, rescale

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    rows, n = 5, 1500  # columns over one block, not a multiple of it
    raw = torch.randn(rows, n, device=device) * 100
    sx = 2.0 ** torch.randint(-8, 8, (rows, 1), device=device).float()
    sw = 2.0 ** torch.randint(-8, 8, (1, n), device=device).float()
    b = torch.randn(n, device=device, dtype=torch.bfloat16) if bias else None
    want = rescale(raw.cpu(), sx.cpu(), sw.cpu(), None if b is None else b.cpu(), torch.bfloat16)
    got = _rescale_triton(fp8_scale_kernels.rescale_kernel, raw, sx, sw, b, torch.bfloat16)
    assert got.dtype == torch.bfloat16
    same_bits = dict(rtol=0, atol=0) if device == "cuda" else dict(rtol=2**-7, atol=0)
    torch.testing.assert_close(got.cpu(), want, **same_bits)
    raw16 = raw.bfloat16()
    want16 = rescale(raw16.cpu().clone(), sx.cpu(), sw.cpu(), None if b is None else b.cpu(), torch.bfloat16)
    same = _rescale_triton(fp8_scale_kernels.rescale_kernel, raw16, sx, sw, b, torch.bfloat16)
    assert same.data_ptr() == raw16.data_ptr()  # in place
    torch.testing.assert_close(same.cpu(), want16, **same_bits)


def test_the_static_cache_decoder_samples_the_fused_fp8_copy_as_generate_does(tiny_dir):
    """The graph decoder's step (eager on a CPU) through the fused copy, whose q/k/v come out as column
    slices of one product: the same greedy tokens as `generate` through that copy."""
    from transformers import GenerationConfig

    from mcqflow.train.fast.decode import Decoder

    policy = _policy(tiny_dir, dtype="bfloat16")
    copy = MergedCopy(policy, fp8=True, fp8_tensor_scaled=True)
    copy.sync()
    tok = load_tokenizer(tiny_dir, padding_side="left")
    prompts = [
        render_prompt(tok, r, m)
        for r, m in zip(sample_records("dev")[:3], ["plain", "reasoning", "plain"], strict=True)
    ]
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(policy.device)
    gc = GenerationConfig(max_new_tokens=10, do_sample=False, pad_token_id=tok.pad_token_id,
                          eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"))  # fmt: skip
    with torch.no_grad():
        hf = copy.model.generate(**enc, generation_config=gc)
    ours = Decoder(copy.model).generate(enc.input_ids, enc.attention_mask, gc)
    assert torch.equal(ours, hf)
    assert len({tuple(r) for r in ours[:, enc.input_ids.shape[1] :].tolist()}) > 1
