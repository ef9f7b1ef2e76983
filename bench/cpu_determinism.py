"""Does another CPU train the tiny default to the same bytes? The sft@plain-zh stage's training, run as
the stage runs it (params.yaml, the validated data, models/tiny) but on the CPU whatever the machine, with
the weights' MD5 printed beside the CPU, thread count and versions. Compare with the committed output
(`md5sum models/sft-plain-zh/model.safetensors` after `dvc checkout`).

Usage: python bench/cpu_determinism.py OUT_DIR [THREADS ...]   (each thread count trains once)"""

import hashlib
import os
import platform
import sys
from pathlib import Path

os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the CPU, as on a machine without a GPU

import torch  # noqa: E402
import transformers  # noqa: E402

from mcqflow.config.schema import load_params  # noqa: E402
from mcqflow.core.schema import read_records  # noqa: E402
from mcqflow.train.profiles import profile_from_params  # noqa: E402
from mcqflow.train.training import SFTParams, train_sft  # noqa: E402


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    out = Path(sys.argv[1])
    params = load_params()
    records = read_records("data/validated/zh/train.jsonl")
    print(
        f"cpu: {cpu_name()}; torch {torch.__version__}, transformers {transformers.__version__}", flush=True
    )
    for threads in [int(t) for t in sys.argv[2:]] or [torch.get_num_threads()]:
        torch.set_num_threads(threads)
        target = out / f"threads-{threads}"
        m = train_sft(
            records, "plain", base="models/tiny", out_dir=target, params=SFTParams.from_params(params["sft"]),
            seed=params["seed"], profile=profile_from_params(params), dtype="auto",
        )  # fmt: skip
        digest = hashlib.md5((target / "model.safetensors").read_bytes()).hexdigest()
        print(
            f"threads {threads}: train_loss {m['train_loss']:.6f}, model.safetensors md5 {digest}", flush=True
        )


if __name__ == "__main__":
    main()
