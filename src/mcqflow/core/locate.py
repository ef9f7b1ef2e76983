"""Where a model name points, decided without loading anything (no torch): so that a mistyped folder is one
line at once, before a command spends seconds on imports."""

from __future__ import annotations

import os

from mcqflow.core.errors import UserError


def looks_like_a_path(name: str) -> bool:
    """A local folder was meant (so a missing one is a typo, not an undownloaded hub id): an absolute or
    relative path, more than one slash, or a first component that is a folder here (`models/x`)."""
    if name.startswith(("/", "./", "../", "~")) or "\\" in name or name.count("/") > 1:
        return True
    head = name.split("/")[0]
    return "/" in name and os.path.isdir(head)


def no_such_folder(name: str, param: str) -> UserError:
    return UserError(
        f"{param}{' ' if param.startswith('-') else '='}{name}: no such model folder; give an "
        f"existing folder, a Hugging Face id (owner/name) or 'embedded'"
    )


def check_folder(name: str, param: str) -> None:
    """One line now when `name` is meant as a folder and there is none."""
    if looks_like_a_path(name) and not os.path.isdir(name):
        raise no_such_folder(name, param)
