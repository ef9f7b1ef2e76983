"""The fused LoRA layer (`fused_lora`) computes what PEFT's layer computes, with the same dropout masks."""

import dataclasses

import pytest
import torch

from conftest import sample_records
from mcqflow.lora_fused import _LoraLinear, fuse_lora
from mcqflow.models import load_base_model, load_tokenizer
from mcqflow.prompts import render_prompt
from mcqflow.training import SFTParams, lora_config


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
    from mcqflow import training
    from mcqflow.profiles import PROFILES

    seen = []
    real = training.fuse_lora
    monkeypatch.setattr(training, "fuse_lora", lambda m: seen.append(real(m)) or seen[-1])
    params = SFTParams(finetune="lora", trainer={"max_steps": 1})
    profile = dataclasses.replace(PROFILES["cpu"], fused_lora=True)
    training.train_sft(
        sample_records("train")[:8], "plain", tiny_dir, tmp_path / "m", params, profile=profile
    )
    assert seen and seen[0] > 0
