"""`mcqflow bench`: ours against vanilla on random-init weights (optional GPU work)."""
