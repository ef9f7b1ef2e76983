import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def llm_journal(tmp_path_factory, monkeypatch):
    """Each test its own LLM response journal (mcqflow.llm.ResponseCache), so no test is answered by
    responses another test (or the user's own runs) paid for."""
    path = tmp_path_factory.mktemp("llm-journal")
    monkeypatch.setenv("MCQFLOW_LLM_JOURNAL", str(path))
    return path


@pytest.fixture
def write(tmp_path):
    """write('name.csv', text) -> path of a UTF-8 file in a temp folder."""

    def _write(name: str, text: str, encoding: str = "utf-8") -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text.encode(encoding))
        return p

    return _write


SMALL_TINY = dict(
    vocab_size=1200,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
)


def sample_records(split: str, lang: str = "zh"):
    from mcqflow.ingest import ingest_split

    path = (
        ROOT
        / ("data/sample/en" if lang == "en" else "data/sample")
        / f"{split}.{'jsonl' if lang == 'en' else 'csv'}"
    )
    return ingest_split(path, split, lang).records


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A small untrained tiny model whose tokenizer knows the sample corpus."""
    from mcqflow.models import build_tiny, tiny_corpus

    recs = sample_records("train") + sample_records("dev") + sample_records("train", "en")
    return str(build_tiny(tiny_corpus(recs), tmp_path_factory.mktemp("tiny") / "m", seed=0, **SMALL_TINY))


def run(cmd, cwd, env):
    import subprocess

    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout + r.stderr


def dvc_in(cwd, env, *args):
    import sys

    return run([sys.executable, "-m", "dvc", *args], cwd, env)


def make_clone(dst: Path):
    """Tracked and new files of this checkout, committed in a new git repo at `dst`: what a fresh clone has.
    Returns (dst, env) with an env whose `python` is this interpreter."""
    import shutil
    import subprocess
    import sys

    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    for f in filter(None, files):
        if (ROOT / f).is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dst / f)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    env.pop("OPENAI_API_KEY", None)
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "clone"]):
        run(cmd, dst, env)
    return dst, env


@pytest.fixture(scope="session")
def repo(tmp_path_factory):
    """A fresh clone of this checkout, shared by the end-to-end tests."""
    return make_clone(tmp_path_factory.mktemp("clone"))


def counting(model, asked: list[int]):
    """`model` as a module that appends the batch size of every forward it is asked to `asked`: what a
    resumed run asks the model for, counted."""
    import torch

    class Counting(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.config = model, model.config

        @property
        def device(self):
            return model.device

        def forward(self, input_ids=None, **kw):
            asked.append(input_ids.shape[0])
            return self.inner(input_ids=input_ids, **kw)

    return Counting()
