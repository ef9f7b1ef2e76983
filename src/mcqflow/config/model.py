"""params.yaml `model:`: the base every stage starts from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class ModelParams:
    """params.yaml `model:`: the base every stage starts from."""

    base: str = "tiny"  # tiny | embedded | a Hugging Face id | a local directory
    quantization: Literal["none", "nf4"] = "none"  # nf4: 4-bit NF4 through bitsandbytes (GPU only)
    dtype: Literal["auto", "bfloat16", "float32"] = "auto"  # auto: bf16 on a GPU, fp32 on a CPU
