"""Stage sft: fine-tune the base model on one language in one mode (plain letter / reasoning chain)."""

import argparse
from pathlib import Path

from mcqflow.config.schema import load_params, section
from mcqflow.core.errors import run_stage
from mcqflow.core.prompts import MODES
from mcqflow.core.schema import read_records
from mcqflow.core.skip import say, skipped_live, write_marker
from mcqflow.modeling.models import resolve_base
from mcqflow.train.launch import is_main_process, relaunch_under_accelerate
from mcqflow.train.profiles import profile_from_params
from mcqflow.train.training import SFTParams, train_sft


def main() -> None:
    params = load_params()
    relaunch_under_accelerate(params)
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mode", required=True, choices=MODES)
    ap.add_argument("--train", required=True)
    ap.add_argument("--tiny-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--live", required=True, help="DVCLive folder for curves and metrics")
    a = ap.parse_args()
    model = section(params, "model")
    records = read_records(a.train)
    if not records:  # a language the dataset lacks (mcqflow.core.skip)
        why = f"{a.train} has no rows (the branch is skipped upstream: metrics/validate.json)"
        write_marker(a.out, why)
        skipped_live(a.live, why)
        say(f"sft {a.mode}", Path(a.out).name.rsplit("-", 1)[-1], why)
        return
    metrics = train_sft(
        records,
        a.mode,
        base=resolve_base(model.base, a.tiny_dir),
        out_dir=a.out,
        params=SFTParams.from_params(params["sft"]),
        seed=params["seed"],
        quantization=model.quantization,
        live_dir=a.live,
        profile=profile_from_params(params),
        dtype=model.dtype,
    )
    if not is_main_process():
        return
    m = metrics
    print(
        f"sft {a.mode}: train_loss={m.get('train_loss'):.4f}, {m['global_step']} steps in "
        f"{m.get('train_runtime'):.1f}s, effective batch {m['effective_batch']} = {m['micro_batch']} per device x "
        f"{m['processes']} processes x {m['grad_accum']} accumulation"
        + (f" ({m['distributed']})" if m["processes"] > 1 else "")
    )


if __name__ == "__main__":
    run_stage(main)
