"""What the FP8 base (`fp8_base`) changes in a LoRA training step on real weights, beside the bf16 base and
the vanilla recipe's NF4 base, each against an fp32 reference.

The embedded model (Qwen2.5-Coder-0.5B-Instruct, real pretrained weights), LoRA r16 on all seven projections
(dropout 0, B drawn N(0, 0.01) so that both adapter matrices get gradients), the sample's first dev
questions rendered as the plain SFT prompt plus the gold letter, language-modelling loss on every token.
One forward and backward a variant:

fp32   no autocast: the reference
bf16   bf16 autocast, fused LoRA layers (the `fast` profile without `fp8_base`)
fp8    bf16 autocast, fused LoRA layers with the FP8 base (`fuse_lora(fp8=True)`)
nf4    the projections' weights through bitsandbytes' NF4 (block 64, double quantisation, as the vanilla
       QLoRA recipe loads them) and back, then as bf16; skipped when bitsandbytes is not installed

Runs on a CPU (`torch._scaled_mm` has CPU kernels; cuBLAS's FP8 kernels compute the same products with
their own accumulation order). Usage: python bench/fp8_numerics.py [QUESTIONS]  (default 4; prints a table
and one JSON line per variant prefixed `ROW `)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main(n: int = 4) -> None:
    from peft import get_peft_model

    from mcqflow.core.prompts import completion_text, render_prompt
    from mcqflow.data.ingest import ingest_split
    from mcqflow.modeling import embedded
    from mcqflow.modeling.models import load_base_model, load_tokenizer
    from mcqflow.train.fast.lora_fused import fuse_lora
    from mcqflow.train.training import SFTParams, lora_config

    model_dir = embedded.ensure()
    tok = load_tokenizer(model_dir, padding_side="right")
    records = ingest_split(ROOT / "data/sample/dev.csv", "dev", "zh").records[:n]
    texts = [render_prompt(tok, r, "plain") + completion_text(r, "plain") for r in records]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    labels = enc.input_ids.masked_fill(enc.attention_mask == 0, -100)
    batch = {**enc, "labels": labels}
    tokens = int(enc.attention_mask.sum())

    torch.manual_seed(0)
    cfg = lora_config(SFTParams(finetune="lora"))
    cfg.lora_dropout = 0.0
    model = get_peft_model(load_base_model(model_dir, dtype="float32"), cfg).train()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.01)
    fuse_lora(model, fp8=True)
    bases = [m.get_base_layer() for m in model.modules() if getattr(m, "_fused_lora", False)]
    fp8 = {b: b._fp8 for b in bases}

    def step(autocast: bool) -> tuple[float, dict]:
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = model(**batch).loss
        loss.backward()
        return loss.item(), {
            n: p.grad.float().clone() for n, p in model.named_parameters() if p.requires_grad
        }

    def set_fp8(on: bool) -> None:
        for b in bases:
            b._fp8 = fp8[b] if on else None

    results = {}
    t0 = time.perf_counter()
    set_fp8(False)
    results["fp32"] = step(autocast=False)
    results["bf16"] = step(autocast=True)
    set_fp8(True)
    results["fp8"] = step(autocast=True)
    set_fp8(False)
    try:
        import bitsandbytes.functional as bnbf
    except ImportError:
        print("nf4: skipped (bitsandbytes is not installed)")
    else:
        saved = {b: b.weight.data for b in bases}
        for b in bases:
            q, state = bnbf.quantize_4bit(
                b.weight.data.to(torch.bfloat16), blocksize=64, compress_statistics=True, quant_type="nf4"
            )
            b.weight.data = bnbf.dequantize_4bit(q, state).to(b.weight.dtype)
        results["nf4"] = step(autocast=True)
        for b in bases:
            b.weight.data = saved[b]
    seconds = time.perf_counter() - t0

    print(f"{len(records)} questions, {tokens} tokens, {len(bases)} LoRA layers, {seconds:.0f} s")
    print(
        "| base | loss | vs | loss difference | adapter gradients: relative error | cosine | worst tensor's cosine |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, (loss, grads) in results.items():
        for ref_name in ("fp32", "bf16"):
            if name in ("fp32", ref_name):
                continue
            row = dict(base=name, vs=ref_name, loss=round(loss, 5), questions=len(records), tokens=tokens,
                       **_compare(loss, grads, *results[ref_name]))  # fmt: skip
            print(f"| {name} | {loss:.5f} | {ref_name} | {row['loss_diff']:+.5f} | {row['grad_rel_err']:.4f} | "
                  f"{row['grad_cos']:.5f} | {row['worst_tensor_cos']:.4f} |")  # fmt: skip
            print("ROW " + json.dumps(row), flush=True)


def _compare(loss, grads, ref_loss, ref) -> dict:
    """Loss difference, and the adapter gradients' relative L2 error and cosine against the reference's
    (all of them as one vector, in float64), and the lowest cosine of any one adapter tensor."""
    cos = torch.nn.functional.cosine_similarity
    flat = torch.cat([g.double().flatten() for g in grads.values()])
    flat_ref = torch.cat([ref[k].double().flatten() for k in grads])
    return dict(
        loss_diff=round(loss - ref_loss, 5),
        grad_rel_err=round(float((flat - flat_ref).norm() / flat_ref.norm()), 4),
        grad_cos=round(float(cos(flat, flat_ref, 0)), 5),
        worst_tensor_cos=round(
            min(float(cos(grads[k].double().flatten(), ref[k].double().flatten(), 0)) for k in ref), 4
        ),
    )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
