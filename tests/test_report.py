from mcqflow.core.schema import Record
from mcqflow.evaluation.predict import Prediction
from mcqflow.evaluation.report import build, plot_rows, render


def _rec(i, topic):
    return Record(id=str(i), question="q", options={k: k for k in "ABCD"}, answer="A", topic=topic, lang="zh")


def test_confusion_topics_and_rotations_come_from_the_predictions():
    records = [_rec(i, "經濟" if i < 6 else "法治") for i in range(10)]
    answers = ["A", "A", "A", "B", "B", "", "A", "C", "C", "C"]  # "" is an output with no letter
    preds = [Prediction(str(i), a, "letter", "", None, "A") for i, a in enumerate(answers)]
    rep = build("m", preds, records, {"0": 0.4, "1": 0.1, "2": 0.3, "3": 0.2})
    cell = {(c["actual"], c["predicted"]): c["count"] for c in rep["confusion"]}
    assert (cell[("A", "A")], cell[("A", "B")], cell[("A", "C")], cell[("A", "none")]) == (4, 2, 3, 1)
    assert sum(cell.values()) == 10 and rep["accuracy"] == 0.4
    econ, law = rep["topics"]  # the larger topic first
    assert (econ["topic"], econ["n"], econ["accuracy"]) == ("經濟", 6, 0.5)
    assert (law["topic"], law["n"], law["accuracy"]) == ("法治", 4, 0.25)
    assert law["ci95_low"] < 0.25 < law["ci95_high"]  # Wilson interval around the topic's accuracy
    rows = plot_rows(rep)
    assert len(rows["confusion"]) == 10 and rows["topics"] == rep["topics"]
    page = render(rep)
    assert "經濟" in page and "0.400" in page and "A→D" in page  # rotation 3 moves A to D
    assert "<script" not in page and "http" not in page  # one self-contained page: opens offline


def test_a_run_without_rotations_says_so_and_escapes_topics():
    preds = [Prediction("0", "B", "letter", "", None, "A")]
    page = render(build("m", preds, [_rec(0, "<b>x</b>")]))
    assert "Not scored for this run" in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_the_page_says_first_how_the_answers_were_read_and_shows_outputs():
    """A generate-mode run whose answers mostly fell back to letter scoring says so at the top, with the
    run's warning; samples show right, wrong and unreadable outputs; no topic table without topics."""
    records = [_rec(i, None) for i in range(4)]
    preds = [
        Prediction("0", "A", "tag", "<output>A</output>", "A", "A"),
        Prediction("1", "C", "tag", "<output>C</output>", "C", "A"),
        Prediction("2", "A", "fallback-logits", "实践是" * 400, None, "A"),
        Prediction("3", "B", "fallback-logits", "<b>loop</b>", None, "A"),
    ]
    rep = build("sft-reasoning (zh)", preds, records, warnings=["3 of 4 outputs had no readable answer"])
    assert rep["read"] == {"fallback-logits": 2, "tag": 2}
    assert rep["letters"] == {"A": 0.5, "B": 0.25, "C": 0.25, "D": 0.0}
    assert [s["kind"] for s in rep["samples"]] == ["right", "wrong", "unreadable", "unreadable"]
    assert rep["samples"][2]["raw"].endswith("…") and len(rep["samples"][2]["raw"]) == 601
    page = render(rep)
    head = page.split("<h2>")[0]
    assert "2 of 4 (50%) had no readable answer" in head and "class=warn>3 of 4 outputs" in head
    assert "2 by tag, 2 by fallback-logits" in head and "A 50%" in head
    assert "Accuracy per topic" not in page and "&lt;b&gt;loop&lt;/b&gt;" in page


def test_a_letter_read_out_is_named_and_its_probabilities_are_not_unreadable():
    probs = '{"A": 0.2, "B": 0.5, "C": 0.2, "D": 0.1}'
    preds = [Prediction(str(i), "B", "letter-logits", probs, None, "AB"[i % 2]) for i in range(3)]
    rep = build("base", preds, [_rec(i, None) for i in range(3)])
    assert [s["kind"] for s in rep["samples"]] == ["right", "wrong", "wrong"]
    assert "letter read-out" in render(rep) and "no readable answer" not in render(rep)


def test_the_base_model_is_shown_beside():
    preds = [Prediction(str(i), "A", "letter-logits", "", None, "A") for i in range(3)]
    base = {"accuracy": 0.25, "accuracy_ci95_low": 0.1, "accuracy_ci95_high": 0.5, "n": 3}
    rep = build("sft-plain (zh)", preds, [_rec(i, None) for i in range(3)], baseline=base)
    assert rep["baseline"] == {"accuracy": 0.25, "accuracy_ci95_low": 0.1, "accuracy_ci95_high": 0.5}
    assert "The untrained base model: <b>0.250</b> [0.100, 0.500] on the same questions." in render(rep)
    assert (
        build("base", preds, [_rec(i, None) for i in range(3)], baseline={"skipped": "x"})["baseline"] is None
    )
