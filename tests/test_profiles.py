import pytest
import torch

from conftest import sample_records
from mcqflow.errors import UserError
from mcqflow.profiles import PROFILES, profile_from_params, resolve_profile
from mcqflow.training import SFTParams, sft_config, train_sft


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
    params = SFTParams(finetune="full", epochs=1, batch_size=8, grad_accum=1, max_length=256)
    m = train_sft(sample_records("train")[:16], "plain", tiny_dir, tmp_path / "o", params, callbacks=[cb],
                  profile=PROFILES["memory"])  # fmt: skip
    assert (m["micro_batch"], m["grad_accum"]) == (2, 4)
    assert {b * a for b, a in cb.seen} == {8}  # the effective batch never changed
    with pytest.raises(UserError, match="out of memory at sft.batch_size=8"):
        train_sft(sample_records("train")[:16], "plain", tiny_dir, tmp_path / "v", params, callbacks=[cb],
                  profile=PROFILES["vanilla"])  # fmt: skip
