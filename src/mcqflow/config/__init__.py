"""params.yaml as typed configuration: one module per section (`data`, `model`, `llm`, `generate`,
`translate`, `validate`, `tiny`, `train`, `sft`, `split`, `grpo`, `predict`), each a dataclass whose defaults
are params.yaml's, with a comment per field; `schema` loads params.yaml and checks every key's name, type,
range and choice, each mistake one line naming the key. Pure dataclasses: nothing here imports torch."""
