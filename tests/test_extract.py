import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from mcqflow.evaluation.extract.clean import clean
from mcqflow.evaluation.extract.phrases import TABLES, bounded
from mcqflow.evaluation.extract.rules import EXAMPLE_OPTIONS, RULES, Extraction, extract_answer

OPTS = {"A": "經濟發展", "B": "環境保護", "C": "言論自由", "D": "司法獨立"}

# One case a line: an output written the way Qwen2.5, DeepSeek-R1 (<think>) and Llama-3 answer, or a real
# output of the embedded Qwen2.5-Coder-0.5B-Instruct (style `real-…`, with the options it was shown), the letter
# it must read (null: none), its style, and for some the rule that must decide it (RULES in mcqflow.evaluation.extract).
CASES_FILE = Path(__file__).parent / "data" / "extraction_cases.jsonl"
CASES = [json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


def _case_id(c: dict) -> str:
    """Stable across insertions: the style and a hash of what is read, not the line number."""
    key = json.dumps([c["text"], c.get("options")], ensure_ascii=False, sort_keys=True)
    return f"{c['style']}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_extract(case):
    got = extract_answer(case["text"], case.get("options"))
    assert got.answer == case["answer"], (case["text"], got)
    if "rule" in case:
        assert got.method == case["rule"], (case["text"], got)


def test_every_rule_decides_some_case_and_every_method_is_a_rule():
    names = [r.name for r in RULES]
    assert len(set(names)) == len(names)
    methods = Counter(extract_answer(c["text"], c.get("options")).method for c in CASES)
    assert set(methods) <= set(names), "a method that is no rule's name"
    assert [n for n in names if not methods[n]] == [], "rules no case exercises"
    refusals = [c for c in CASES if extract_answer(c["text"], c.get("options")).method == "refusal"]
    assert refusals and all(c["answer"] is None for c in refusals)


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_each_rule_reads_its_example(rule):
    got = extract_answer(rule.example, EXAMPLE_OPTIONS if rule.with_options else None)
    assert got == Extraction(rule.reads, rule.name)


PHRASES = [(name, p) for name, table in TABLES.items() for p in table]


@pytest.mark.parametrize(("table", "phrase"), PHRASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(PHRASES)])
def test_each_phrase_reads_its_example(table, phrase):
    m = bounded(phrase.pattern).search(clean(phrase.example))
    assert m and m.group(1).upper() == phrase.reads, phrase.example
    assert extract_answer(phrase.example) == Extraction(phrase.reads, table)


def test_rules_run_in_the_order_the_help_lists_them(capsys):
    from mcqflow.cli import main

    with pytest.raises(SystemExit):
        main(["extract-answer", "--help"])
    out = capsys.readouterr().out
    listed = [
        line.split()[0]
        for line in out.split("rules, in the order they run:")[1].split("\n\n")[0].splitlines()[1:]
    ]
    assert listed == [r.name for r in RULES]


def test_none_and_blank_are_empty():
    assert extract_answer(None) == Extraction(None, "empty")
    assert extract_answer(" \n ") == Extraction(None, "empty")
    assert extract_answer("<|im_end|>") == Extraction(None, "empty")


def test_letters_inside_a_think_block_never_count():
    assert extract_answer("<think>答案是A。答案是A。</think>無法判斷").answer is None
    assert extract_answer("<think>the answer is B</think>").method == "empty"


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("環境保護", "B"),
        ("我認為應該是環境保護。", "B"),
        ("司法獨立最重要", "D"),
        ("經濟發展與環境保護都重要", None),  # two options named: undecided
        ("都不是", None),
    ],
)
def test_option_text(text, answer):
    got = extract_answer(text, OPTS)
    assert got.answer == answer
    if answer:
        assert got.method == "option-text"


def test_option_contained_in_another_counts_once():
    opts = {"A": "經濟", "B": "經濟發展", "C": "人權", "D": "法治"}
    assert extract_answer("我選經濟發展這個方向", opts).answer == "B"


def test_explicit_phrase_beats_option_text():
    assert extract_answer("雖然提到環境保護，但答案：D", OPTS).answer == "D"


def test_refusal_with_option_text_is_still_refusal():
    assert extract_answer("抱歉，我無法回答關於言論自由的問題", OPTS).answer is None


# Adversarial outputs by size: n = 4 gives the full size (about 100,000 characters), n = 1 a quarter of it.
ADVERSARIAL = [
    lambda n: "答案" + " " * 25_000 * n + "B",
    lambda n: "答案" + " " * 25_000 * n,
    lambda n: "選" + " \t\n" * 8_250 * n + "選項",
    lambda n: "<output>" * 3_000 * n + "A",
    lambda n: "<output>" + "x" * 12_500 * n + "<answer>" * 1_250 * n,
    lambda n: "the correct answer is" + " " * 25_000 * n + "(",
    lambda n: "I would choose " + "option " * 3_500 * n,
    lambda n: "\\boxed{" + " " * 25_000 * n,
    lambda n: "答案是A和" * 5_000 * n,
]


