"""Models loaded or built: the tiny default, Hugging Face folders and ids, the embedded model."""
