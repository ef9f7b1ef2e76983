import random
from collections import Counter

from conftest import sample_records
from mcqflow.core.reasoning import parse_chain
from mcqflow.data.shuffle import remap_letters, shuffle_all, shuffle_options
from mcqflow.data.split import stratified_subset


def test_shuffle_keeps_the_right_text_right():
    for rec in sample_records("train")[:40]:
        new = shuffle_options(rec, random.Random(rec.id))
        assert new.options[new.answer] == rec.options[rec.answer]
        assert sorted(new.options.values()) == sorted(rec.options.values())
        assert parse_chain(new.reasoning).texts("output") == [new.answer]


def test_chain_references_follow_their_option():
    rec = sample_records("train")[0]  # "選項A描述的是「集體安全」；選項B描述的是「多邊主義」..."
    new = shuffle_options(rec, random.Random(1))
    for letter, text in rec.options.items():
        concept = rec.reasoning.split(f"選項{letter}描述的是「")[1].split("」")[0]
        new_letter = next(k for k, v in new.options.items() if v == text)
        assert f"選項{new_letter}描述的是「{concept}」" in new.reasoning


def test_remap_is_one_pass():
    swap = {"A": "B", "B": "A", "C": "C", "D": "D"}
    assert remap_letters("選項A與選項B，option A，答案：B，<output>A</output>", swap) == (
        "選項B與選項A，option B，答案：A，<output>B</output>"
    )
    assert remap_letters("A股與B型肝炎", swap) == "A股與B型肝炎"  # not a letter reference


def test_shuffle_spreads_an_all_a_dataset():
    recs = [r for r in sample_records("train") if r.answer == "A"]
    recs = [shuffle_options(r, random.Random(0)) for r in recs]  # now all on other letters too
    spread = Counter(r.answer for r in shuffle_all(recs, seed=3))
    assert len(spread) == 4 and max(spread.values()) < 0.5 * len(recs)


def test_stratified_subset():
    recs = sample_records("train")
    half = stratified_subset(recs, 0.5, seed=42)
    assert len(half) == 90
    ids = {r.id for r in half}
    assert [r.id for r in half] == [r.id for r in recs if r.id in ids]  # input order kept
    assert ids == {r.id for r in stratified_subset(list(reversed(recs)), 0.5, seed=42)}  # order-independent
    assert half != stratified_subset(recs, 0.5, seed=7)
    topics = Counter(r.topic for r in recs)
    chosen = Counter(r.topic for r in half)
    assert all(abs(chosen[t] - n / 2) <= 1.5 for t, n in topics.items())
    letters = Counter(r.answer for r in half)
    assert max(letters.values()) - min(letters.values()) <= 4


def test_split_stage_writes_what_sft_trains_on(tmp_path):
    """split.sft_sees=all: SFT trains on all of train; rest: on train minus GRPO's share, so no GRPO prompt
    is a question its starting model was fitted to. The same ids in every language."""
    import json
    import subprocess
    import sys

    import yaml

    from conftest import ROOT
    from mcqflow.core.schema import read_records, write_jsonl

    recs = sample_records("train")
    for lang in ("zh", "en"):
        write_jsonl(tmp_path / "validated" / lang / "train.jsonl", [r.__class__(**{**r.to_dict(), "lang": lang})
                                                                  for r in recs])  # fmt: skip
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    out = {}
    for sees in ("all", "rest"):
        params["split"]["sft_sees"] = sees
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
        r = subprocess.run([sys.executable, ROOT / "stages/split.py", "--data", "validated", "--langs", "zh",
                            "en", "--out", f"split-{sees}"], cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
        assert r.returncode == 0, r.stderr
        split = tmp_path / f"split-{sees}"
        out[sees] = {lang: ([x.id for x in read_records(split / f"{lang}.jsonl")],
                            [x.id for x in read_records(split / "sft" / f"{lang}.jsonl")]) for lang in ("zh", "en")}  # fmt: skip
        manifest = json.loads((split / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["sft_sees"] == sees and manifest["n_sft"] == len(out[sees]["zh"][1])
    grpo, sft = out["all"]["zh"]
    assert len(grpo) == 90 and sft == [r.id for r in recs]
    assert out["rest"]["zh"][0] == grpo  # GRPO's share does not depend on what SFT sees
    rest = out["rest"]["zh"][1]
    assert not set(rest) & set(grpo) and sorted(rest + grpo) == sorted(r.id for r in recs)
    assert out["rest"]["en"] == out["rest"]["zh"] and out["all"]["en"] == out["all"]["zh"]
