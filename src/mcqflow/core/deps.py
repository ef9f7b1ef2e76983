"""The `mcqflow` modules a script can run: the import closure that dvc.yaml's deps must list.

Every `import mcqflow.p.x` / `from mcqflow.p.x import y` / `from mcqflow.p import x` counts, at module level or
inside a function (the library imports heavy modules lazily, and that code runs all the same), followed
transitively; importing a module runs the `__init__.py` of each package above it, so those count too. Read
with `ast`, never imported, so computing it costs milliseconds and runs nothing.
tests/test_deps.py checks dvc.yaml against it; the GRPO checkpoint fingerprint hashes the same files.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "mcqflow"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/mcqflow (this file is src/mcqflow/core/deps.py)


def _imported_modules(path: Path) -> set[str]:
    """Names of the mcqflow modules and packages `path` imports (`mcqflow.p.x`); for `from mcqflow.p import
    x` both `mcqflow.p` and `mcqflow.p.x` (x may be a submodule or a name: closure keeps what exists)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").split(".")[0] == PACKAGE
        ):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
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
        if path is None:  # `from mcqflow.p.x import SomeName`: a name, not a module
            continue
        seen[name] = path
        parents = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        todo += sorted((_imported_modules(path) | parents) - seen.keys())
    return sorted(set(seen.values()))
