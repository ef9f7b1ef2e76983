"""Rewrite dvc.yaml's module deps: each stage's `- src/mcqflow/….py` lines become the import closure of its
stage script (mcqflow.core.deps.closure), in the place the old ones stood; nothing else in the file
changes. tests/test_deps.py checks the result.

Usage: python scripts/sync_deps.py [dvc.yaml]"""

import re
import sys
from pathlib import Path

from mcqflow.core.deps import closure

ROOT = Path(__file__).resolve().parents[1]
MODULE = re.compile(r"^(\s*)- src/mcqflow/\S+\.py\s*$")
SCRIPT = re.compile(r"python (stages/\w+\.py)")


def sync(text: str) -> str:
    out: list[str] = []
    script, inserted = None, False
    for line in text.splitlines(keepends=True):
        if re.match(r"^  \S", line):  # a new stage
            script, inserted = None, False
        m = SCRIPT.search(line)
        if m:
            script = m.group(1)
        dep = MODULE.match(line)
        if not dep:
            out.append(line)
            continue
        if inserted:
            continue
        if script is None:
            raise SystemExit(f"dvc.yaml: module deps before the stage's command: {line.strip()}")
        modules = sorted(f"src/{p.relative_to(ROOT / 'src').as_posix()}" for p in closure(ROOT / script))
        out.extend(f"{dep.group(1)}- {m}\n" for m in modules)
        inserted = True
    return "".join(out)


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "dvc.yaml")
    path.write_text(sync(path.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main()
