"""Speed profiles (params.yaml `train.profile`): which of the measured speed levers a run uses.

Every lever here was measured by `mcqflow bench` against the vanilla recipe (experiments/bench/), and all but
one change nothing computed beyond float rounding: the CPU tests compare each one with the plain path
(Liger's kernels are Triton, GPU only: a GPU test compares those, in fp32). The one is `fp8_base`, a
precision choice like the vanilla recipe's 4-bit base: `train.fp8: false` turns it off.

- vanilla: TRL's defaults, as users copy them (gradient checkpointing, PEFT generation, no kernels).
- memory: the vanilla memory footprint plus the levers that cost no memory: Liger's layer kernels,
  bf16 LoRA inputs, OOM back-off, prefix sharing in predict. (TRL's SFT already computes the loss through
  a fused LM head that never holds the whole logits.)
- fast: no activation recomputation, Liger kernels, bf16 LoRA inputs, the whole effective SFT batch in one
  micro-batch (OOM back-off halves it until it fits), GRPO generation through a merged copy of the
  policy with a static KV cache and the decode step replayed as a CUDA graph over the rows still running
  and the cache slots written so far, Liger's RMSNorm, SwiGLU and RoPE kernels in that copy (float rounding
  differs from HF's modules in bf16), whole-step generation batches trained in micro-batches (each packed
  into one row, with Liger's kernels in the policy being trained), padding-free SFT batches with
  variable-length attention, each LoRA layer as one autograd function in training (`lora_fused.py`: same
  masks, same result to float rounding) and each MLP's gate/up layers with its SwiGLU as one
  (`lora_swiglu.py`), and on GPUs with FP8 (H100, H200, Ada) the frozen base's products
  in those layers and GRPO's sampling copy in FP8 (e4m3, a power-of-two scale a row; docs/speed.md has what
  it changes), each GRPO prompt run once for its group of completions, in sampling's prefill and in
  training's packed micro-batches (which then hold whole groups).
- auto: `fast` on a GPU; on a CPU none of the levers (the tiny default runs as it always has).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass

from mcqflow.config.schema import choose
from mcqflow.config.train import PROFILE_NAMES, TrainParams
from mcqflow.modeling.models import fp8_supported, on_gpu, under_fsdp

# Liger-Kernel's import warns, twice per process, that its optional CuTe-DSL and Ascend backends are missing:
# nothing a CUDA user can act on (its CUDA kernels are there). Its errors still show.
logging.getLogger("liger_kernel.backends.registry").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Profile:
    name: str
    gradient_checkpointing: bool  # recompute activations in backward: less memory, about 1/3 more compute
    liger: bool  # Liger's Triton kernels (RMSNorm, SwiGLU, RoPE, fused linear + cross-entropy); GPU only
    merged_generation: bool  # GRPO: sample from a merged copy (W + BA), not through PEFT's adapter calls
    share_prefix: bool  # predict: the KV cache of the prompt prefix all questions share, computed once
    oom_backoff: bool  # SFT: on CUDA OOM halve the micro-batch, double accumulation, start again
    bf16_adapter_inputs: bool  # SFT under bf16 autocast: LoRA layers skip PEFT's bf16 -> fp32 input copy
    whole_batch: bool  # SFT: micro-batch = sft.per_device_train_batch_size x sft.gradient_accumulation_steps, accumulation 1 (same batch)
    # GRPO merged sampling: static KV cache, decode step as a CUDA graph (decode.py)
    graph_decode: bool = False
    padding_free: bool = False  # SFT: a batch's examples end to end in one row, varlen attention (packing.py)
    liger_sampling: bool = False  # GRPO: Liger's RMSNorm, SwiGLU, RoPE in the merged copy (merged.py)
    fused_lora: bool = (
        False  # SFT and GRPO training: each LoRA layer as one autograd function (lora_fused.py)
    )
    # SFT and GRPO training on GPUs with FP8 (compute capability >= 8.9): the frozen base's products inside
    # the fused LoRA layers in FP8, row-wise scales (lora_fused.py); a precision choice, off by train.fp8
    fp8_base: bool = False
    # GRPO graph decoding: rows still running moved to the front and the step run over them alone, as rows
    # end (decode.py); GPU only (on a CPU the decoder keeps generate's exact samples)
    compact_decode: bool = False
    # GRPO training: micro-batches of completions of like length, each cut to its own longest rows (widths
    # in 64-column buckets) instead of padded to the step's longest (grpo.py `length_batches`). Not in `fast`:
    # forward+backward a ragged 7B step 9.89 s against 10.68 padded in one run, 10.69 against 10.30 in its repeat
    length_batches: bool = False
    # GRPO training: each micro-batch's rows end to end in one row, varlen attention (packing.py), so the
    # forward computes no padding; the packing is worked out on the host from the generation's lengths. In
    # `fast`: with liger_training it lets micro-batch 8 fit an H100, forward+backward of the ragged 7B step
    # -43% and -40% against both off at micro-batch 4 (docs/speed.md, 8th round)
    packed_grpo: bool = False
    # SFT and GRPO training: the host queues the next micro-batch while this one's backward runs, instead of
    # waiting for it (transformers' NaN/inf filter of the logged loss reads every micro-batch's loss back;
    # off, a NaN loss is logged as NaN). Training itself is unchanged. In `fast` since the eleventh round: SFT
    # 32 x 256 on the 7B 21,782 -> 22,522 tokens/s (H100, one run); GRPO no faster (8th round)
    host_runs_ahead: bool = False
    # GRPO training (GPU, Qwen2): Liger's RMSNorm, SwiGLU and RoPE in the policy being trained, as SFT has them
    # through TRL (merged.py `liger_kernels`): fewer, fused kernels a layer, and fewer activations kept. In
    # `fast`; its GPU test (tests/test_merged.py: loss and LoRA gradients against the plain policy's, fp32)
    # passed on an H100 (9th round)
    liger_training: bool = False
    # GRPO sampling on GPUs with FP8: the merged copy's projections hold W + scale·B·A in FP8 (e4m3, a
    # power-of-two scale a row, merged.py `Fp8Linear`), half the bytes a decode step reads; the precision
    # choice fp8_base makes for training, off with it by train.fp8: false. In `fast`: ragged 7B step,
    # generation -5%, -5% and -7%, 5.5-6.4 GiB less (three H100 runs, docs/speed.md 9th round)
    fp8_sampling: bool = False
    # GRPO graph decoding: a decode step's attention reads only the cache slots written so far (in windows of
    # decode.WINDOW slots, a graph each), not the whole prompt + max_new_tokens cache; same tokens. In `fast`:
    # ragged 7B step, generation -6%, -6% and -7% (three H100 runs)
    decode_windows: bool = False
    # SFT and GRPO training through the fused LoRA layers (GPU): LoRA's dropout drawn inside the adapter's
    # products from Philox counters (lora_dropout.py), forward and backward, so no dropped copy of x and no
    # mask is written, and the adapter's input gradient is added in the same pass; masks as random as
    # torch's, not torch's draws
    fused_dropout: bool = False
    # GRPO's FP8 sampling copy: each product taken with unit scales and the row scales (and bias) applied
    # after in one pass (merged.Fp8Linear `tensor_scaled`): cuBLAS's row-scaled FP8 kernels are 10-112%
    # slower than its tensor-scaled ones at decode's row counts (tenth round); same result up to summation
    # order. q/k/v run as one product (merged.Fp8Group) and gate/up as another, silu(gate) * up computed in
    # the pass that applies the scales (merged.Fp8SwiGLU). In `fast`: ragged 7B step, generation 6.54 -> 5.33 s,
    # 11.62 -> 12.55 completions/s (H100, one run, eleventh round)
    fp8_tensor_sampling: bool = False
    # SFT and GRPO training through the fused LoRA layers: an MLP's gate and up layers and its SwiGLU as one
    # autograd function (lora_swiglu.py): the adapters' products added inside the SwiGLU pass instead of into
    # gate's and up's outputs (two full-width read-and-writes a layer), gate and up as one FP8 product forward
    # and one backward (no sum of two input gradients); same masks, same result to float rounding. In `fast`:
    # SFT 32 x 256 on the 7B 22,018 -> 22,898 and 22,140 -> 23,053 tokens/s (H100, two runs, either order);
    # ragged GRPO no faster (H200, forward+backward 3.35 -> 3.33 s)
    fused_swiglu: bool = False
    # GRPO graph decoding: a prompt that a group's completions share is prefilled once, its keys and values
    # copied into the group's rows (decode.py), instead of the prompt's forward over every row: the same keys,
    # values and first-token logits bit for bit as one row run alone. In `fast`: ragged 7B step, generation
    # 5.36 -> 5.07 s, 12.27 -> 13.21 completions/s (H100, one run, 13th round)
    prefill_once: bool = False
    # GRPO training with packed micro-batches: micro-batches hold whole groups of completions (where the loss
    # type makes grouping neutral) and a group's prompt runs once in the packed row, each completion attending
    # to it as in its own row (packing.pack_groups): the prompt's projections and MLP once a group, not once a
    # row. Same loss and gradients to float rounding, but LoRA's dropout draws one mask for a shared prompt
    # token where each row drew its own. In `fast`: ragged 7B step, forward+backward 4.44 -> 4.32 s and
    # 5.83 -> 5.25 s, peak 70.6 -> 67.0 GiB (H100, micro-batch 8, where the forward waits on the host; two runs)
    shared_prompts: bool = False
    # SFT and GRPO training through the fused LoRA layers: an attention's q, k and v layers as one autograd
    # function (lora_qkv.py): one base product against the three stacked (FP8: one copy of the three, not
    # three), one input gradient instead of three summed, one function's host work instead of three's. Same
    # masks, same result to float rounding. Not in `fast`: no gain shown. Ragged 7B step at micro-batch 8,
    # forward+backward without -> with 6.01 -> 5.88 s and 5.63 -> 5.21 s with the lever run second, 4.31 ->
    # 4.39 s with it first: the variant run second was the faster in all three runs (H100, two leases), peak
    # memory too (+0.4 GiB either way). SFT 32 x 256 no faster (median step 0.384 -> 0.379 s, 0.357 -> 0.358 s)
    fused_qkv: bool = False


PROFILES = {
    "vanilla": Profile("vanilla", True, False, False, False, False, False, False),
    "memory": Profile("memory", True, True, False, True, True, True, False),
    "fast": Profile(
        "fast",
        gradient_checkpointing=False,
        liger=True,
        merged_generation=True,
        share_prefix=True,
        oom_backoff=True,
        bf16_adapter_inputs=True,
        whole_batch=True,
        graph_decode=True,
        padding_free=True,
        liger_sampling=True,
        fused_lora=True,
        fp8_base=True,
        compact_decode=True,
        packed_grpo=True,
        liger_training=True,
        decode_windows=True,
        fp8_sampling=True,
        fused_dropout=True,
        host_runs_ahead=True,
        fp8_tensor_sampling=True,
        fused_swiglu=True,
        prefill_once=True,
        shared_prompts=True,
    ),
    "cpu": Profile("cpu", False, False, False, False, False, False, False),
}


def resolve_profile(name: str, gpu: bool | None = None) -> Profile:
    choose(name, PROFILE_NAMES, "train.profile")
    gpu = on_gpu() if gpu is None else gpu
    if name == "auto":
        return PROFILES["fast" if gpu else "cpu"]
    return PROFILES[name]


def liger_available() -> bool:
    try:
        import liger_kernel  # noqa: F401
    except ImportError:
        return False
    return True


def profile_from_params(params: dict) -> Profile:
    """The profile params.yaml's `train.profile` names (`auto` when the section is absent)."""
    t = TrainParams.from_params(params.get("train") or {})
    profile = resolve_profile(t.profile)
    return profile if t.fp8 else dataclasses.replace(profile, fp8_base=False, fp8_sampling=False)


def use_fp8_sampling(profile: Profile) -> bool:
    """The profile asks for an FP8 sampling copy and this machine's GPU has FP8 matmuls."""
    return profile.merged_generation and profile.fp8_sampling and fp8_supported()


def use_fp8(profile: Profile) -> bool:
    """The profile asks for an FP8 base, this machine's GPU has FP8 matmuls, and the weights stay whole.
    Under FSDP or DeepSpeed ZeRO-3 the fused layers run PEFT's own forward (the weights are gathered
    there), and the FP8 copies, made before the trainer shards the model, would be a whole copy per GPU."""
    if not (profile.fused_lora and profile.fp8_base and fp8_supported()):
        return False
    zero3 = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() in ("1", "true") and (
        os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3"
    )
    return not (under_fsdp() or zero3)
