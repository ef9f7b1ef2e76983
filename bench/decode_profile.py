"""Where a decode step of `decode.Decoder` spends its GPU time (the GRPO `fast` generation).

Random-init weights of an architecture (built by `mcqflow bench` into WORK), a batch of 128 left-padded
prompts, 256 new tokens. Prints the time of a replayed (CUDA-graph) step and the kernels of eager steps by
GPU time, which add up to what a replay costs without its launches.

Usage: python bench/decode_profile.py WORK [ARCH]
"""

import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile
from transformers import GenerationConfig

from mcqflow.bench import ensure_weights
from mcqflow.decode import ATTENTION, Decoder, _attention
from mcqflow.models import load_for_inference, synchronize

work, arch = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "qwen2.5-7b"
model, _ = load_for_inference(ensure_weights(arch, work))
batch, prompt, new = 128, 160, 256
gen = torch.Generator(device=model.device).manual_seed(0)
ids = torch.randint(0, model.config.vocab_size - 1000, (batch, prompt), device=model.device, generator=gen)
mask = torch.ones_like(ids)
for i in range(batch):  # ragged prompts, left-padded
    mask[i, : i % 5 * 4] = 0
eos, pad = model.config.eos_token_id, model.config.pad_token_id
gc = GenerationConfig(max_new_tokens=new, do_sample=True, top_k=0, top_p=1.0, temperature=1.0,
                      eos_token_id=eos, pad_token_id=pad)  # fmt: skip
dec = Decoder(model)
for _ in range(3):
    synchronize()
    t = time.perf_counter()
    out = dec.generate(ids, mask, gc)
    synchronize()
    dt = time.perf_counter() - t
    print(
        f"generate {batch} x {out.shape[1] - prompt}: {dt:.2f} s ({1000 * dt / (out.shape[1] - prompt):.1f} ms a token)"
    )
run = next(iter(dec.runs.values()))
synchronize()
t = time.perf_counter()
for _ in range(50):
    run.graph.replay()
synchronize()
print(f"replayed step: {1000 * (time.perf_counter() - t) / 50:.2f} ms")
eos_list = [eos] if isinstance(eos, int) else list(eos)
with torch.no_grad(), _attention(model, ATTENTION), profile(activities=[ProfilerActivity.CUDA]) as prof:
    for _ in range(5):
        run.decode_step([], eos_list, pad, False)
    synchronize()
print("eager steps, kernels by GPU time (5 steps):")
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=20, max_name_column_width=70))
