"""The validate gate: Great Expectations suites, duplicates, neutrality, instruction filter (CPU)."""
