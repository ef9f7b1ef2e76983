"""What every phase shares: the record, text readings, prompts, chains, files, errors."""
