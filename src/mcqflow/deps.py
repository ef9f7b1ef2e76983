"""The `mcqflow` modules a script can run: the import closure that dvc.yaml's deps must list.

Every `import mcqflow.x` / `from mcqflow.x import y` / `from mcqflow import x` counts, at module level or
inside a function (the library imports heavy modules lazily, and that code runs all the same), followed
transitively. Read with `ast`, never imported, so computing it costs milliseconds and runs nothing.
tests/test_deps.py checks dvc.yaml against it; the GRPO checkpoint fingerprint hashes the same files.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "mcqflow"
PACKAGE_DIR = Path(__file__).resolve().parent


def _imported_modules(path: Path) -> set[str]:
    """Names of the mcqflow modules `path` imports (`mcqflow.x`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == PACKAGE:  # from mcqflow import x
                found |= {f"{PACKAGE}.{a.name}" for a in node.names}
            elif node.module.split(".")[0] == PACKAGE:
                found.add(node.module)
    return found


def module_file(name: str, package_dir: Path = PACKAGE_DIR) -> Path | None:
    parts = name.split(".")[1:]
    if not parts:
        return package_dir / "__init__.py"
    path = package_dir.joinpath(*parts)
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def closure(script: str | Path, package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The mcqflow module files `script` imports, directly or through other mcqflow modules, sorted."""
    seen: dict[str, Path] = {}
    todo = sorted(_imported_modules(Path(script)))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_file(name, package_dir)
        if path is None:  # `from mcqflow import SomeName`: a name, not a module
            continue
        seen[name] = path
        todo += sorted(_imported_modules(path) - seen.keys())
    return sorted(set(seen.values()))
