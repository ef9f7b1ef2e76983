"""Supervised fine-tuning with TRL's SFTTrainer: full or LoRA (optionally on an NF4 base).

Examples are TRL conversational prompt-completion pairs built by `prompts.sft_example`, so the loss
falls on the completion only and the chat template is the one predict uses.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import torch

from mcqflow.config.sft import ALL_PROJECTIONS, SFTParams  # noqa: F401  (importable from here too)
from mcqflow.core.errors import UserError
from mcqflow.core.prompts import sft_example
from mcqflow.core.schema import Record
from mcqflow.modeling.models import compute_dtype, load_base_model, load_tokenizer, on_gpu, write_meta
from mcqflow.train.fast.lora_fused import fuse_lora
from mcqflow.train.fast.lora_qkv import fuse_qkv
from mcqflow.train.fast.lora_swiglu import FuseSwiGLUCallback
from mcqflow.train.launch import is_main_process, split_batch, world_size
from mcqflow.train.profiles import Profile, liger_available, resolve_profile, use_fp8

log = logging.getLogger(__name__)


def subset(records: list[Record], n: int, seed: int) -> list[Record]:
    """`n` rows drawn with `seed`, in their original order; all rows when `n` is 0 or covers them."""
    if n == 0 or n >= len(records):
        return records
    import random

    keep = set(random.Random(seed).sample(range(len(records)), n))
    return [r for i, r in enumerate(records) if i in keep]


def trainer_kwargs(
    output_dir: str, learning_rate: float, logging_steps: int, seed: int, dtype: str, profile
) -> dict:
    """The TrainingArguments SFT and GRPO set alike (sft_config, grpo.grpo_config): seeds, precision,
    device, gradient checkpointing from the speed profile, no unused-parameter search, no reporting."""
    gpu = on_gpu()
    ckpt = profile.gradient_checkpointing and gpu
    # transformers renamed gradient_checkpointing activation_checkpointing (the old name warns); TRL's
    # configs default the old one to True, so both are set, the new one where this transformers has it
    from transformers import TrainingArguments

    new_name = "activation_checkpointing" in TrainingArguments.__dataclass_fields__
    return dict(
        output_dir=output_dir,
        learning_rate=learning_rate,
        logging_steps=logging_steps,
        seed=seed,
        data_seed=seed,
        bf16=compute_dtype(dtype) == torch.bfloat16,
        use_cpu=not gpu,
        gradient_checkpointing=ckpt,
        **({"activation_checkpointing": ckpt} if new_name else {}),
        # Every trainable weight (full or LoRA) takes part in each forward, so under DDP the search for
        # unused ones (transformers' default without gradient checkpointing) is an autograd pass for nothing.
        ddp_find_unused_parameters=False,
        report_to="none",
        logging_nan_inf_filter=not profile.host_runs_ahead,
    )


def sft_config(
    p: SFTParams,
    output_dir: str,
    seed: int,
    profile: Profile | None = None,
    batch_size: int | None = None,
    grad_accum: int | None = None,
    dtype: str = "auto",
):
    """The one place params.yaml keys (and the speed profile) become TRL's SFTConfig. `batch_size` and
    `grad_accum` override the params' pair (OOM back-off keeps their product)."""
    from trl import SFTConfig

    profile = profile or resolve_profile("auto")
    kwargs = dict(
        **trainer_kwargs(output_dir, p.learning_rate, p.logging_steps, seed, dtype, profile),
        num_train_epochs=p.num_train_epochs,
        per_device_train_batch_size=batch_size or p.per_device_train_batch_size,
        gradient_accumulation_steps=grad_accum or p.gradient_accumulation_steps,
        max_length=p.max_length,
        warmup_steps=p.warmup_steps,
        weight_decay=p.weight_decay,
        lr_scheduler_type=p.lr_scheduler_type,
        completion_only_loss=True,
        use_liger_kernel=use_liger(profile),
        save_strategy="no",
        disable_tqdm=False,
    )
    kwargs.update(p.trainer)  # the user's word is last
    return trl_config(SFTConfig, kwargs, "sft", p.trainer)


