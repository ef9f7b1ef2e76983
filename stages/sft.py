"""Stage sft: fine-tune the base model on one language in one mode (plain letter / reasoning chain)."""

import argparse

from mcqflow.cli import run_stage
from mcqflow.config import choose, load_params
from mcqflow.models import resolve_base
from mcqflow.profiles import profile_from_params
from mcqflow.prompts import MODES
from mcqflow.schema import read_records
from mcqflow.training import SFTParams, train_sft


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mode", required=True, choices=MODES)
    ap.add_argument("--train", required=True)
    ap.add_argument("--tiny-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--live", required=True, help="DVCLive folder for curves and metrics")
    a = ap.parse_args()
    params = load_params()
    model = params["model"]
    quantization = choose(model["quantization"], ("none", "nf4"), "model.quantization")
    metrics = train_sft(
        read_records(a.train),
        a.mode,
        base=resolve_base(model["base"], a.tiny_dir),
        out_dir=a.out,
        params=SFTParams.from_params(params["sft"]),
        seed=params["seed"],
        quantization=quantization,
        live_dir=a.live,
        profile=profile_from_params(params),
    )
    print(f"sft {a.mode}: train_loss={metrics.get('train_loss'):.4f} in {metrics.get('train_runtime'):.1f}s")


if __name__ == "__main__":
    run_stage(main)
