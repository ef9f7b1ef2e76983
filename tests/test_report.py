from mcqflow.predict import Prediction
from mcqflow.report import build, plot_rows, render
from mcqflow.schema import Record


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
