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
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
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
