import pytest
import torch

from conftest import sample_records
from mcqflow.core.errors import UserError
from mcqflow.train.profiles import PROFILES, profile_from_params, resolve_profile
from mcqflow.train.training import SFTParams, sft_config, train_sft


def test_auto_is_fast_on_a_gpu_and_leaves_the_cpu_default_alone():
    assert resolve_profile("auto", gpu=True) is PROFILES["fast"]
    cpu = resolve_profile("auto", gpu=False)
    assert not (cpu.gradient_checkpointing or cpu.liger or cpu.merged_generation or cpu.share_prefix)
    assert profile_from_params({}) == resolve_profile("auto")
    with pytest.raises(UserError, match="train.profile='turbo'"):
        resolve_profile("turbo")


def test_profile_maps_onto_sft_config_and_the_users_trainer_keys_win(tmp_path):
    c = sft_config(SFTParams(), str(tmp_path), 0, PROFILES["vanilla"])
    assert not c.gradient_checkpointing and not c.use_liger_kernel  # both GPU-only: this is a CPU
    c = sft_config(
        SFTParams(trainer={"max_steps": 3, "logging_steps": 7}), str(tmp_path), 0, PROFILES["fast"]
    )
    assert (c.max_steps, c.logging_steps) == (3, 7)


def test_host_runs_ahead_drops_the_per_micro_batch_loss_read_back_only(tmp_path):
    """transformers reads every micro-batch's loss back to filter NaN/inf from the log: a wait for the GPU
    each micro-batch. `host_runs_ahead` turns that filter off, in SFT and GRPO alike, and nothing else."""
    import dataclasses

    from mcqflow.train.grpo import GRPOParams, grpo_config

    base = PROFILES["fast"]
    for flag in (False, True):
        profile = dataclasses.replace(base, host_runs_ahead=flag)
        sft = sft_config(SFTParams(), str(tmp_path), 0, profile)
        grpo = grpo_config(GRPOParams(), str(tmp_path), 0, [1.0], profile)
        assert sft.logging_nan_inf_filter is grpo.logging_nan_inf_filter is (not flag)
    same = sft_config(SFTParams(), str(tmp_path), 0, dataclasses.replace(base, host_runs_ahead=True))
    other = sft_config(SFTParams(), str(tmp_path), 0, dataclasses.replace(base, host_runs_ahead=False))
    differ = {k for k, v in same.to_dict().items() if other.to_dict()[k] != v}
    assert differ == {"logging_nan_inf_filter"}


def test_oom_backoff_halves_the_micro_batch_and_keeps_the_effective_batch(tiny_dir, tmp_path):
    """A CUDA OOM (raised here by a callback whenever a micro-batch is above 2) restarts the run with half
    the micro-batch and twice the accumulation, until it fits."""
    from transformers import TrainerCallback

    class OOMAbove2(TrainerCallback):
        seen: list = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.seen.append((args.per_device_train_batch_size, args.gradient_accumulation_steps))
            if args.per_device_train_batch_size > 2:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    cb = OOMAbove2()
    params = SFTParams(
        finetune="full",
        num_train_epochs=1,
        per_device_train_batch_size=8,
        gradient_accumulation_steps=1,
        max_length=256,
    )
    m = train_sft(sample_records("train")[:16], "plain", tiny_dir, tmp_path / "o", params, callbacks=[cb],
                  profile=PROFILES["memory"])  # fmt: skip
    assert (m["micro_batch"], m["grad_accum"]) == (2, 4)
    assert {b * a for b, a in cb.seen} == {8}  # the effective batch never changed
    with pytest.raises(
        UserError,
        match="out of memory at a micro-batch of 8 per device: lower sft.per_device_train_batch_size",
    ):
        train_sft(sample_records("train")[:16], "plain", tiny_dir, tmp_path / "v", params, callbacks=[cb],
                  profile=PROFILES["vanilla"])  # fmt: skip


