"""params.yaml, read plainly. Stage scripts take their slice of it; nothing else reads the file."""

from __future__ import annotations

from pathlib import Path

import yaml

from mcqflow.errors import UserError


def load_params(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: not found (run from the project root)")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise UserError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None


def choose(value: str, allowed: tuple[str, ...], key: str) -> str:
    if value not in allowed:
        raise UserError(f"params: {key}={value!r}: expected one of {', '.join(allowed)}")
    return value


def build(cls, d: dict, section: str):
    """A params dataclass from its params.yaml section; an unknown key is a one-line error, not a TypeError."""
    import dataclasses

    unknown = set(d or {}) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise UserError(f"params: unknown {section} key(s) {', '.join(sorted(unknown))}")
    return cls(**(d or {}))
