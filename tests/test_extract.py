import pytest

from mcqflow.extract import extract_answer

OPTS = {"A": "經濟發展", "B": "環境保護", "C": "言論自由", "D": "司法獨立"}

CASES = [
    # tags: the last one wins, lowercase counts inside
    ("<output>B</output>", "B", "tag"),
    ("<output>b</output>", "B", "tag"),
    ("<output> C </output>", "C", "tag"),
    ("<answer>d</answer>", "D", "tag"),
    ("<output>A</output> 之後修正 <output>C</output>", "C", "tag"),
    ("<reasoning>選項A看似正確</reasoning><output>D</output>", "D", "tag"),
    ("<OUTPUT>B</OUTPUT>", "B", "tag"),
    ("<output>答案是C</output>", "C", "tag"),
    ("<output>Ｂ</output>", "B", "tag"),
    ("<output>不確定</output>", None, "tag-unreadable"),
    ("<output>E</output>", None, "tag-unreadable"),
    # Chinese phrases, Traditional and Simplified
    ("答案：C", "C", "zh-phrase"),
    ("答案是 B。", "B", "zh-phrase"),
    ("答案為D", "D", "zh-phrase"),
    ("答案为A", "A", "zh-phrase"),
    ("最終答案：B", "B", "zh-phrase"),
    ("最终答案是 (C)", "C", "zh-phrase"),
    ("正確答案是D", "D", "zh-phrase"),
    ("正确答案：a", "A", "zh-phrase"),
    ("答：B", "B", "zh-phrase"),
    ("綜上所述，故選C。", "C", "zh-phrase"),
    ("因此选择 D", "D", "zh-phrase"),
    ("選項C正確，其他都不對。", "C", "zh-phrase"),
    ("选项B是正确的", "B", "zh-phrase"),
    ("排除A和B……最終選擇D", "D", "zh-phrase"),
    ("A看似合理，但B更好；最終答案：B", "B", "zh-phrase"),
    ("答案不是A，而是C", "C", "zh-phrase"),
    ("我認為答案是（Ｂ）", "B", "zh-phrase"),
    ("應選 A", "A", "zh-phrase"),
    ("選項A不正確，選項B也不正確，選項D正確", "D", "zh-phrase"),
    # English
    ("The answer is B.", "B", "en-phrase"),
    ("Answer: C", "C", "en-phrase"),
    ("The correct answer is (D).", "D", "en-phrase"),
    ("Final answer: A", "A", "en-phrase"),
    ("After weighing both, I choose B", "B", "en-phrase"),
    ("Option C is correct because it is balanced.", "C", "en-phrase"),
    ("A looks tempting, but the best answer is D", "D", "en-phrase"),
    ("\\boxed{C}", "C", "boxed"),
    ("so the result is \\boxed{\\text{b}}", "B", "boxed"),
    # leading letters
    ("B", "B", "letter"),
    ("b", "B", "letter"),
    ("C.", "C", "letter"),
    ("(A)", "A", "letter"),
    ("C) because it respects both sides", "C", "leading-letter"),
    ("D. 司法獨立", "D", "leading-letter"),
    ("A 因為它最中立", "A", "leading-letter"),
    # nothing to read: never a default letter
    ("", None, "empty"),
    ("   ", None, "empty"),
    (None, None, "empty"),
    ("抱歉，我無法回答這個問題。", None, "refusal"),
    ("对不起，我不能回答。", None, "refusal"),
    ("I'm sorry, but I can't help with that.", None, "refusal"),
    ("The answer is a matter of perspective.", None, "no-answer"),
    ("答案是A和C", None, "no-answer"),
    ("The answer is A or B", None, "no-answer"),
    ("這題很難判斷。", None, "no-answer"),
    ("答案：E", None, "no-answer"),
]


@pytest.mark.parametrize(("text", "answer", "method"), CASES)
def test_extract(text, answer, method):
    got = extract_answer(text)
    assert (got.answer, got.method) == (answer, method)


def test_case_count():
    assert len(CASES) >= 40


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


ADVERSARIAL = [
    "答案" + " " * 100_000 + "B",
    "答案" + " " * 100_000,
    "選" + " \t\n" * 33_000 + "選項",
    "<output>" * 12_000 + "A",
    "<output>" + "x" * 50_000 + "<answer>" * 5_000,
    "the correct answer is" + " " * 100_000 + "(",
    "I would choose " + "option " * 14_000,
    "\\boxed{" + " " * 100_000,
    "答案是A和" * 20_000,
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_linear_time_on_adversarial_outputs(text):
    import time

    start = time.perf_counter()
    extract_answer(text, OPTS)
    assert time.perf_counter() - start < 0.5, "extraction must stay linear in the output's length"


def test_whitespace_runs_do_not_change_the_reading():
    assert extract_answer("答案" + " " * 150 + "B").answer == "B"
    assert extract_answer("<output>\n\n  C \n</output>").answer == "C"
    assert extract_answer("<output>A<output>B</output>").answer == "B"
