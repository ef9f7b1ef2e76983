"""Named architectures for random-init weights (`mcqflow bench --arch`): shapes only, no imports, so that the
CLI can list them without loading torch."""

# Named architectures (Hugging Face configs of the Instruct models) for random-init weights where the real
# ones are absent: throughput does not depend on the values, so benchmarks need only the shapes.
ARCHITECTURES = {
    "qwen2.5-0.5b": dict(
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        rms_norm_eps=1e-6,
    ),
    "qwen2.5-7b": dict(
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        tie_word_embeddings=False,
        rms_norm_eps=1e-6,
    ),
    "qwen2.5-14b": dict(
        hidden_size=5120,
        intermediate_size=13824,
        num_hidden_layers=48,
        num_attention_heads=40,
        num_key_value_heads=8,
        tie_word_embeddings=False,
        rms_norm_eps=1e-5,
    ),
    # Past one card (bf16 weights alone: 65 GB and 145 GB): FSDP2 over several GPUs.
    "qwen2.5-32b": dict(
        hidden_size=5120,
        intermediate_size=27648,
        num_hidden_layers=64,
        num_attention_heads=40,
        num_key_value_heads=8,
        tie_word_embeddings=False,
        rms_norm_eps=1e-6,
    ),
    "qwen2.5-72b": dict(
        hidden_size=8192,
        intermediate_size=29568,
        num_hidden_layers=80,
        num_attention_heads=64,
        num_key_value_heads=8,
        tie_word_embeddings=False,
        rms_norm_eps=1e-6,
    ),
}
QWEN2_5_COMMON = dict(vocab_size=152064, max_position_embeddings=32768, rope_theta=1_000_000.0)
