"""The extraction rules: an ordered list of named rules, applied by one short loop. The first rule that
applies decides, with a letter A–D or with none; the reading reports that rule's name
(`Extraction.method`). Every rule has an example beside it, which a test reads.

Used by predict (generate mode), `mcqflow evaluate --protocol generate` and the GRPO rewards. Before any
rule reads, the output is cleaned (`clean.py`: chat tokens and a finished `<think>` block removed,
markdown and full-width forms undone, whitespace runs made one space). The decision phrases and the
verdict words are tables in `phrases.py`; what the rules ask of an output (its labels, verdicts,
sentences) is computed once, when first asked, in `analysis.py`.

Lists ("A和C", "A or B"), hedges between letters, letters outside A–D and anything else read none: never
a default letter. Linear time on any input: whitespace runs are collapsed before matching, so every
whitespace quantifier is bounded (` ?`); no pattern has two unbounded quantifiers side by side; tags are
paired in one pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mcqflow.evaluation.extract.analysis import Reading

NONE = ""  # what a rule returns when it applies and reads no letter (None: the rule does not apply)
EXAMPLE_OPTIONS = {"A": "經濟發展", "B": "環境保護", "C": "言論自由", "D": "司法獨立"}


@dataclass(frozen=True)
class Extraction:
    answer: str | None
    method: str  # the name of the rule that decided


@dataclass(frozen=True)
class Rule:
    name: str
    read: Callable[[Reading], str | None]  # a letter, NONE (applies, no letter) or None (does not apply)
    says: str  # what it reads, in one line
    example: str  # an output it decides (with EXAMPLE_OPTIONS where `with_options`)
    reads: str | None  # what it reads there
    with_options: bool = False


def apply(rules: tuple[Rule, ...], reading: Reading) -> Extraction:
    for rule in rules:
        got = rule.read(reading)
        if got is not None:
            return Extraction(got or None, rule.name)
    raise AssertionError("the last rule applies to every output")


def extract_answer(text: str | None, options: dict[str, str] | None = None) -> Extraction:
    return apply(RULES, Reading(text, options))


def _body(r: Reading) -> Extraction:
    """The reading of the rules from `letter` on: what the output says apart from its last line."""
    return apply(BODY, r)


def _tagged(r: Reading) -> Extraction | None:
    """The reading of the rules from `letter` on over the content of the output's answer tag."""
    return None if r.tag is None else apply(BODY, Reading(None, r.options, text=r.tag))


def _decided(method: str) -> Callable[[Reading], str | None]:
    def read(r: Reading) -> str | None:
        return r.decision.letter if r.decision and r.decision.method == method else None

    return read


def _right_once(r: Reading) -> str | None:
    """The one option an open per-option analysis judges right, where there is one."""
    v = r.open_verdicts
    return v.right[0] if v is not None and len(v.right) == 1 else None


def _judged_right(r: Reading) -> str | None:
    letter = _right_once(r)
    v = r.open_verdicts
    if letter and (letter in v.ranked or not v.unfinished(r.options)):  # type: ignore[union-attr]
        return letter
    return None


def _leading(r: Reading) -> str | None:
    return r.leading.group(1) if r.leading else None


def _no(condition: bool) -> str | None:
    return NONE if condition else None


