"""params.yaml `tiny:`: the architecture of the random-init default model."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TinyParams:
    """params.yaml `tiny:`: the architecture of the random-init default."""

    vocab_size: int = 3000
    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 2048
