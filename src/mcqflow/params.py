"""The whole of params.yaml checked at once: `python -m mcqflow.params [params.yaml]`.

The schema is `mcqflow.config.schema.sections()` (section -> dataclass, one module each under
mcqflow/config/); `load_params` already checks all of it, so this is that check as a command, plus the
dataclass defaults shaped like params.yaml (`defaults`, which a test holds equal to the file).
"""

from __future__ import annotations

import sys
from dataclasses import fields, is_dataclass
from pathlib import Path

from mcqflow.config.schema import check_sections, load_params, sections
from mcqflow.core.errors import UserError


def check_params(params: dict, source: str = "params.yaml") -> None:
    """One line for the first unknown key (naming the closest valid one) or out-of-choice value."""
    if not isinstance(params, dict):
        raise UserError(f"{source}: expected a mapping of sections, got {type(params).__name__}")
    check_sections(params, source)


def defaults() -> dict:
    """Every section's dataclass defaults, shaped like params.yaml (the test compares the two)."""
    out = {}
    for name, cls in sections().items():
        obj = cls()
        out[name] = {f.name: getattr(obj, f.name) for f in fields(obj)} if is_dataclass(obj) else {}
    return out


def check_file(path: str | Path = "params.yaml") -> dict:
    return load_params(path)  # which checks every section


def main(argv: list[str] | None = None) -> None:
    from mcqflow.core.errors import run_stage

    def check() -> None:
        path = (argv if argv is not None else sys.argv[1:]) or ["params.yaml"]
        check_file(path[0])
        print(f"{path[0]}: every key known, every choice valid")

    run_stage(check)


if __name__ == "__main__":
    main()
