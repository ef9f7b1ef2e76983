"""Data in, data out: ingest, LLM-written chains and questions, translation, splits (CPU)."""
