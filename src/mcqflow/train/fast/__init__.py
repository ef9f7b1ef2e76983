"""GPU-only speed levers the `fast` profile turns on; never used on a CPU."""