def trl_config(cls, kwargs: dict, section: str, trainer: dict):
    """TRL's config class built from `kwargs`; a value TRL refuses (its own checks, in __post_init__) is one
    line naming the section, not a traceback. (Unknown `trainer:` keys are caught earlier, when params load:
    config.check_trainer.)"""
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        where = f"{section}: and {section}.trainer: {trainer}" if trainer else f"{section}:"
        raise UserError(
            f"params.yaml: TRL's {cls.__name__} refused the settings from {where}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None


def use_padding_free(profile: Profile) -> bool:
    """Padding-free batches when the profile asks and the device can (a GPU needs torch's varlen kernel)."""
    if not profile.padding_free:
        return False
    from mcqflow.train.fast.packing import available

    if not available("cuda" if on_gpu() else "cpu"):
        log.warning("train.profile=%s: this torch has no varlen attention; padded batches", profile.name)
        return False
    return True


def use_liger(profile: Profile) -> bool:
    """Liger's kernels are Triton: a GPU and the package, or a warning and the plain path."""
    if not (profile.liger and on_gpu()):
        return False
    if not liger_available():
        log.warning(
            "train.profile=%s wants Liger kernels: pip install liger-kernel (running without)", profile.name
        )
        return False
    return True


def lora_config(p: SFTParams):
    from peft import LoraConfig

    lo = p.lora
    return LoraConfig(
        r=lo["r"],
        lora_alpha=lo["alpha"],
        lora_dropout=lo["dropout"],
        target_modules=list(lo["target_modules"]),
        bias="none",
        task_type="CAUSAL_LM",
    )


def prepare_for_training(model, quantization: str, gradient_checkpointing: bool):
    """An NF4 base gets PEFT's k-bit preparation (fp32 norms, input grads) before LoRA goes on."""
    if quantization == "nf4":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    return model


def count_parameters_once(trainer) -> None:
    """transformers' Trainer adds to its `total_flos` statistic at every micro-batch, 6 x tokens x parameters,
    counting the parameters afresh each time by walking every module and parameter: 4.7 ms of host time a
    call on a LoRA 7B (2,333 modules), after the loss was read back, while the GPU waits. The count cannot
    change during training, so it is taken at the first call; the statistic is the same."""
    count = None

    def floating_point_ops(inputs) -> int:
        nonlocal count
        main = getattr(trainer.model, "main_input_name", "input_ids")
        if main not in inputs or not hasattr(trainer.model, "num_parameters"):
            return 0
        if count is None:
            count = trainer.model.num_parameters(exclude_embeddings=True)
        return 6 * inputs[main].numel() * count

    trainer.floating_point_ops = floating_point_ops


def keep_adapter_inputs_in_compute_dtype(model) -> int:
    """Let LoRA layers take their input in the autocast dtype; returns how many layers were changed.

    PEFT keeps adapter weights in fp32 and casts each LoRA layer's input to fp32 before dropout and the
    rank-r product; under bf16 autocast that product casts it straight back to bf16. The round trip
    computes nothing (bf16 -> fp32 is exact, and the product sees bf16 either way) but writes two extra
    copies of every projection's input, forward and backward. PEFT's own bitsandbytes layers already skip
    it under autocast; this does the same for plain Linear layers. Only valid while autocast is on."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
    for m in layers:
        m.cast_input_dtype_enabled = False
    return len(layers)


# Logged values that change from run to run without the result changing (wall-clock rates and times) or
# that say nothing about learning (epoch, token and FLOP counts, min/max lengths): kept out of the tracked
# DVCLive files, so that dvc.lock changes when a result does and `dvc plots show` has the curves that
# matter. Times are in each stage's summary line.
UNTRACKED_LOGS = re.compile(
    r"(?:^|_)(?:runtime|samples_per_second|steps_per_second)$|^step_time$|^total_flos$|^epoch$|^num_tokens$"
    r"|^completions/(?:min|max)_"
)


def live_callback(live_dir: str | Path | None, resume: bool = False):
    """Training curves through DVCLive (transformers' callback, less UNTRACKED_LOGS), or None without a folder."""
    if live_dir is None:
        return None
    from dvclive import Live
    from transformers.integrations import DVCLiveCallback

    class QuietDVCLiveCallback(DVCLiveCallback):
        """DVCLive's `step` is the optimizer step (transformers' callback counts its own calls, so a curve
        logged every 10 steps would end at 7 after 70); a value already logged at this step (the run's
        closing summary repeats the last log's) is not written twice."""

        logged_at, logged = None, set()

        def on_log(self, args, state, control, model=None, logs=None, **kwargs):
            if state.global_step != self.logged_at:
                self.logged_at, self.logged = state.global_step, set()
            logs = {
                k: v for k, v in (logs or {}).items() if not UNTRACKED_LOGS.search(k) and k not in self.logged
            }
            self.logged |= logs.keys()
            self.live.step = state.global_step
            super().on_log(args, state, control, model=model, logs=logs, **kwargs)

    return QuietDVCLiveCallback(
        live=Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None, resume=resume)
    )


def save_trained(trainer, tokenizer, out_dir: Path, **meta) -> None:
    """Replace `out_dir` with the trained weights (full) or adapter (LoRA), the tokenizer and metadata.
    Every rank calls it (saving may gather shards); only rank 0 writes."""
    main = trainer.is_world_process_zero()
    if main and out_dir.exists():
        shutil.rmtree(out_dir)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(out_dir))
    if not main:
        return
    tokenizer.save_pretrained(str(out_dir))
    finetune = "lora" if (out_dir / "adapter_config.json").exists() else "full"
    write_meta(out_dir, finetune=finetune, **meta)


