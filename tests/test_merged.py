import pytest
import torch

from conftest import sample_records
from mcqflow.merged import MergedCopy
from mcqflow.models import load_base_model, load_tokenizer
from mcqflow.prompts import render_prompt
from mcqflow.training import SFTParams, lora_config


@pytest.fixture
def policy(tiny_dir):
    from peft import get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(load_base_model(tiny_dir), lora_config(SFTParams(finetune="lora")))
    with torch.no_grad():  # a trained-looking adapter: B is zero at init, which would hide a missing merge
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.normal_(0, 0.5)
            elif "layers" in name and "norm" not in name:
                p.mul_(10)
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


def _close(got, want):
    """Equal to float rounding: fp32 on a CPU; on a GPU (bf16) the fused matmul may sum in another order."""
    tol = 1e-5 if got.dtype == torch.float32 else 3e-2
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)


def test_fused_projections_give_the_unfused_copy_s_logits_and_tokens(policy, tiny_dir):
    tok = load_tokenizer(tiny_dir, padding_side="left")
    prompts = [render_prompt(tok, r, "reasoning") for r in sample_records("dev")[:4]]
    plain, fused = MergedCopy(policy), MergedCopy(policy, fuse=True)
    plain.sync()
    fused.sync()
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(policy.device)
    with torch.no_grad():
        want, got = plain.model(**enc).logits, fused.model(**enc).logits
        _close(got, want)
        assert _greedy(fused.model, tok, prompts) == _greedy(plain.model, tok, prompts)
        # sync() writes through the fused buffers: a changed adapter changes the samples alike
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
        plain.sync()
        fused.sync()
        _close(fused.model(**enc).logits, plain.model(**enc).logits)


def test_fused_group_runs_one_matmul_per_input_and_answers_any_caller(policy):
    from mcqflow.merged import _Fused

    copy = MergedCopy(policy, fuse=True)
    copy.sync()
    attn = copy.model.model.layers[0].self_attn
    groups = {id(attn.q_proj.forward.__defaults__[1])}
    groups |= {id(m.forward.__defaults__[1]) for m in (attn.k_proj, attn.v_proj)}
    assert len(groups) == 1  # q, k and v share one buffer and one matmul
    group = attn.q_proj.forward.__defaults__[1]
    assert isinstance(group, _Fused)
    w = attn.q_proj.weight
    x, y = (torch.randn(3, 5, w.shape[1], device=w.device, dtype=w.dtype) for _ in range(2))
    calls = []
    real = torch.nn.functional.linear
    with torch.no_grad(), pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.nn.functional, "linear", lambda *a: calls.append(a[1].shape) or real(*a))
        q, k, v = attn.q_proj(x), attn.k_proj(x), attn.v_proj(x)
        assert len(calls) == 1  # one matmul for the three
        q2, k2, q3 = attn.q_proj(y), attn.k_proj(x), attn.q_proj(x)  # inputs change: each its own
        assert len(calls) == 3
        q4 = attn.q_proj(x)  # q asked twice for one input before v: computed alone
        assert len(calls) == 4 and calls[-1][0] == attn.q_proj.out_features
    answers = [(attn.q_proj, q, x), (attn.k_proj, k, x), (attn.v_proj, v, x)]
    answers += [(attn.q_proj, q2, y), (attn.k_proj, k2, x), (attn.q_proj, q3, x), (attn.q_proj, q4, x)]
    for mod, out, inp in answers:
        _close(out, real(inp, mod.weight, mod.bias))
