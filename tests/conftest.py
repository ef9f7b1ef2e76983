import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]


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
