"""GRPO with TRL's GRPOTrainer, resumable.

Reads top to bottom like open-r1's grpo.py: params, checkpoint check, data, model, rewards, trainer,
`train(resume_from_checkpoint=...)`, save. Checkpoints carry a fingerprint of everything that shapes the
run (params, data, starting weights); a re-run resumes only from checkpoints with the same fingerprint,
so a crash at step 2312 of 5506 costs the steps since the last save, and a changed param starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from pathlib import Path

import torch

from mcqflow.config.grpo import GRPOParams
from mcqflow.core.errors import UserError
from mcqflow.core.io import write_text_atomic
from mcqflow.core.prompts import prompt_messages
from mcqflow.core.schema import Record
from mcqflow.data.shuffle import shuffle_all
from mcqflow.modeling.models import (
    load_base_model,
    load_tokenizer,
    on_gpu,
    read_meta,
    resolve_base,
    synchronize,
)
from mcqflow.train.fast import packing
from mcqflow.train.fast.lora_fused import fuse_lora
from mcqflow.train.fast.lora_qkv import fuse_qkv
from mcqflow.train.fast.lora_swiglu import FuseSwiGLUCallback
from mcqflow.train.fast.merged import liger_kernels, liger_rope
from mcqflow.train.launch import is_main_process, world_size
from mcqflow.train.profiles import Profile, resolve_profile, use_fp8, use_fp8_sampling
from mcqflow.train.rewards import build_rewards
from mcqflow.train.training import (
    count_parameters_once,
    live_callback,
    prepare_for_training,
    save_trained,
    trainer_kwargs,
    trl_config,
)

log = logging.getLogger(__name__)
FINGERPRINT = "fingerprint.json"


def grpo_config(
    p: GRPOParams,
    output_dir: str,
    seed: int,
    reward_weights: list[float],
    profile: Profile | None = None,
    num_processes: int = 1,
    dtype: str = "auto",
):
    """The one place params.yaml keys (and the speed profile) become TRL's GRPOConfig.

    A step generates prompts_per_step x num_generations completions in one batch (per process:
    divided by `num_processes`) and trains on them in micro-batches of `micro_batch` with gradient
    accumulation, so a step is one generation call and one optimizer update whatever the micro-batch."""
    from trl import GRPOConfig

    profile = profile or resolve_profile("auto")
    per_step = p.prompts_per_step * p.num_generations
    if per_step % num_processes:
        raise UserError(
            f"grpo: prompts_per_step x num_generations = {per_step} completions do not split over "
            f"{num_processes} processes"
        )
    per_process = per_step // num_processes
    micro = p.micro_batch or per_process
    if per_process % micro:
        raise UserError(
            f"grpo.micro_batch={micro} must divide the {per_process} completions per process and step"
        )
    kwargs = dict(
        **trainer_kwargs(output_dir, p.learning_rate, p.logging_steps, seed, dtype, profile),
        max_steps=p.max_steps,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=per_process // micro,
        num_generations=p.num_generations,
        max_completion_length=p.max_completion_length,
        temperature=p.temperature,
        beta=p.beta,
        loss_type=p.loss_type,
        scale_rewards=p.scale_rewards,
        reward_weights=reward_weights,
        save_strategy="steps",
        save_steps=p.save_steps,
        save_total_limit=2,
    )
    kwargs.update(p.trainer)  # the user's word is last
    return trl_config(GRPOConfig, kwargs, "grpo", p.trainer)


def objective_files() -> list[Path]:
    """The code a GRPO run executes (the grpo stage's import closure, the same list dvc.yaml's deps hold):
    a change in any of it makes old checkpoints someone else's run."""
    from mcqflow.core.deps import closure

    return closure(Path(__file__).with_name("grpo.py")) + [Path(__file__).with_name("grpo.py")]


def fingerprint(p: GRPOParams, records: list[Record], init: str, seed: int) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([asdict(p), seed, init], sort_keys=True).encode())
    for path in sorted(set(objective_files())):
        h.update(path.name.encode() + _file_digest(path))
    for r in records:
        h.update(f"{r.id}\t{r.answer}\n".encode())
    init_dir = Path(init)
    if init_dir.is_dir():
        for f in sorted(init_dir.rglob("*")):
            if f.is_file():
                h.update(f"{f.relative_to(init_dir)}:{f.stat().st_size}:".encode())
                h.update(_file_digest(f) if f.stat().st_size < 2**30 else str(f.stat().st_mtime_ns).encode())
    return h.hexdigest()


