"""The one error type for user mistakes, and the boundary (`run_stage`) that prints it as one line.

Kept free of other mcqflow imports: every stage script imports this, and dvc.yaml lists what it imports."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem the user can fix (bad file, missing weights, wrong param). Printed without a traceback."""


def close_process_group() -> None:
    """Leave a process group (set up by accelerate in launched stages) cleanly: NCCL warns of leaked
    resources otherwise."""
    if "torch" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def run_stage(fn: Callable[[], None]) -> None:
    """The boundary every entry point goes through: one line per user error, exit code 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("mcqflow").setLevel(logging.INFO)  # ours; libraries stay at WARNING
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        fn()
        close_process_group()
    except UserError as e:
        print(f"mcqflow: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("mcqflow: interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as e:
        if e.filename is None:  # not about a path the user gave: a real fault, with its traceback
            raise
        # A path the user gave that cannot be read or written (missing folder, no permission, read-only)
        print(f"mcqflow: error: {e.filename}: {e.strerror or e}", file=sys.stderr)
        sys.exit(2)
