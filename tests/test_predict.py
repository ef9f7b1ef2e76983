import csv
import dataclasses

import pytest
import torch

from conftest import counting, sample_records
from mcqflow.core.prompts import render_prompt
from mcqflow.evaluation.metrics import evaluate, wilson_interval
from mcqflow.evaluation.predict import (
    Prediction,
    generate,
    letter_probs,
    predict_records,
    shared_prefix,
)
from mcqflow.evaluation.submission import write_submission
from mcqflow.modeling.models import load_for_inference


@pytest.fixture(scope="module")
def model_tok(tiny_dir):
    return load_for_inference(tiny_dir)


def test_batched_letter_scores_equal_one_by_one(model_tok):
    model, tok = model_tok
    prompts = [render_prompt(tok, r, "plain") for r in sample_records("dev")[:6]]
    assert len({len(tok(p).input_ids) for p in prompts}) > 1  # different lengths: padding matters
    batched = torch.tensor(letter_probs(model, tok, prompts, batch_size=6))
    single = torch.tensor([letter_probs(model, tok, [p], batch_size=1)[0] for p in prompts])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-4)


@pytest.fixture(scope="module")
def sharp_model_tok(tiny_dir):
    """The tiny model with large random weights, so letter scores are far from uniform and any slip in
    positions or masking shows in them."""
    model, tok = load_for_inference(tiny_dir)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.normal_(0, 0.3)
    return model, tok


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_shared_prefix_scores_equal_the_full_pass(sharp_model_tok, lang):
    model, tok = sharp_model_tok
    prompts = [render_prompt(tok, r, "plain") for r in sample_records("dev", lang)[:7]]
    full = torch.tensor(letter_probs(model, tok, prompts, batch_size=4))
    shared = torch.tensor(letter_probs(model, tok, prompts, batch_size=4, share_prefix=True))
    assert (full - 0.25).abs().max() > 0.05  # the scores say something
    torch.testing.assert_close(shared, full, atol=1e-5, rtol=1e-4)


def test_shared_prefix_is_the_common_token_prefix_less_one():
    assert shared_prefix([[1, 2, 3, 4], [1, 2, 3, 5, 6], [1, 2, 3, 4, 7]]) == [1, 2, 3]
    assert shared_prefix([[1, 2], [1, 2, 3]]) == [1]  # the shortest prompt keeps a token to score
    assert shared_prefix([[9, 2], [1, 2]]) == []


def test_batched_generation_equals_one_by_one(model_tok):
    model, tok = model_tok
    prompts = [render_prompt(tok, r, "reasoning") for r in sample_records("dev")[:4]]
    batched = generate(model, tok, prompts, batch_size=4, max_new_tokens=12)
    single = [generate(model, tok, [p], batch_size=1, max_new_tokens=12)[0] for p in prompts]
    assert batched == single


def test_unreadable_generations_fall_back_to_letter_scores_and_are_counted(model_tok):
    model, tok = model_tok
    recs = sample_records("dev")[:5]
    preds = predict_records(recs, model, tok, "generate", "reasoning", batch_size=5, max_new_tokens=8)
    assert [p.id for p in preds] == [r.id for r in recs]
    assert all(p.answer in "ABCD" and len(p.answer) == 1 for p in preds)
    fallbacks = [p for p in preds if p.extracted is None]
    assert fallbacks and all(p.method == "fallback-logits" for p in fallbacks)
    assert evaluate(preds)["fallbacks"] == len(fallbacks)


def test_letter_mode_is_one_forward_pass(model_tok):
    model, tok = model_tok
    recs = sample_records("dev")[:3]
    preds = predict_records(recs, model, tok, "letter", "plain")
    assert {p.method for p in preds} == {"letter-logits"}
    assert [p.gold for p in preds] == [r.answer for r in recs]


def test_submission_format(tmp_path):
    preds = [Prediction("10", "B", "letter-logits", "", None), Prediction("2", "D", "tag", "", "D")]
    write_submission(preds, tmp_path / "s.csv")
    assert (tmp_path / "s.csv").read_text(encoding="utf-8") == "ID,Answer\n10,B\n2,D\n"
    with open(tmp_path / "s.csv", newline="") as f:
        assert next(csv.reader(f)) == ["ID", "Answer"]