def _file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.digest()


def last_checkpoint(ckpt_dir: Path, fp: str, clean: bool = True) -> str | None:
    """The newest complete checkpoint made by a run with this fingerprint.

    Checkpoints from other params, data or objective code, or from a run that finished, are removed: resuming
    is for runs that crashed. A checkpoint cut short by a crash has no trainer_state.json (the Trainer writes
    it last), so it is skipped and removed. With `clean=False` (every rank but 0) nothing is removed; the
    answer is the same, since what rank 0 removes is never chosen."""
    if not ckpt_dir.is_dir():
        return None
    stamp = ckpt_dir / FINGERPRINT
    info = json.loads(stamp.read_text()) if stamp.exists() else {}
    if info.get("fingerprint") != fp or info.get("complete"):
        why = "a finished run" if info.get("complete") else "other params, data or code"
        log.info("checkpoints in %s are from %s: starting afresh", ckpt_dir, why)
        if clean:
            shutil.rmtree(ckpt_dir, ignore_errors=True)
        return None
    steps = sorted(
        (int(d.name.split("-")[1]), d)
        for d in ckpt_dir.glob("checkpoint-*")
        if d.name.split("-")[1].isdigit()
    )
    for _, d in reversed(steps):
        if (d / "trainer_state.json").exists():
            return str(d)
        log.info("skipping incomplete checkpoint %s", d)
        if clean:
            shutil.rmtree(d, ignore_errors=True)
    return None


def load_policy(
    init: str,
    finetune: str,
    lora_config,
    quantization: str = "none",
    gradient_checkpointing: bool = False,
    dtype: str = "auto",
):
    """(model, tokenizer, base, peft_config) to start GRPO from `init`: a model trained by the sft stage
    (full weights or a LoRA adapter, whose training continues) or a base model (a new adapter if LoRA)."""
    meta = read_meta(init)
    if Path(init, "adapter_config.json").exists():
        from peft import PeftModel

        base = meta["base"]
        model = prepare_for_training(
            load_base_model(base, quantization, dtype=dtype), quantization, gradient_checkpointing
        )
        return PeftModel.from_pretrained(model, init, is_trainable=True), load_tokenizer(init), base, None
    base = meta.get("base", init)
    model = prepare_for_training(
        load_base_model(init, quantization, dtype=dtype), quantization, gradient_checkpointing
    )
    return model, load_tokenizer(init), base, (lora_config if finetune == "lora" else None)


