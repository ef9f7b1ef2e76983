"""Supervised fine-tuning with TRL's SFTTrainer: full or LoRA (optionally on an NF4 base).

Examples are TRL conversational prompt-completion pairs built by `prompts.sft_example`, so the loss
falls on the completion only and the chat template is the one predict uses.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mcqflow.config import build, choose
from mcqflow.errors import UserError
from mcqflow.models import compute_dtype, load_base_model, load_tokenizer, on_gpu, write_meta
from mcqflow.prompts import sft_example
from mcqflow.schema import Record

ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class SFTParams:
    """params.yaml `sft:`. Short names for what people vary; `trainer:` passes any other SFTConfig field."""

    finetune: str = "lora"  # full | lora
    lr: float = 2e-4
    epochs: float = 1.0
    batch_size: int = 4
    grad_accum: int = 4
    max_length: int = 1024
    warmup_steps: int = 0
    weight_decay: float = 0.0
    scheduler: str = "cosine"
    logging_steps: int = 5
    gradient_checkpointing: bool = True  # only takes effect on a GPU
    lora: dict = field(
        default_factory=lambda: {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": ALL_PROJECTIONS}
    )
    trainer: dict = field(default_factory=dict)

    @classmethod
    def from_params(cls, d: dict) -> SFTParams:
        p = build(cls, d, "sft")
        choose(p.finetune, ("full", "lora"), "sft.finetune")
        return p


def sft_config(p: SFTParams, output_dir: str, seed: int):
    """The one place params.yaml keys become TRL's SFTConfig."""
    from trl import SFTConfig

    gpu = on_gpu()
    return SFTConfig(
        output_dir=output_dir,
        learning_rate=p.lr,
        num_train_epochs=p.epochs,
        per_device_train_batch_size=p.batch_size,
        gradient_accumulation_steps=p.grad_accum,
        max_length=p.max_length,
        warmup_steps=p.warmup_steps,
        weight_decay=p.weight_decay,
        lr_scheduler_type=p.scheduler,
        logging_steps=p.logging_steps,
        seed=seed,
        data_seed=seed,
        completion_only_loss=True,
        bf16=compute_dtype() == torch.bfloat16,
        use_cpu=not gpu,
        gradient_checkpointing=p.gradient_checkpointing and gpu,
        save_strategy="no",
        report_to="none",
        disable_tqdm=False,
        **p.trainer,
    )


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


def live_callback(live_dir: str | Path | None, resume: bool = False):
    """Training curves through DVCLive (transformers' callback), or None without a folder."""
    if live_dir is None:
        return None
    from dvclive import Live
    from transformers.integrations import DVCLiveCallback

    return DVCLiveCallback(
        live=Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None, resume=resume)
    )


def save_trained(trainer, tokenizer, out_dir: Path, **meta) -> None:
    """Replace `out_dir` with the trained weights (full) or adapter (LoRA), the tokenizer and metadata."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    trainer.save_model(str(out_dir))
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
) -> dict:
    """Train and save the model (full) or adapter (LoRA) plus tokenizer and metadata to `out_dir`.

    Returns the trainer's final metrics (train_loss, runtime, samples/s)."""
    from transformers import set_seed
    from trl import SFTTrainer

    if params.finetune == "full" and quantization != "none":
        raise UserError("sft.finetune=full cannot train a quantized base; use sft.finetune=lora with nf4")
    set_seed(seed)
    out_dir = Path(out_dir)
    work_dir = out_dir.with_name(out_dir.name + ".work")
    tokenizer = load_tokenizer(base)
    model = prepare_for_training(
        load_base_model(base, quantization), quantization, params.gradient_checkpointing
    )
    callbacks = [cb for cb in [live_callback(live_dir)] if cb]
    trainer = SFTTrainer(
        model=model,
        args=sft_config(params, str(work_dir), seed),
        train_dataset=build_dataset(records, mode),
        processing_class=tokenizer,
        peft_config=lora_config(params) if params.finetune == "lora" else None,
        callbacks=callbacks,
    )
    result = trainer.train()
    save_trained(trainer, tokenizer, out_dir, base=base, quantization=quantization, mode=mode)
    shutil.rmtree(work_dir, ignore_errors=True)
    return dict(result.metrics)
