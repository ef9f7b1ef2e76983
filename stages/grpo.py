"""Stage grpo: reinforcement learning (TRL GRPO) from an SFT model on the 50% split, resumable."""

import argparse
from pathlib import Path

from mcqflow.config.schema import load_params, section
from mcqflow.core.errors import run_stage
from mcqflow.core.schema import read_records
from mcqflow.core.skip import reason, say, skipped_live, write_marker
from mcqflow.modeling.models import resolve_base
from mcqflow.train.grpo import GRPOParams, train_grpo
from mcqflow.train.launch import is_main_process, relaunch_under_accelerate
from mcqflow.train.profiles import profile_from_params
from mcqflow.train.training import SFTParams, lora_config


def main() -> None:
    params = load_params()
    relaunch_under_accelerate(params)
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lang", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument(
        "--models", required=True, help="folder of trained models: starts from sft-reasoning-<lang>"
    )
    ap.add_argument("--tiny-dir", required=True, help="the tiny model's folder (for model.base: tiny)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--checkpoints", required=True)
    ap.add_argument("--live", required=True)
    a = ap.parse_args()
    g, sft = GRPOParams.from_params(params["grpo"]), SFTParams.from_params(params["sft"])
    model = section(params, "model")
    if g.init == "base":
        init = resolve_base(model.base, a.tiny_dir)
    else:
        init = str(Path(a.models, f"{g.init}-{a.lang}"))
    records = read_records(a.train)
    why = (reason(init) if g.init != "base" else None) or (
        None if records else f"{a.train} has no rows (the branch is skipped upstream)"
    )
    if why:  # a language the dataset lacks (mcqflow.core.skip)
        write_marker(a.out, why)
        write_marker(a.checkpoints, why)
        skipped_live(a.live, why)
        say("grpo", a.lang, why)
        return
    m = train_grpo(
        records,
        init,
        a.out,
        a.checkpoints,
        g,
        seed=params["seed"],
        finetune=sft.finetune,
        lora_config=lora_config(sft),
        quantization=model.quantization,
        live_dir=a.live,
        profile=profile_from_params(params),
        dtype=model.dtype,
    )
    if not is_main_process():
        return
    resumed = f", resumed from {m['resumed_from']} at step {m['start_step']}" if m["resumed_from"] else ""
    print(f"grpo {a.lang}: {m['global_step']} steps in {m.get('train_runtime', 0):.1f}s{resumed}")


if __name__ == "__main__":
    run_stage(main)
