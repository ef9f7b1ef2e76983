import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from conftest import counting, sample_records
from mcqflow.core.prompts import cloze_prompt, render_prompt
from mcqflow.core.schema import LETTERS
from mcqflow.evaluation.evaluate import cloze_scores, content_free_prior, rotate, score, summarize, unrotate
from mcqflow.evaluation.predict import letter_token_ids
from mcqflow.modeling.models import load_for_inference


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return load_for_inference(tiny_dir)


def two_questions():
    return sample_records("dev")[:2]


@torch.inference_mode()
def test_letter_and_cloze_agree_with_a_hand_computation(tiny):
    model, tok = tiny
    recs = two_questions()
    letter = score(recs, model, tok, "letter")
    cloze = cloze_scores(model, tok, recs, batch_size=3)  # under four rows: one question a batch
    for rec, s, c in zip(recs, letter, cloze, strict=True):
        ids = tok(render_prompt(tok, rec, "plain"), add_special_tokens=False, return_tensors="pt").input_ids
        by_hand = model(ids).logits[0, -1, letter_token_ids(tok)].float().softmax(-1).tolist()
        assert s.scores == pytest.approx(by_hand, abs=1e-5)
        prefix = tok(cloze_prompt(tok, rec), add_special_tokens=False).input_ids
        for k, got in zip(LETTERS, c, strict=True):
            opt = tok(rec.options[k], add_special_tokens=False).input_ids
            logp = model(torch.tensor([prefix + opt])).logits[0].float().log_softmax(-1)
            want = sum(float(logp[len(prefix) - 1 + t, o]) for t, o in enumerate(opt)) / len(opt)
            assert got == pytest.approx(want, abs=1e-4)


@torch.inference_mode()
def test_cloze_shares_each_question_across_its_options_with_the_same_scores(tiny):
    """Questions of different lengths in one batch (left-padded), options of different lengths (right-
    padded after the shared question): every score equals its own forward pass of question + option."""
    model, tok = tiny
    recs = sample_records("dev")[:6]
    recs[1] = replace(recs[1], question=recs[1].question * 3, options={**recs[1].options, "B": "是"})
    shared = cloze_scores(model, tok, recs, batch_size=12)
    for rec, got in zip(recs, shared, strict=True):
        prefix = tok(cloze_prompt(tok, rec), add_special_tokens=False).input_ids
        for k, g in zip(LETTERS, got, strict=True):
            opt = tok(rec.options[k], add_special_tokens=False).input_ids
            logp = model(torch.tensor([prefix + opt])).logits[0].float().log_softmax(-1)
            want = sum(float(logp[len(prefix) - 1 + t, o]) for t, o in enumerate(opt)) / len(opt)
            assert g == pytest.approx(want, abs=1e-4), (rec.id, k)
    one_by_one = [x for row in cloze_scores(model, tok, recs, batch_size=4) for x in row]
    assert one_by_one == pytest.approx([x for row in shared for x in row], abs=1e-4)


def test_rotations_move_options_and_gold_together():
    rec = two_questions()[0]
    for r in range(4):
        rot = rotate(rec, r)
        assert rot.options[rot.answer] == rec.options[rec.answer]
        assert sorted(rot.options.values()) == sorted(rec.options.values())
        for k in LETTERS:
            assert rot.options[k] == rec.options[unrotate(k, r)]


def test_circular_scoring_exposes_a_constant_letter(monkeypatch, tiny):
    """A model that always says "A" scores the share of gold A at rotation 0, that of B after one
    rotation, and so on; it is never right under all four."""
    import mcqflow.evaluation.evaluate as ev

    monkeypatch.setattr(
        ev, "letter_probs", lambda m, t, prompts, *a, **k: [[0.7, 0.1, 0.1, 0.1]] * len(prompts)
    )
    recs = sample_records("dev")[:8]
    scored = score(recs, *tiny, protocol="letter", rotations=(0, 1, 2, 3))
    m = summarize(scored, (0, 1, 2, 3))
    golds = [r.answer for r in recs]
    for r in range(4):
        assert m["rotation_accuracy"][str(r)] == pytest.approx(golds.count(LETTERS[r]) / 8, abs=1e-4)
    assert m["circular_accuracy"] == 0.0 and m["letter_share"]["A"] == 1.0


def test_calibration_divides_out_the_content_free_prior_and_never_reads_labels(tiny):
    model, tok = tiny
    recs = two_questions()
    prior = content_free_prior(model, tok, "zh", "plain", [], 8)
    raw = score(recs, model, tok, "letter")
    cal = score(recs, model, tok, "calibrated")
    for r, c in zip(raw, cal, strict=True):
        q = [p / w for p, w in zip(r.scores, prior, strict=True)]
        assert c.scores == pytest.approx([x / sum(q) for x in q], rel=1e-6)
    relabelled = [rotate(rec, 0) for rec in recs]
    for rec in relabelled:
        rec.answer = "D"
    assert [s.answer for s in score(relabelled, model, tok, "calibrated")] == [s.answer for s in cal]