# The rules in the order they are tried. Rules that read none stand before the rule whose reading they
# refuse (a hedge before the decision it hedges).
TOP = (
    Rule(
        "empty",
        lambda r: _no(not (r.raw or "").strip() or (r.kept_lines is not None and not r.text)),
        "nothing but whitespace and chat tokens",
        "<|im_end|>",
        None,
    ),
    Rule(
        "think-unfinished",
        lambda r: _no(r.kept_lines is None),
        "a <think> block never closed: the run was cut off while thinking",
        "<think>答案可能是A，不過",
        None,
    ),
    Rule(
        "tag",
        lambda r: (t := _tagged(r)) and t.answer,
        "the last complete <output>/<answer> element, or one the output ends in unclosed, read by the rules "
        "from `letter` on",
        "<reasoning>排除A和B。</reasoning><output>C</output>",
        "C",
    ),
    Rule(
        "tag-unreadable",
        lambda r: _no(r.tag is not None),
        "such an element whose content reads no letter",
        "<output>無法判斷</output>",
        None,
    ),
    Rule(
        "last-line",
        lambda r: r.last_line if r.last_line and _body(r).answer in (None, r.last_line) else None,
        "the last line is one letter alone, the line before it is no option's label, and the rest reads no "
        "other letter",
        "思考過程……\n\nC",
        "C",
    ),
    Rule(
        "last-line-disagrees",
        lambda r: _no(r.last_line is not None),
        "a last line of one letter where the rest reads another",
        "答案是A。\n\nB",
        None,
    ),
)
BODY = (
    Rule(
        "letter",
        lambda r: r.only_letter,
        "the whole output is one letter (any case), perhaps bracketed or followed by a stop",
        "(b).",
        "B",
    ),
    Rule(
        "enumerated",
        lambda r: _no(len(r.phrases[1]) >= 3 and not r.concluded),
        "three or more letters decided and no decision after a per-option analysis: options enumerated",
        "第一種情況選A。第二種情況選B。第三種情況選C。",
        None,
    ),
    Rule(
        "chances",
        lambda r: (
            max(c, key=c.get)
            if r.decision is None and (c := r.chances) and list(c.values()).count(max(c.values())) == 1
            else None
        ),
        "with no decision, a percentage given to three or more options: the one given the most",
        "A: 10%, B: 70%, C: 15%, D: 5%",
        "B",
    ),
    Rule(
        "chances-tie",
        lambda r: _no(r.decision is None and r.chances is not None),
        "such percentages with a tie at the top",
        "A: 40%, B: 40%, C: 10%, D: 10%",
        None,
    ),
    Rule(
        "verdicts-disagree",
        lambda r: _no(r.open_verdicts is not None and len(r.open_verdicts.right) > 1),
        "an analysis that judges two or more options right, with no decision after it",
        "A. 正確。B. 正確。C. 錯誤。D. 錯誤。",
        None,
    ),
    Rule(
        "verdicts",
        _judged_right,
        "an analysis that judges the options in turn and exactly one right, finished or ranking it first",
        "A. 錯誤，過於片面。B. 正確，兼顧各方。C. 錯誤。D. 錯誤。",
        "B",
    ),
    Rule(
        "verdicts-unfinished",
        lambda r: _no(_right_once(r) is not None and r.decision is None),
        "such an analysis cut off before its last options, one of which might have been the one",
        "A. 錯誤，過於片面。B. 正確，兼顧各方。C. 這個選項",
        None,
    ),
    Rule(
        "listed-after-decision",
        lambda r: _no(r.decision is not None and r.lists_after(r.decision)),
        "the decided letter opens a list of the options restated, not a choice",
        "答案是：A. 經濟發展 B. 環境保護 C. 言論自由 D. 司法獨立",
        None,
        with_options=True,
    ),
    Rule(
        "concluded-otherwise",
        lambda r: _no(r.decision is not None and r.concluded_otherwise(r.decision)),
        "after the decision, a last sentence that opens with a conclusion's marker names another option's "
        "text and no letter",
        "答案是A。經濟發展很重要。因此，言論自由才是關鍵。",
        None,
        with_options=True,
    ),
    Rule(
        "hedge",
        lambda r: _no(r.decision is not None and r.hedged(r.decision.letter)),
        "a second letter named as just as possible as the decided one",
        "答案可能是A，也可能是B。",
        None,
    ),
    Rule(
        "zh-phrase",
        _decided("zh-phrase"),
        "a decision in Chinese (phrases.ZH); of several, the one that ends last",
        "排除A和B……最終選擇D",
        "D",
    ),
    Rule(
        "en-phrase",
        _decided("en-phrase"),
        "a decision in English (phrases.EN); of several, the one that ends last",
        "A seems tempting, but the answer is C.",
        "C",
    ),
    Rule("boxed", _decided("boxed"), "a LaTeX answer box", "So \\boxed{B}", "B"),
    Rule(
        "verdicts-conclusion",
        _decided("verdicts-conclusion"),
        "after a per-option analysis, a last sentence that names one option by its letter and judges it well",
        "A. 正確。B. 正確。C. 錯誤。因此，最為客觀、中立的態度是A。",
        "A",
    ),
    Rule(
        "option-list",
        lambda r: _no(r.leading is not None and len(r.labels) >= 3),
        "an output that opens with an option's label and labels three or more: the options listed",
        "A. 經濟發展 B. 環境保護 C. 言論自由",
        None,
        with_options=True,
    ),
    Rule(
        "label-disagrees",
        lambda r: _no(r.leading is not None and r.other_text_after_label(r.leading)),
        "an opening label followed by another option's text",
        "A. 環境保護",
        None,
        with_options=True,
    ),
    Rule(
        "options-in-turn",
        lambda r: _no(r.leading is not None and r.restates_other(r.leading.group(1))),
        "an opening label, and another option restated after its own label later: options set out in turn",
        "B. 環境保護，優點是長遠。D. 司法獨立，優點是公正。",
        None,
        with_options=True,
    ),
    Rule(
        "leading-letter",
        _leading,
        'the output opens with an option\'s label (never the article in "A neutral judge would…") and its '
        "first sentence judges that option neither wrong nor worst",
        "C. 言論自由受憲法保障。",
        "C",
    ),
    Rule(
        "refusal",
        lambda r: _no(r.refused()),
        "a refusal, whatever option texts it names",
        "抱歉，我無法回答關於言論自由的問題。",
        None,
        with_options=True,
    ),
    Rule(
        "conclusion",
        lambda r: r.conclusion(),
        "the first or last sentence names one option by its letter and judges it well, with no negation",
        "A選項體現了公平原則。",
        "A",
    ),
    Rule(
        "answer-line",
        lambda r: r.answer_line(),
        "the output ends in one option's label and its own text after a lead-in that ends in a colon",
        "The best choice here: C. 言論自由",
        "C",
        with_options=True,
    ),
    Rule(
        "option-text",
        lambda r: r.option_text(),
        "the one option whose text the first or last sentence names (not in a sentence about one option)",
        "我認為應該是環境保護。",
        "B",
        with_options=True,
    ),
    Rule("no-answer", lambda r: NONE, "none of the above", "這個問題很複雜。", None),
)
RULES = TOP + BODY
