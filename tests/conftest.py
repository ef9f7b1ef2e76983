import json
import os
import random
from pathlib import Path

import pytest
import torch

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Without a CUDA GPU, Triton's kernels (lora_dropout's) run in Triton's interpreter. It has to be on before
# Triton is first imported, since Triton builds its own library functions then; production code never
# calls a Triton kernel off a GPU, so it changes nothing else.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def llm_journal(tmp_path_factory, monkeypatch):
    """Each test its own LLM response journal (mcqflow.data.llm.ResponseCache), so no test is answered by
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
    from mcqflow.data.ingest import ingest_split

    path = (
        ROOT
        / ("data/sample/en" if lang == "en" else "data/sample")
        / f"{split}.{'jsonl' if lang == 'en' else 'csv'}"
    )
    return ingest_split(path, split, lang).records


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A small untrained tiny model whose tokenizer knows the sample corpus."""
    from mcqflow.modeling.models import build_tiny, tiny_corpus

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


# A task the tiny model can learn (tests/test_learnability.py): the question's keyword decides the letter,
# option texts are random distractors.
KEYWORDS = {"A": ["蘋果", "火車"], "B": ["香蕉", "輪船"], "C": ["葡萄", "飛機"], "D": ["西瓜", "汽車"]}
PREFIX = ["請問", "關於", "有人提到", "在課堂上討論", "新聞報導了", "老師問到"]
SUFFIX = ["的問題應如何看待？", "這件事的看法為何？", "時，哪一項正確？", "的說法，下列何者為是？"]
FILLER = ["社會", "經濟", "文化", "歷史", "法律", "教育", "環境", "科技", "媒體", "制度", "權利", "政策"]


def make_task(n: int, seed: int) -> list:
    from mcqflow.core.schema import LETTERS, Record

    rng = random.Random(seed)
    out = []
    for i in range(n):
        gold = LETTERS[rng.randrange(4)]
        question = rng.choice(PREFIX) + "「" + rng.choice(KEYWORDS[gold]) + "」" + rng.choice(SUFFIX)
        texts = rng.sample(FILLER, 4)
        out.append(
            Record(
                id=f"s{seed}-{i}",
                question=question,
                options=dict(zip(LETTERS, texts, strict=True)),
                answer=gold,
                lang="zh",
            )
        )
    return out


def fake_translator(text: str) -> str:
    """A stand-in for a good model: 'translates' every value by tagging it, keeps tags and letters.
    [flip] in a question makes it change the chain's answer, [merge] makes two options the same."""
    from mcqflow.core.reasoning import build_chain, parse_chain

    src = json.loads(text[text.index("{") : text.rindex("}") + 1])
    out = {
        "question": f"EN({src['question']})",
        "options": {k: f"EN({v})" for k, v in src["options"].items()},
    }
    if "[merge]" in src["question"]:
        out["options"]["B"] = out["options"]["A"]
    if "reasoning" in src:
        letter = parse_chain(src["reasoning"]).output_letter()
        if "[flip]" in src["question"]:
            letter = "D" if letter != "D" else "A"
        out["reasoning"] = build_chain(
            out["question"], "think", ["read", "compare A-D"], "neutral", "none", letter
        )
    return "```json\n" + json.dumps(out, ensure_ascii=False) + "\n```"