def test_few_shot_examples_are_earlier_turns(tiny):
    _, tok = tiny
    shots = sample_records("train")[:2]
    rec = two_questions()[0]
    text = render_prompt(tok, rec, "plain", shots)
    assert text.count("<|im_start|>user") == 3 and text.count("<|im_start|>assistant") == 3
    assert text.index(shots[1].question) < text.index(rec.question)
    assert f"<|im_start|>assistant\n{shots[0].answer}<|im_end|>" in text


def test_evaluate_cli_on_a_cmmlu_file(tiny_dir, tmp_path):
    recs = sample_records("dev")[:6]
    rows = [",Question,A,B,C,D,Answer"] + [
        f"{i},{r.question},{r.options['A']},{r.options['B']},{r.options['C']},{r.options['D']},{r.answer}"
        for i, r in enumerate(recs)
    ]
    cmmlu = tmp_path / "cmmlu.csv"
    cmmlu.write_text("\n".join(rows) + "\n", encoding="utf-8")
    shots = tmp_path / "shots.jsonl"
    shots.write_text("".join(r.to_json() + "\n" for r in sample_records("train")[:3]), encoding="utf-8")
    for protocol in ("letter", "calibrated", "cloze"):
        out = tmp_path / f"{protocol}.json"
        r = subprocess.run(
            [sys.executable, "-m", "mcqflow.cli", "evaluate", "--model", tiny_dir, "--input", str(cmmlu)]
            + ["--protocol", protocol, "--circular", "--shots", "1", "--shots-from", str(shots)]
            + ["--metrics", str(out), "--details", str(tmp_path / f"{protocol}.jsonl")]
            + ["--report", str(tmp_path / f"{protocol}.html")],
            capture_output=True,
            text=True,
            env={**os.environ, "MCQFLOW_CACHE": str(tmp_path / "cache")},
        )
        assert r.returncode == 0, r.stderr[-2000:]
        assert not list((tmp_path / "cache" / "evaluate").iterdir())  # the journal goes once all is written
        m = json.loads(out.read_text())
        assert (
            m["n"] == 6 and m["protocol"] == protocol and set(m["rotation_accuracy"]) == {"0", "1", "2", "3"}
        )
        assert m["circular_accuracy"] <= min(m["rotation_accuracy"].values())
        run = m["run"]  # which run made these numbers
        assert run["model"] == tiny_dir and run["input"] == str(cmmlu) and run["adapter"] is None
        assert (
            run["input_sha256"] == hashlib.sha256(cmmlu.read_bytes()).hexdigest() and run["prompt"] == "plain"
        )
        assert run["versions"]["mcqflow"] and run["versions"]["torch"] and run["date"].startswith("20")
        assert len((tmp_path / f"{protocol}.jsonl").read_text().splitlines()) == 24
        assert "circular" in r.stdout and "per rotation" in r.stdout
        page = (tmp_path / f"{protocol}.html").read_text(encoding="utf-8")
        assert "Gold vs predicted letter" in page and f"{m['rotation_accuracy']['3']:.3f}" in page
    bad = subprocess.run(
        [sys.executable, "-m", "mcqflow.cli", "evaluate", "--model", tiny_dir, "--input", str(cmmlu)]
        + ["--shots", "2"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "--shots-from" in bad.stderr and "Traceback" not in bad.stderr


def test_a_stopped_evaluate_resumes_from_its_journal_and_asks_only_for_the_rest(tiny, tmp_path):
    from mcqflow.evaluation.evaluate import journal_for, score_resumable
    from mcqflow.evaluation.predict import run_fingerprint

    model, tok = tiny
    recs = sample_records("dev")[:6]
    rotations = (0, 1, 2, 3)
    whole = score(recs, model, tok, "letter", rotations, batch_size=4)
    journal = journal_for(tmp_path / "eval.partial.jsonl", run_fingerprint(recs, protocol="letter"))
    journal.start({})
    journal.append([s for s in whole if s.id in {recs[0].id, recs[1].id}])  # two questions, every rotation
    with journal.path.open("a", encoding="utf-8") as f:
        f.write('{"id": "torn')  # the stop came while a line was being written
    asked: list[int] = []
    kw = dict(
        model=counting(model, asked), tokenizer=tok, protocol="letter", rotations=rotations, batch_size=4
    )
    got = score_resumable(recs, journal, chunk=3, log=lambda _: None, **kw)
    assert sum(asked) == 4 * 4  # the four other questions, under four rotations
    assert [(s.id, s.rotation, s.answer) for s in got] == [(s.id, s.rotation, s.answer) for s in whole]
    flat = [x for s in whole for x in s.scores]
    assert [x for s in got for x in s.scores] == pytest.approx(flat, abs=1e-5)
    assert len(journal.load()) == 6 * 4