class StepSplit:
    """Where each optimizer step's time goes, for `mcqflow bench`: generation (sampling), merge (writing
    W + BA into the merged sampling copy), scoring (rewards, advantages and any extra log-prob pass, the rest
    of TRL's `_generate_and_score_completions`), forward_backward (the loss's forward and backward over every
    micro-batch) and other (optimizer step, scheduler, logging, callbacks). Parts are exclusive: a part's
    time excludes the parts timed inside it. Each boundary synchronises the GPU, so only benchmarks use it.
    Beside the times, `tokens` holds each step's sampled completion tokens (the end token counted), so a
    policy that stops where it likes (real weights) has its tokens/s measured, not assumed."""

    PARTS = ("generation", "merge", "scoring", "forward_backward", "other")

    def __init__(self):
        self.steps: list[dict[str, float]] = []
        self.tokens: list[int] = []
        self._open: dict[str, float] = {}
        self._stack: list[float] = []
        self._step_start: float | None = None
        self._tokens = 0

    def sampled(self, completion_ids: list[list[int]]) -> None:
        """Count one generation's completions (lists of token ids, as TRL's generation returns them)."""
        self._tokens += sum(len(c) for c in completion_ids)

    @contextmanager
    def part(self, name: str):
        synchronize()
        t0 = time.perf_counter()
        self._stack.append(0.0)
        try:
            yield
        finally:
            synchronize()
            dt = time.perf_counter() - t0
            inner = self._stack.pop()
            self._open[name] = self._open.get(name, 0.0) + dt - inner
            if self._stack:
                self._stack[-1] += dt

    def callback(self):
        """A TrainerCallback closing one record per optimizer step (`other` is what the parts leave)."""
        from transformers import TrainerCallback

        split = self

        class Boundaries(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                synchronize()
                if split._step_start is None:
                    split._step_start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                synchronize()
                now = time.perf_counter()
                total = now - split._step_start
                parts = {p: round(split._open.get(p, 0.0), 4) for p in split.PARTS[:-1]}
                parts["other"] = round(total - sum(parts.values()), 4)
                split.steps.append({**parts, "total": round(total, 4)})
                split.tokens.append(split._tokens)
                split._open, split._step_start, split._tokens = {}, now, 0

        return Boundaries()

    def mean(self, warmup: int) -> dict[str, float]:
        """Mean seconds of each part over the steps after `warmup`."""
        steps = self.steps[warmup:] or self.steps
        keys = [*self.PARTS, "total"]
        return {k: round(sum(s[k] for s in steps) / len(steps), 3) for k in keys} if steps else {}

    def tokens_per_s(self, warmup: int) -> tuple[float, float] | None:
        """(completion tokens a step, completion tokens/s) over the steps after `warmup`; None before any."""
        pairs = list(zip(self.tokens, self.steps, strict=False))
        pairs = pairs[warmup:] or pairs
        seconds = sum(s["total"] for _, s in pairs)
        if not pairs or seconds <= 0:
            return None
        n = sum(k for k, _ in pairs)
        return n / len(pairs), n / seconds


def _timed(split: StepSplit | None, name: str):
    return split.part(name) if split is not None else nullcontext()


# Per-token tensors of TRL's GRPO inputs (one column a completion position), and the loss types whose
# gradient does not depend on which completions share a micro-batch: their normaliser is the whole generation
# batch's token count (dapo), a constant (dr_grpo), or a per-sequence mean over micro-batches of equal size
# (grpo); bnpo and the others normalise by each micro-batch's own tokens.
COMPLETION_KEYS = (
    "completion_ids", "completion_mask", "old_per_token_logps", "sampling_per_token_logps",
    "ref_per_token_logps", "tool_mask", "importance_sampling_ratio",
)  # fmt: skip
GROUPING_NEUTRAL_LOSSES = ("dapo", "dr_grpo", "grpo")
# packed_grpo: the generation batch's real prompt and completion tokens a row ([rows, 2], on the host), carried
# through TRL's shuffle and split beside its tensors, so that packing a micro-batch never waits for the GPU
LENGTHS = "mcqflow_lengths"
# shared_prompts: which rows of the generation batch hold the same prompt (a group id a row, on the host)
GROUPS = "mcqflow_groups"


def by_length(batch: dict) -> dict:
    """TRL's shuffle of the generation batch (`shuffle_sequence_dict`: the same random permutation, drawn
    the same way) followed by a stable sort on completion length, longest first: micro-batches then hold
    completions of like length, rows of one length stay in shuffled order, and the random stream is the
    one the plain shuffle leaves."""
    n = len(next(v for v in batch.values() if v is not None))
    perm = torch.randperm(n)
    lengths = batch["completion_mask"].sum(1).cpu()[perm]
    return _reordered(batch, perm[torch.argsort(lengths, descending=True, stable=True)])


def by_group(batch: dict) -> dict:
    """TRL's shuffle of the generation batch (the same random permutation, drawn the same way), then each
    prompt's rows (`GROUPS`) moved together, groups in the order their first row came: micro-batches then
    hold whole groups (`shared_prompts` runs a group's prompt once), and the random stream is the one the
    plain shuffle leaves."""
    n = len(next(v for v in batch.values() if v is not None))
    perm = torch.randperm(n)
    groups = batch[GROUPS][perm].tolist()
    rank: dict[int, int] = {}
    for g in groups:
        rank.setdefault(g, len(rank))
    return _reordered(batch, perm[torch.argsort(torch.tensor([rank[g] for g in groups]), stable=True)])


@contextmanager
def _shuffle(order):
    """TRL's `_prepare_inputs` shuffling the generation batch with `order` (by_length, by_group) instead of
    its own `shuffle_sequence_dict`, for the calls inside this block."""
    import trl.trainer.grpo_trainer as trl_grpo

    own = trl_grpo.shuffle_sequence_dict
    trl_grpo.shuffle_sequence_dict = order
    try:
        yield
    finally:
        trl_grpo.shuffle_sequence_dict = own


def _reordered(batch: dict, order: torch.Tensor) -> dict:
    """Every per-row value of a generation batch (tensors and lists) in `order`, as TRL's shuffle permutes."""

    def permute(v):
        if v is None or (isinstance(v, torch.Tensor) and v.ndim == 0):
            return v
        if isinstance(v, torch.Tensor):
            return v[order.to(v.device)]
        return [v[i] for i in order]

    return {k: permute(v) for k, v in batch.items()}


# Widths a cut micro-batch is rounded up to (prompt and completion each): a few shapes a step, not one per
# micro-batch, so that kernels specialised or tuned per shape are reused (length_batches).
TRIM_BUCKET = 64


def trim_padding(inputs: dict, bucket: int = 1) -> dict:
    """A micro-batch cut to its own longest rows: prompt columns that are padding in every row (prompts are
    padded on the left) and completion columns past every row's end (completions on the right) dropped,
    each width then rounded up to a multiple of `bucket` (within the padded width). The loss is the same up
    to float rounding: a completion token never attends to later positions, and RoPE attention depends on
    position differences alone."""
    if any(k in inputs for k in ("pixel_values", "image_grid_thw", "num_images")):
        return inputs
    prompt_cols = inputs["prompt_mask"].any(0).nonzero()
    used = inputs["completion_mask"].any(0).nonzero()
    start = int(prompt_cols[0]) if prompt_cols.numel() else 0
    end = int(used[-1]) + 1 if used.numel() else 1
    width, prompt_width = inputs["completion_ids"].shape[1], inputs["prompt_ids"].shape[1]
    end = min(width, -(-end // bucket) * bucket)
    start = prompt_width - min(prompt_width, -(-(prompt_width - start) // bucket) * bucket)
    out = dict(inputs)
    out["prompt_ids"], out["prompt_mask"] = inputs["prompt_ids"][:, start:], inputs["prompt_mask"][:, start:]
    for k in COMPLETION_KEYS:
        v = inputs.get(k)
        if isinstance(v, torch.Tensor) and v.dim() == 2 and v.shape[1] == width:
            out[k] = v[:, :end]
    return out


def trainer_class(
    merged_generation: bool,
    graph_decode: bool = False,
    liger_sampling: bool = False,
    compact_decode: bool = False,
    length_batches: bool = False,
    packed: bool = False,
    fp8_sampling: bool = False,
    decode_windows: bool = False,
    fp8_tensor_sampling: bool = False,
    prefill_once: bool = False,
    shared_prompts: bool = False,
):
    """TRL's GRPOTrainer, or one that samples through a merged copy of the LoRA policy (`merged.py`), with
    `graph_decode` through a static cache and a CUDA-graph decode step (`decode.py`), with `compact_decode`
    that step over the rows still running (where it is a graph: GPU), with `liger_sampling` through Liger's
    RMSNorm, SwiGLU and RoPE kernels in the copy (GPU only). With `length_batches` the training side changes
    too: micro-batches of completions of like length (where the loss type makes grouping neutral), each cut
    to its own longest rows (widths in buckets of TRIM_BUCKET) instead of the whole step's (not in `fast`).
    With `packed` each micro-batch's rows run end to end as one row through varlen attention (`packing.py`):
    the forward sees no padding at all, and the log-probabilities go back into TRL's padded layout. Where
    `train_grpo` put Liger's RMSNorm and SwiGLU on the policy (`liger_training`), its training forward runs
    Liger's RoPE too. With `fp8_sampling` the copy's projections are FP8 (`merged.Fp8Linear`), their
    products tensor-scaled with the row scales applied after where `fp8_tensor_sampling` (and q/k/v, gate/up
    each as one product, the MLP's SwiGLU in the pass that applies the scales); with
    `decode_windows` the graph decoder's attention reads only the cache slots written so far; with
    `prefill_once` it runs a prompt that a group of completions shares once, not once a row. With
    `shared_prompts` (and `packed`) training does the same: micro-batches hold whole groups (where the loss
    type makes grouping neutral) and a group's prompt runs once in the packed row (`packing.pack_groups`).

    Only the sampling changes: TRL's own code does the rest (rewards, advantages, loss), and it already
    recomputes the log-probabilities of the sampled tokens through the policy, so the update is the same.
    Either class takes two benchmark hooks: `step_split` (a StepSplit) and `end_lengths` (a function giving
    the completion lengths of a batch, forced through the end token, so that random weights stop like a
    policy; merged sampling only)."""
    from trl import GRPOTrainer

    class TimedGRPOTrainer(GRPOTrainer):
        step_split: StepSplit | None = None
        end_lengths = None

        def _generate_single_turn(self, *args, **kwargs):
            with _timed(self.step_split, "generation"):
                out = super()._generate_single_turn(*args, **kwargs)
            if self.step_split is not None:
                self.step_split.sampled(out[0])
            return out

        def training_step(self, *args, **kwargs):
            with _timed(self.step_split, "forward_backward"):
                return super().training_step(*args, **kwargs)

        def compute_loss(self, model, inputs, *args, **kwargs):
            # the forward and TRL's loss: this micro-batch's lengths for packing, Liger's RoPE where the policy
            # has Liger's kernels, and a label for profiler timelines (the rest of a step is mostly backward)
            self._packing_lengths, self._packing_groups = inputs.get(LENGTHS), inputs.get(GROUPS)
            try:
                with torch.profiler.record_function("mcqflow::forward_and_loss"), liger_rope(self._liger):
                    return super().compute_loss(model, inputs, *args, **kwargs)
            finally:
                self._packing_lengths = self._packing_groups = None

        def _get_per_token_logps_and_entropies(
            self, model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False,
            compute_aux_loss=False, **extra,
        ):  # fmt: skip
            # text only (no images), no MoE load-balancing loss: otherwise TRL's padded forward
            if not packed or compute_aux_loss or any(v is not None for v in extra.values()):
                return super()._get_per_token_logps_and_entropies(
                    model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy,
                    compute_aux_loss, **extra,
                )  # fmt: skip
            batch_size = batch_size or input_ids.size(0)
            lengths = self._packing_lengths  # this micro-batch's, on the host (compute_loss), else None
            groups = self._packing_groups
            if lengths is not None and len(lengths) != input_ids.size(0):
                lengths = None
            if lengths is None or groups is None or len(groups) != input_ids.size(0):
                groups = None
            logps, entropies = [], []
            with packing.attention(self.accelerator.unwrap_model(model), packing.register()):
                for start in range(0, input_ids.size(0), batch_size):
                    part = slice(start, start + batch_size)
                    if groups is not None and len(set(groups[part].tolist())) < len(groups[part]):
                        rows = packing.pack_groups(
                            input_ids[part], attention_mask[part], logits_to_keep, lengths[part], groups[part]
                        )
                        shared = packing.expanded(rows.pop("expand"), rows.pop("back"))
                    else:
                        rows = packing.pack_rows(
                            input_ids[part], attention_mask[part], logits_to_keep,
                            None if lengths is None else lengths[part],
                        )  # fmt: skip
                        shared = nullcontext()
                    index, first = rows.pop("index"), rows.pop("first")
                    with self.accelerator.autocast(), shared:
                        out = model(**rows, fused_lm_head=True)
                    shape = input_ids[part].shape
                    logps.append(packing.unpack_rows(out.log_probs, index, first, shape)[:, -logits_to_keep:])
                    if compute_entropy:
                        whole = packing.unpack_rows(out.entropy, index, first, shape)
                        entropies.append(whole[:, -logits_to_keep:])
            return torch.cat(logps), torch.cat(entropies) if compute_entropy else None, None

        _packing_lengths = _packing_groups = None
        _liger = False  # Liger's kernels on the policy (train_grpo sets it where they could be put on)

        def _generate_and_score_completions(self, *args, **kwargs):
            with _timed(self.step_split, "scoring"):
                out = super()._generate_and_score_completions(*args, **kwargs)
            if packed:  # each row's real prompt and completion tokens, on the host once a generation
                out[LENGTHS] = torch.stack(
                    [out["prompt_mask"].sum(1), out["completion_mask"].sum(1)], 1
                ).cpu()
                if shared_prompts:  # which rows share a prompt, on the host
                    out[GROUPS] = packing.distinct_prompts(out["prompt_ids"], out["prompt_mask"])[2].cpu()
            return out

        def _prepare_inputs(self, generation_batch):
            training, neutral = self.model.training, self.loss_type in GROUPING_NEUTRAL_LOSSES
            if packed and shared_prompts and training and neutral:
                with _shuffle(by_group):
                    return super()._prepare_inputs(generation_batch)
            if not (length_batches and training):
                return super()._prepare_inputs(generation_batch)
            with _shuffle(by_length) if neutral else nullcontext():
                return trim_padding(super()._prepare_inputs(generation_batch), TRIM_BUCKET)

    if not merged_generation:
        return TimedGRPOTrainer

    from trl.trainer.utils import pad

    from mcqflow.train.fast.decode import Decoder, end_processor
    from mcqflow.train.fast.merged import MergedCopy

    class MergedGenerationGRPOTrainer(TimedGRPOTrainer):
        _merged: MergedCopy | None = None
        _decoder: Decoder | None = None

        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, **kwargs):
            model = self.accelerator.unwrap_model(self.model)
            plain = (
                self.use_vllm
                or self.use_transformers_continuous_batching
                or (images is not None and any(images))
                or multimodal_fields
                or not MergedCopy.supports(model)
            )
            if plain:
                return super()._generate_single_turn(
                    prompt_ids, images, multimodal_fields, num_generations, **kwargs
                )
            with _timed(self.step_split, "generation"):
                out = self._merged_generation(model, prompt_ids)
            if self.step_split is not None:
                self.step_split.sampled(out[0])
            return out

        def _merged_generation(self, model, prompt_ids):
            if self._merged is None:
                self._merged = MergedCopy(
                    model, liger=liger_sampling, fp8=fp8_sampling, fp8_tensor_scaled=fp8_tensor_sampling
                )
                if graph_decode:
                    # compact: None is the decoder's own choice, on wherever its step is a graph
                    self._decoder = Decoder(
                        self._merged.model,
                        compact=None if compact_decode else False,
                        windows=decode_windows,
                        prefill_once=None if prefill_once else False,
                    )
            device = self.accelerator.device
            pad_id = self._tokenizer.pad_token_id
            tensors = [torch.tensor(ids) for ids in prompt_ids]
            input_ids = pad(tensors, padding_value=pad_id, padding_side="left").to(device)
            mask = pad([torch.ones_like(t) for t in tensors], padding_value=0, padding_side="left").to(device)
            end_at = self.end_lengths(len(prompt_ids)) if self.end_lengths is not None else None
            with _timed(self.step_split, "merge"):
                self._merged.sync()
            gc = self.generation_config
            with torch.no_grad(), self._merged.sampling():
                if self._decoder is not None and self._decoder.supports(gc):
                    out = self._decoder.generate(input_ids, mask, gc, end_at=end_at)
                else:
                    procs = None
                    if end_at is not None:
                        from transformers import LogitsProcessorList

                        eos = self.eos_token_ids[0]
                        procs = LogitsProcessorList([end_processor(end_at, input_ids.size(1), eos)])
                    out = self._merged.model.generate(
                        input_ids=input_ids, attention_mask=mask, generation_config=gc, logits_processor=procs
                    )
            completions = out[:, input_ids.size(1) :].cpu()
            eos = set(self.eos_token_ids)
            ids = []
            for row in completions.tolist():
                end = next((i for i, t in enumerate(row) if t in eos), None)
                ids.append(row if end is None else row[: end + 1])
            return ids, None

    return MergedGenerationGRPOTrainer


def _start_step_recorder():
    """A callback that notes the step the Trainer starts at (after it has restored a checkpoint)."""
    from transformers import TrainerCallback

    class StartStep(TrainerCallback):
        step: int | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.step = state.global_step

    return StartStep()


def train_grpo(
    records: list[Record],
    init: str,
    out_dir: str | Path,
    ckpt_dir: str | Path,
    params: GRPOParams,
    seed: int = 42,
    finetune: str = "full",
    lora_config=None,
    quantization: str = "none",
    live_dir: str | Path | None = None,
    profile: Profile | None = None,
    callbacks: list | None = None,
    dtype: str = "auto",
    step_split: StepSplit | None = None,
    end_lengths=None,
) -> dict:
    """Train and save the policy to `out_dir`. Returns the final metrics plus `resumed_from` (a checkpoint or
    None), `start_step` (where the Trainer began) and `global_step`. `step_split` and `end_lengths` are the
    benchmark's hooks (see `trainer_class`)."""
    from datasets import Dataset
    from transformers import set_seed

    profile = profile or resolve_profile("auto")
    set_seed(seed)
    # TRL 1.16 reads transformers' deprecated `is_gradient_checkpointing` alias at every generation: a
    # FutureWarning in each GRPO run that no setting of ours can change
    warnings.filterwarnings(
        "ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning
    )
    init = resolve_base(init)
    ckpt_dir, out_dir = Path(ckpt_dir), Path(out_dir)
    fp = fingerprint(params, records, init, seed)
    main = is_main_process()
    # Every rank decides where to resume from the same files: all read first, then rank 0 alone cleans up
    # and stamps (atomically), and nobody goes on until it has. (A rank once read the stamp half-written.)
    from accelerate import PartialState

    ranks = PartialState()
    resume = last_checkpoint(ckpt_dir, fp, clean=False)
    ranks.wait_for_everyone()
    if main:
        last_checkpoint(ckpt_dir, fp, clean=True)
        write_text_atomic(ckpt_dir / FINGERPRINT, json.dumps({"fingerprint": fp}) + "\n")
    ranks.wait_for_everyone()

    if params.shuffle_options:
        records = shuffle_all(records, seed)
    dataset = Dataset.from_list(
        [
            {"prompt": prompt_messages(r, params.mode), "answer": r.answer, "options": r.options}
            for r in records
        ]
    )
    model, tokenizer, base, peft_config = load_policy(
        init, finetune, lora_config, quantization, profile.gradient_checkpointing and on_gpu(), dtype
    )
    funcs, weights = build_rewards(params.rewards, params.max_completion_length, params.overlong_cache)
    start = _start_step_recorder()
    callbacks = [start, *(callbacks or []), *([step_split.callback()] if step_split else [])]
    if live_dir is not None and main:  # curves logged once
        callbacks.append(live_callback(live_dir, resume=bool(resume)))
    trainer = trainer_class(
        profile.merged_generation,
        profile.graph_decode,
        profile.liger_sampling,
        profile.compact_decode,
        profile.length_batches,
        # not with recomputed activations: the recompute would run attention without the packed bounds
        profile.packed_grpo
        and not profile.gradient_checkpointing
        and packing.available("cuda" if on_gpu() else "cpu"),
        use_fp8_sampling(profile),
        profile.decode_windows,
        profile.fp8_tensor_sampling,
        profile.prefill_once,
        profile.shared_prompts,
    )(
        model=model,
        reward_funcs=funcs,
        args=grpo_config(params, str(ckpt_dir), seed, weights, profile, world_size(), dtype),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    trainer.step_split, trainer.end_lengths = step_split, end_lengths
    count_parameters_once(trainer)
    if profile.fused_lora:
        fuse_lora(trainer.model, fp8=use_fp8(profile), fused_dropout=profile.fused_dropout)
        if profile.fused_qkv:
            fuse_qkv(trainer.model, fp8=use_fp8(profile))
    if profile.liger_training:
        unwrapped = trainer.accelerator.unwrap_model(trainer.model)
        trainer._liger = liger_kernels(getattr(unwrapped, "get_base_model", lambda: unwrapped)(), "training")
    if profile.fused_lora and profile.fused_swiglu:  # when training begins: after any kernels are put on
        trainer.add_callback(FuseSwiGLUCallback(fp8=use_fp8(profile)))
    if resume:
        log.info("resuming from %s", resume)
    result = trainer.train(resume_from_checkpoint=resume)
    save_trained(
        trainer,
        tokenizer,
        out_dir,
        base=base,
        quantization=quantization,
        mode=params.mode,
        init=init,
        steps=trainer.state.global_step,
    )
    # The policy is saved: the checkpoints have done their job (and would only be resumed by mistake).
    # Only the fingerprint stays, so this output is the same bytes for the same run.
    trainer.accelerator.wait_for_everyone()
    for entry in ckpt_dir.iterdir() if main else []:
        if entry.is_dir():
            shutil.rmtree(entry)
        elif entry.name != FINGERPRINT:
            entry.unlink()
    if main:
        write_text_atomic(ckpt_dir / FINGERPRINT, json.dumps({"fingerprint": fp, "complete": True}) + "\n")
    return {
        **result.metrics,
        "resumed_from": resume,
        "start_step": start.step,
        "global_step": trainer.state.global_step,
    }