def build_dataset(records: list[Record], mode: str):
    from datasets import Dataset

    rows = []
    for r in records:
        try:
            rows.append(sft_example(r, mode))
        except ValueError as e:
            raise UserError(f"{r.source or r.id}: {e}") from None
    if not rows:
        raise UserError("no training examples")
    return Dataset.from_list(rows)


def train_sft(
    records: list[Record],
    mode: str,
    base: str,
    out_dir: str | Path,
    params: SFTParams,
    seed: int = 42,
    quantization: str = "none",
    live_dir: str | Path | None = None,
    profile: Profile | None = None,
    callbacks: list | None = None,
    dtype: str = "auto",
) -> dict:
    """Train and save the model (full) or adapter (LoRA) plus tokenizer and metadata to `out_dir`.

    Returns the trainer's final metrics (train_loss, runtime, samples/s) plus the micro-batch and
    accumulation the run ended with (the profile's OOM back-off may halve one and double the other)."""
    from transformers import set_seed
    from trl import SFTTrainer

    if params.finetune == "full" and quantization != "none":
        raise UserError("sft.finetune=full cannot train a quantized base; use sft.finetune=lora with nf4")
    profile = profile or resolve_profile("auto")
    out_dir = Path(out_dir)
    work_dir = out_dir.with_name(out_dir.name + ".work")
    tokenizer = load_tokenizer(base)
    dataset = build_dataset(subset(records, params.max_examples, seed), mode)
    processes = world_size()
    batch, accum = split_batch(
        params.per_device_train_batch_size, params.gradient_accumulation_steps, processes
    )
    # Fewer, larger kernels for the same effective batch; OOM back-off undoes it step by step.
    if profile.whole_batch and accum > 1:
        batch, accum = batch * accum, 1
        log.info(
            "train.profile=%s: micro-batch %d x accumulation 1 (the whole effective batch)",
            profile.name,
            batch,
        )
    packed = use_padding_free(profile)
    while True:
        set_seed(seed)
        model = prepare_for_training(
            load_base_model(base, quantization, dtype=dtype),
            quantization,
            profile.gradient_checkpointing and on_gpu(),
        )
        attention = model.config._attn_implementation
        if packed:
            from mcqflow.train.fast import packing

            model.set_attn_implementation(packing.register())
        live = live_callback(live_dir) if is_main_process() else None  # curves logged once
        args = sft_config(params, str(work_dir), seed, profile, batch, accum, dtype)
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            data_collator=packing.collator(tokenizer, args.pad_to_multiple_of) if packed else None,
            peft_config=lora_config(params) if params.finetune == "lora" else None,
            callbacks=[*(callbacks or []), *([live] if live else [])],
        )
        count_parameters_once(trainer)
        if profile.bf16_adapter_inputs and trainer.accelerator.native_amp:
            keep_adapter_inputs_in_compute_dtype(trainer.model)
        if profile.fused_lora:
            fuse_lora(trainer.model, fp8=use_fp8(profile), fused_dropout=profile.fused_dropout)
            if profile.fused_qkv:
                fuse_qkv(trainer.model, fp8=use_fp8(profile))
            if profile.fused_swiglu:  # when training begins: after train() has put Liger's SwiGLU on
                trainer.add_callback(FuseSwiGLUCallback(fp8=use_fp8(profile)))
        try:
            result = trainer.train()
            break
        except torch.OutOfMemoryError:
            if not profile.oom_backoff or batch == 1 or processes > 1:  # one rank cannot retry alone
                if profile.whole_batch and accum == 1 and batch > params.per_device_train_batch_size:
                    how = (
                        f"train.profile={profile.name} runs sft.per_device_train_batch_size x sft.gradient_accumulation_steps at once and, "
                        f"with {processes} processes, cannot back off: use train.profile=memory or a smaller "
                        f"effective batch"
                    )
                else:
                    how = (
                        "lower sft.per_device_train_batch_size (raising sft.gradient_accumulation_steps to keep the "
                        "effective batch), set "
                        "model.quantization=nf4, or use train.profile=memory"
                    )
                raise UserError(f"CUDA out of memory at a micro-batch of {batch} per device: {how}") from None
            batch, accum = batch // 2, accum * 2
            log.warning(
                "CUDA out of memory: micro-batch %d x accumulation %d (same effective batch)", batch, accum
            )
            del trainer, model
            torch.cuda.empty_cache()
    if packed:  # the saved model keeps the attention it was loaded with
        model.set_attn_implementation(attention)
    save_trained(trainer, tokenizer, out_dir, base=base, quantization=quantization, mode=mode)
    if trainer.is_world_process_zero():
        shutil.rmtree(work_dir, ignore_errors=True)
    return {
        **result.metrics,
        "micro_batch": batch,
        "grad_accum": accum,
        "processes": processes,
        "distributed": trainer.accelerator.distributed_type.value,  # NO, MULTI_GPU, FSDP, DEEPSPEED...
        "effective_batch": batch * accum * processes,
        "global_step": trainer.state.global_step,
        "profile": profile.name,
        "padding_free": packed,
    }