def _seconds(text: str, options: dict = OPTS, runs: int = 2) -> float:
    """The fastest of `runs` extractions of `text`, in seconds."""
    import time

    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        extract_answer(text, options)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("make", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_linear_time_on_adversarial_outputs(make):
    """Four times the text takes about four times as long (a quadratic scan: sixteen), measured against
    itself on the same machine rather than against a wall-clock bound; times under 50 ms at full size pass."""
    quarter, full = _seconds(make(1)), _seconds(make(4))
    assert full < 0.05 or full < 8 * quarter, f"{quarter:.3f} s -> {full:.3f} s: extraction is not linear"


def test_whitespace_runs_do_not_change_the_reading():
    assert extract_answer("答案" + " " * 150 + "B").answer == "B"
    assert extract_answer("<output>\n\n  C \n</output>").answer == "C"
    assert extract_answer("<output>A<output>B</output>").answer == "B"


GROWING = [
    lambda n: "A. " * n + "。",  # a label in every three characters, each with its verdict window
    lambda n: "A. x y " * n,  # an option restated after its label, over and over
    lambda n: "Option A: " * n,
    lambda n: "the most " + "a " * n + "is:",
    lambda n: "the statement that describes " + "x " * n,
    lambda n: "描述" + "的" * n,
    lambda n: "。".join(["這段描述指的是x y"] * n),  # sentences for option-text's first and last
]


@pytest.mark.parametrize("make", GROWING, ids=range(len(GROWING)))
def test_time_grows_linearly_with_the_output(make):
    """Eight times the output takes about eight times as long, whatever the machine's speed (a quadratic
    step would take sixty-four): measured with the options given, so every rule runs."""
    options = {"A": "x y", "B": "的的", "C": "a a", "D": "符合"}
    small, large = (_seconds(make(n), options, runs=3) for n in (4_000, 32_000))
    assert large < 16 * small + 0.05, (small, large)


def _long_options(n: int) -> dict[str, str]:
    """Four options of n characters each, different texts over one alphabet (as long Chinese options are)."""
    import random

    rng = random.Random(n)
    alphabet = (
        "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说"
    )
    return {k: "".join(rng.choice(alphabet) for _ in range(n)) for k in "ABCD"}


def _changed(s: str) -> str:
    """A word changed every 40 characters: an option restated the way models restate them."""
    return "".join("变" if i % 40 == 0 else c for i, c in enumerate(s))


LONG_SHAPES = {
    # "A. …" and then another option restated after its label (the option-list check compares the two)
    "restated-other": lambda o: "A. " + o["A"][:50] + "。C. " + _changed(o["C"]),
    # the option judged, its text restated with words changed
    "restated-own": lambda o: "A. 錯誤。" + _changed(o["A"]),
    # fourteen long sentences, each holding a quarter of one option beside a little of another
    "long-sentences": lambda o: "。".join(o["A"][: len(o["A"]) // 4] + o["B"][:50] for _ in range(14)),
}


@pytest.mark.parametrize("shape", LONG_SHAPES)
def test_long_restated_options_are_read_in_linear_time(shape):
    """The shapes a fault run found quadratic (17 s at 22,500 characters, 48 s for 14 long sentences):
    eight times the options take about eight times as long, and a 100,000-character restated option is read in
    under a second."""
    import time

    def took(n):
        options = _long_options(n)
        text = LONG_SHAPES[shape](options)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            got = extract_answer(text, options)
            best = min(best, time.perf_counter() - start)
        return best, got

    (small, a), (large, b) = took(1_500), took(12_000)
    assert large < 16 * small + 0.05, (small, large)
    assert a.method == b.method and a.answer == b.answer  # the same reading at either length
    if shape.startswith("restated"):  # the bound (0.3-0.4 s here)
        assert took(100_000)[0] < 1.0


def test_each_extraction_round_in_rounds_yaml_asks_the_questions_its_kept_file_lists():
    """experiments/extraction/rounds.yaml is the rounds as data: each round's styles and rows give the outputs
    its labelled file holds, in order, with the options those outputs were shown."""
    import importlib.util

    from conftest import ROOT

    folder = ROOT / "experiments/extraction"
    spec = importlib.util.spec_from_file_location("rounds_generate", folder / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    rounds = generate.load_rounds()
    assert sorted(rounds) == sorted(p.stem for p in folder.glob("round*.jsonl"))
    for name, plan in rounds.items():
        kept = [
            json.loads(line) for line in (folder / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        planned = [(style, r) for style, recs in generate.questions(plan) for r in recs]
        assert [(k["id"], k["style"]) for k in kept] == [(r.id, s["name"]) for s, r in planned], name
        for k, (s, r) in zip(kept, planned, strict=True):
            assert s.get("script") == "t2s" or k["options"] == r.options, (name, k["id"])
