"""mcqflow: a reproducible DVC workflow for Chinese single-choice (A–D) question answering with LLMs."""

__version__ = "0.1.0"