def _lora_grads(model, ids, seen: list):
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_bf16_lora_inputs_drop_the_fp32_copy_and_compute_exactly_the_same(tiny_dir):
    """Under bf16 autocast, PEFT's fp32 copy of each LoRA input is cast straight back to bf16 by the
    matmul: skipping it must leave the loss and every adapter gradient bit-identical."""
    from peft import get_peft_model
    from peft.tuners.lora import LoraLayer
    from transformers import AutoModelForCausalLM

    from mcqflow.train.training import keep_adapter_inputs_in_compute_dtype, lora_config

    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.bfloat16)
    p = SFTParams()
    p.lora = {**p.lora, "dropout": 0.0}  # dropout draws differ by dtype; the arithmetic must not
    model = get_peft_model(model, lora_config(p))
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, LoraLayer):  # B starts at zero: give the adapter path something to carry
            torch.nn.init.normal_(m.lora_B["default"].weight, std=0.02)
    seen: list = []
    for m in model.modules():
        if isinstance(m, LoraLayer):
            m.lora_A["default"].register_forward_pre_hook(lambda _, args: seen.append(args[0].dtype))
    ids = torch.randint(0, model.config.vocab_size, (2, 24))

    loss_cast, grads_cast = _lora_grads(model, ids, seen)
    assert set(seen) == {torch.float32} and {g.dtype for g in grads_cast.values()} == {torch.float32}
    seen.clear()
    assert keep_adapter_inputs_in_compute_dtype(model) == 7 * model.config.num_hidden_layers
    loss_bf16, grads_bf16 = _lora_grads(model, ids, seen)
    assert set(seen) == {torch.bfloat16}  # the copy is gone
    assert torch.equal(loss_cast, loss_bf16)
    assert grads_cast.keys() == grads_bf16.keys()
    for name, g in grads_cast.items():
        assert torch.equal(g, grads_bf16[name]), name


def test_fast_trains_the_whole_effective_batch_at_once_with_bf16_lora_inputs(tiny_dir, tmp_path):
    """`fast` turns batch_size x grad_accum into one micro-batch, and under bf16 autocast (here on the CPU)
    its LoRA layers take bf16 inputs; vanilla keeps both as they were."""
    from peft.tuners.lora import LoraLayer
    from transformers import TrainerCallback

    class Look(TrainerCallback):
        def on_step_begin(self, args, state, control, model=None, **kwargs):
            layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
            self.casts = {m.cast_input_dtype_enabled for m in layers}
            self.batch = (args.per_device_train_batch_size, args.gradient_accumulation_steps)

    params = SFTParams(
        finetune="lora",
        num_train_epochs=1,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        max_length=256,
        trainer={"bf16": True},
    )
    records = sample_records("train")[:8]
    for profile, batch, casts in [("fast", (4, 1), {False}), ("vanilla", (2, 2), {True})]:
        look = Look()
        m = train_sft(records, "plain", tiny_dir, tmp_path / profile, params, profile=PROFILES[profile],
                      callbacks=[look])  # fmt: skip
        assert look.batch == batch and (m["micro_batch"], m["grad_accum"]) == batch
        assert m["effective_batch"] == 4
        assert look.casts == casts, profile


def test_one_whole_batch_trains_the_same_weights_as_accumulated_micro_batches(tiny_dir, tmp_path):
    """4 x 1 (fast) and 2 x 2 (plain) are one effective batch: same gradient, so the same weights."""
    from safetensors.torch import load_file

    params = SFTParams(
        finetune="full",
        learning_rate=1e-3,
        num_train_epochs=1,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        max_length=256,
        lr_scheduler_type="constant",
    )
    records = sample_records("train")[:16]
    out = {}
    for name in ("fast", "cpu"):
        m = train_sft(records, "plain", tiny_dir, tmp_path / name, params, profile=PROFILES[name])
        assert m["global_step"] == 4 and m["effective_batch"] == 4
        out[name] = load_file(tmp_path / name / "model.safetensors")
    moved = 0.0
    start = load_file(f"{tiny_dir}/model.safetensors")
    for k, w in out["cpu"].items():
        assert torch.allclose(out["fast"][k], w, rtol=0, atol=1e-5), k
        moved = max(moved, (w - start[k]).abs().max().item())
    assert moved > 1e-3  # the weights did train: equal because the same, not because untouched
