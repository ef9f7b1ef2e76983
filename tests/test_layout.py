"""docs/layout.md names every module of the library where it is, and nothing that is not there."""

import ast
import re

from conftest import ROOT


def _named_in_layout() -> set[str]:
    """Paths under src/mcqflow/ that docs/layout.md's tree names (files and folders, by indentation)."""
    text = (ROOT / "docs/layout.md").read_text(encoding="utf-8")
    block = text.split("```")[1].splitlines()
    start = next(i for i, line in enumerate(block) if line.startswith("src/mcqflow/"))
    named, stack = set(), []
    for line in block[start + 1 :]:
        if not line.startswith("  "):
            break
        if not line.strip() or line.startswith(" " * 26):  # a description's continuation line
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2 - 1
        entry = re.split(r"\s{2,}", line.strip())[0]
        stack = stack[:depth]
        for name in (n.strip() for n in entry.split(",")):
            named.add("/".join([*stack, name.rstrip("/")]))
        if entry.endswith("/"):
            stack.append(entry.rstrip("/"))
    return named


def test_layout_md_names_every_module_where_it_is():
    pkg = ROOT / "src/mcqflow"
    modules = {p.relative_to(pkg).as_posix() for p in pkg.rglob("*.py") if p.name != "__init__.py"}
    folders = {p.relative_to(pkg).as_posix() for p in pkg.iterdir() if p.is_dir() and p.name != "__pycache__"}
    folders |= {p.parent.relative_to(pkg).as_posix() for p in pkg.rglob("__init__.py") if p.parent != pkg}
    named = _named_in_layout()
    assert modules - named == set(), "docs/layout.md misses these modules"
    assert named - modules - folders == set(), "docs/layout.md names what is not in src/mcqflow/"


def test_every_library_folder_is_a_package_whose_init_only_says_what_it_is():
    """A docstring and nothing else: importing a phase runs no code and re-exports nothing (and an empty
    file would make DVC warn on every run that a dep is empty)."""
    pkg = ROOT / "src/mcqflow"
    for d in (p for p in pkg.rglob("*") if p.is_dir() and any(p.glob("*.py"))):
        init = d / "__init__.py"
        assert init.is_file(), f"{d.relative_to(ROOT)} has modules but no __init__.py"
        if d != pkg:
            body = ast.parse(init.read_text(encoding="utf-8")).body
            assert len(body) == 1 and isinstance(body[0], ast.Expr), (
                f"{init.relative_to(ROOT)}: not a docstring"
            )
            assert isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)
