"""dvc.yaml tells the truth: each stage lists exactly the mcqflow modules its script can run."""

import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from mcqflow.core.deps import closure


def _stages():
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    for name, stage in spec.items():
        body = stage.get("do", stage)
        script = re.search(r"python (stages/\w+\.py)", body["cmd"])
        yield name, script.group(1) if script else None, body.get("deps", [])


STAGES = list(_stages())


def test_every_stage_runs_a_stage_script():
    assert all(script for _, script, _ in STAGES), [n for n, s, _ in STAGES if not s]


@pytest.mark.parametrize("name,script,deps", STAGES, ids=[s[0] for s in STAGES])
def test_deps_are_the_import_closure_of_the_stage_script(name, script, deps):
    listed = {d for d in deps if isinstance(d, str) and d.startswith("src/mcqflow/") and d.endswith(".py")}
    needed = {f"src/{p.relative_to(ROOT / 'src').as_posix()}" for p in closure(ROOT / script)}
    if (
        "src/mcqflow/quality/validation.py" in needed
    ):  # it copies the report assets into what the stage writes
        assert {"src/mcqflow/assets/gx", "src/mcqflow/assets/vega/dvc-plots.html"} <= set(deps), name
    assert script in deps, f"{name}: its own script is not a dep"
    assert not needed - listed, f"{name}: dvc.yaml misses {sorted(needed - listed)} (imported by {script})"
    assert not listed - needed, (
        f"{name}: dvc.yaml lists {sorted(listed - needed)}, which {script} never imports"
    )


def test_closure_follows_lazy_transitive_and_package_imports(tmp_path):
    pkg = tmp_path / "mcqflow"
    (pkg / "p" / "q").mkdir(parents=True)
    for init in (pkg, pkg / "p", pkg / "p" / "q"):
        (init / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from mcqflow.p.b import g\n")
    (pkg / "p" / "b.py").write_text("from mcqflow.p.q import c\n")  # a submodule named in a from-import
    (pkg / "p" / "q" / "c.py").write_text("import os\n")
    (pkg / "p" / "unused.py").write_text("")
    script = tmp_path / "s.py"
    script.write_text("import mcqflow.a\nfrom mcqflow.errors_missing import x\n")
    got = sorted(p.relative_to(pkg).as_posix() for p in closure(script, pkg))
    # importing mcqflow.p.q.c runs mcqflow/__init__.py, p/__init__.py and p/q/__init__.py first
    assert got == ["__init__.py", "a.py", "p/__init__.py", "p/b.py", "p/q/__init__.py", "p/q/c.py"]


def test_grpo_fingerprint_hashes_the_grpo_stage_closure():
    from mcqflow.train.grpo import objective_files

    # the stage also imports mcqflow.core.skip, which writes a skipped branch's markers before any training
    stage = {p.name for p in closure(ROOT / "stages/grpo.py")}
    assert {p.name for p in objective_files()} == stage - {"skip.py"}
    assert Path(ROOT / "src/mcqflow/train/training.py").resolve() in {p.resolve() for p in objective_files()}


def test_sync_deps_script_leaves_a_true_dvc_yaml_as_it_is():
    """scripts/sync_deps.py rewrites each stage's module deps from the import closure; on a dvc.yaml the
    tests above pass, it changes nothing."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("sync_deps", ROOT / "scripts/sync_deps.py")
    sync_deps = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync_deps)
    text = (ROOT / "dvc.yaml").read_text(encoding="utf-8")
    assert sync_deps.sync(text) == text
    stale = text.replace("      - src/mcqflow/train/rewards.py\n", "", 1)
    assert stale != text and sync_deps.sync(stale) == text
