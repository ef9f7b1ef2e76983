"""SFT and GRPO with TRL and PEFT; speed profiles and multi-process launch."""