def test_ids_with_line_breaks_quotes_or_commas_round_trip(tmp_path):
    """Every ID reads back as written, with the csv module and with pandas, one row each: a bare \r too
    (csv leaves it unquoted under a "\n" terminator, and readers end the row there)."""
    import pandas as pd

    ids = ["plain", "a\rb", "c\nd", "e\r\nf", 'g"h', "i,j", " k ", "z\r"]
    preds = [Prediction(i, "ABCD"[n % 4], "tag", "", None) for n, i in enumerate(ids)]
    write_submission(preds, tmp_path / "s.csv")
    with open(tmp_path / "s.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows == [["ID", "Answer"]] + [[p.id, p.answer] for p in preds]
    df = pd.read_csv(tmp_path / "s.csv", dtype=str, keep_default_na=False)
    assert df["ID"].tolist() == ids and df["Answer"].tolist() == [p.answer for p in preds]
    assert (tmp_path / "s.csv").read_text(encoding="utf-8").startswith("ID,Answer\nplain,A\n")


def test_submission_never_writes_a_missing_letter(tmp_path):
    with pytest.raises(AssertionError):
        write_submission([Prediction("1", "", "no-answer", "", None)], tmp_path / "s.csv")


def test_wilson_interval():
    lo, hi = wilson_interval(45, 50)
    assert lo == pytest.approx(0.7864, abs=1e-3) and hi == pytest.approx(0.9565, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 0.0)


def test_evaluate():
    preds = [
        Prediction(str(i), a, "letter-logits", "", None, g)
        for i, (a, g) in enumerate(["AA", "BA", "CC", "AD"])
    ]
    preds.append(Prediction("x", "B", "fallback-logits", "", None, None))  # unlabelled: not in accuracy
    m = evaluate(preds)
    assert (m["n"], m["accuracy"], m["fallbacks"]) == (4, 0.5, 1)
    assert m["letter_share"] == {"A": 0.4, "B": 0.4, "C": 0.2, "D": 0.0}


def test_generation_stops_at_a_stop_string(tiny_dir):
    """Reasoning outputs are cut at </output>; shown here with a stop string taken from what the model
    writes freely, since an untrained model never writes the tag itself."""
    from mcqflow.evaluation.predict import STOP_STRINGS

    model, tok = load_for_inference(tiny_dir)
    prompt = render_prompt(tok, sample_records("dev")[0], "reasoning")
    ids = generate(model, tok, [prompt], max_new_tokens=24)[0]
    assert len(ids) > 12
    stop = ids[8:12]
    cut = generate(model, tok, [prompt], max_new_tokens=24, stop_strings=[stop])[0]
    assert len(cut) < len(ids) and ids.startswith(cut)  # cut early, at the stop string
    assert STOP_STRINGS["reasoning"] == ["</output>"]


def test_degenerate_runs_are_warned_about():
    from mcqflow.evaluation.metrics import degenerate_warnings, evaluate
    from mcqflow.evaluation.predict import Prediction

    constant = [Prediction(f"q{i}", "A", "letter-logits", "", None, "ABCD"[i % 4]) for i in range(8)]
    assert evaluate(constant)["max_letter_share"] == 1.0 and evaluate(constant)["max_letter"] == "A"
    (line,) = degenerate_warnings(constant, "dev")
    assert "8 of 8 answers are 'A'" in line
    fell = [Prediction(f"q{i}", "ABCD"[i % 4], "fallback-logits", "", None) for i in range(8)]
    (line,) = degenerate_warnings(fell, "test")
    assert "8 of 8 outputs had no readable answer" in line
    fine = [Prediction(f"q{i}", "ABCD"[i % 4], "tag", "", "ABCD"[i % 4]) for i in range(8)]
    assert degenerate_warnings(fine, "dev") == []


def test_prompts_past_the_context_are_cut_from_the_start_and_counted(model_tok):
    from mcqflow.evaluation.metrics import degenerate_warnings, evaluate

    model, tok = model_tok
    recs = sample_records("dev")[:2]
    long = dataclasses.replace(recs[0], id="long", question=recs[0].question * 400)
    assert len(tok(long.question).input_ids) > model.config.max_position_embeddings
    for mode in ("letter", "generate"):
        preds = predict_records([long, recs[1]], model, tok, mode, "plain", max_new_tokens=4)
        assert [p.truncated for p in preds] == [True, False] and all(p.answer in "ABCD" for p in preds)
        assert evaluate(preds)["truncated_prompts"] == 1
        assert any("longer than the model's context" in w for w in degenerate_warnings(preds, "x"))


def test_a_stopped_run_resumes_from_its_journal_and_asks_only_for_the_rest(model_tok, tmp_path):
    from mcqflow.evaluation.predict import AnswerJournal, Prediction, predict_resumable, run_fingerprint

    model, tok = model_tok
    recs = sample_records("dev")[:10]
    fp = run_fingerprint(recs, model="tiny", inference="letter")
    journal = AnswerJournal(tmp_path / "sub.csv.partial.jsonl", fp)
    journal.start({})
    done = [Prediction(r.id, "D", "journalled", "", "D", r.answer) for r in recs[:4]]
    journal.append(done)
    with journal.path.open("a", encoding="utf-8") as f:
        f.write('{"id": "torn mid-wri')  # the kill came while a line was being written
    asked: list[int] = []
    kw = dict(
        model=counting(model, asked), tokenizer=tok, inference="letter", prompt_mode="plain", batch_size=3
    )
    preds = predict_resumable(recs, journal, chunk=3, log=lambda _: None, **kw)
    assert [p.id for p in preds] == [r.id for r in recs]
    assert [p.method for p in preds[:4]] == ["journalled"] * 4 and sum(asked) == 6  # only the other six
    assert [p.answer for p in preds[4:]] == [p.answer for p in predict_records(recs[4:], model, tok)]
    assert len(journal.load()) == 10  # the torn line is gone, every answer is in
    asked.clear()
    other = AnswerJournal(journal.path, run_fingerprint(recs, model="another", inference="letter"))
    predict_resumable(recs, other, chunk=5, log=lambda _: None, **kw)
    assert sum(asked) == 10  # another run's answers are never taken


def test_a_journal_answer_that_is_no_letter_is_asked_again(model_tok, tmp_path):
    """A damaged journal row ("E", or empty) is not an answer: it and what follows are asked again, and the
    submission is written (it was an AssertionError)."""
    from mcqflow.evaluation.predict import AnswerJournal, Prediction, predict_resumable, run_fingerprint

    model, tok = model_tok
    recs = sample_records("dev")[:6]
    journal = AnswerJournal(tmp_path / "j.partial.jsonl", run_fingerprint(recs, model="tiny"))
    journal.start({})
    journal.append(
        [Prediction(recs[0].id, "D", "journalled", "", "D"), Prediction(recs[1].id, "E", "x", "", "E")]
    )
    asked: list[int] = []
    kw = dict(
        model=counting(model, asked), tokenizer=tok, inference="letter", prompt_mode="plain", batch_size=8
    )
    preds = predict_resumable(recs, journal, chunk=8, log=lambda _: None, **kw)
    assert preds[0].method == "journalled" and sum(asked) == 5 and all(p.answer in "ABCD" for p in preds)
    write_submission(preds, tmp_path / "s.csv")


def test_a_repetition_penalty_breaks_greedy_loops(model_tok):
    """An untrained model's greedy output repeats itself (newlines, or a three-token cycle at a mild penalty):
    a strong penalty (HF's, on tokens already in the row) makes it repeat less; 1.0 is plain greedy."""
    model, tok = model_tok
    prompts = [render_prompt(tok, r, "reasoning") for r in sample_records("dev")[:4]]
    plain = generate(model, tok, prompts, batch_size=4, max_new_tokens=40)
    assert generate(model, tok, prompts, batch_size=4, max_new_tokens=40, repetition_penalty=1.0) == plain
    guarded = generate(model, tok, prompts, batch_size=4, max_new_tokens=40, repetition_penalty=50.0)

    def distinct(texts):  # characters each row uses, summed
        return sum(len(set(t)) for t in texts)

    assert distinct(plain) <= 12 and distinct(guarded) > 5 * distinct(plain)
