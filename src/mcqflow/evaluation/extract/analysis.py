"""What the rules read in an output: its option labels, per-option verdicts, sentences, decisions and the
option texts it names (`Reading`, each fact computed once, when a rule first asks for it)."""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections import Counter
from functools import cached_property
from typing import NamedTuple

from mcqflow.evaluation.extract.clean import WS, as_cleaned, collapse, lines, norm
from mcqflow.evaluation.extract.phrases import (
    BAD,
    BARE_VERDICT,
    CLOSE,
    CONCLUDES,
    DECISIONS,
    DENIED,
    FIRST,
    GOOD,
    HEDGE,
    LIST_SEP,
    NEG,
    NEGATED,
    OPEN,
    POS,
    REFUSAL,
    VERDICT_WORD,
    WALK,
    WORST,
    bounded,
)

_TAG_MARK = re.compile(r"<(/?)(output|answer) ?>", re.IGNORECASE)
_OPEN_TAIL = re.compile(r"<(?:output|answer) ?>([^<>]{0,20})$", re.IGNORECASE)
_LEADING = bounded(
    r"^\s*(?:(?:選項|选项|(?i:option))\s*)?"
    + OPEN
    + r"\s*([A-D])(?!\s*"
    + LIST_SEP
    + r"\s*[A-Da-d](?![A-Za-z]))"
    r"\s*(?:[)\]】」.．、:]|$|\s)"
)
_ONLY_LETTER = bounded(
    r"^\s*(?:(?:選項|选项|(?i:option))\s*)?" + OPEN + r"\s*([A-Da-d])\s*" + CLOSE + r"\s*[.．、。]?\s*$"
)

# Per-option verdicts. A label: an option letter that opens a clause ("A.", "B：", "(C)", "選項D", "Option A:").
_LABEL = bounded(
    r"(?:^|(?<=[\s。；;，,.!！?？)）|]))(?:(?:選項|选项)\s*([A-D])\s*[.:、)]?|(?i:option)\s+([A-D])\s*[.:)\-]?"
    r"|[(\[【]\s*([A-D])\s*[)\]】]\s*[.:、]?|([A-D])\s*[.:、)．|]|([A-D])\s*(?:項|项)(?:說法|说法)?"
    r"|([A-D])\s[-–—]\s"  # "A - no"
    r"|([A-D]) (?=" + VERDICT_WORD + "))"  # "A 錯", "B right": a verdict word alone after it
)
# An option letter and the first percentage after it, with no other letter or number between them.
_CHANCE = re.compile(
    r"(?<![A-Za-z0-9])([A-D])(?![A-Za-z0-9])(?:(?![A-D](?![A-Za-z]))[^%\d]){0,100}?(\d{1,3}(?:\.\d+)?) ?%"
)
_ENDED = re.compile(r"[。！？.!?」』\"')）]\s*$")  # the text ends a sentence
_VERDICT_REACH = 80  # characters after a label in which its verdict is looked for


# A last line that is one letter and nothing else ("…思考過程…\n\nC", "reasoning …\n(B)").
_LAST_LINE = re.compile(r"\n[ \t]*[(\[【]?[ \t]*([A-D])[ \t]*[)\]】]?[ \t]*[.。]?\s*$")


def _last_line(text: str) -> str | None:
    """Rule 2: the letter alone on the output's last line, where the line before it is no option's label
    (an option list cut off at "D" is no answer)."""
    m = _LAST_LINE.search(text)
    if not m:
        return None
    before = [line for line in text[: m.start()].splitlines() if line.strip()]
    if not before or _ABOUT_ONE.match(before[-1]) or _LEADING.match(WS.sub(" ", before[-1]).strip()):
        return None
    return m.group(1)


def _last_tag(text: str) -> str | None:
    """The content of the last complete <output>…</output> or <answer>…</answer>, in one pass: each
    closing tag pairs with the latest unclosed opening tag of the same name."""
    open_at: dict[str, int] = {}
    last = None
    for m in _TAG_MARK.finditer(text):
        name = m.group(2).lower()
        if not m.group(1):
            open_at[name] = m.end()
        elif name in open_at:
            last = text[open_at.pop(name) : m.start()]
    return last


def _chances(text: str) -> dict[str, float] | None:
    """The percentage given to each option, where three or more options get one ("A: 10%", "Option B —
    70%", "C選項：20%"): the first after each letter, before any other letter; None otherwise."""
    found: dict[str, float] = {}
    for m in _CHANCE.finditer(text):
        found.setdefault(m.group(1), float(m.group(2)))
    return found if len(found) >= 3 else None


def _own_verdict(text: str, decision: _Decision, verdicts: _Analysis) -> bool:
    """The decision stands in the sentence of the last option's label and names that option ("D. … -
    正确的選項是D。" where A, B and C were each called 正确 the same way): a verdict of the analysis, not a
    conclusion after it."""
    start, letter = verdicts.last_label
    if decision.letter != letter or decision.start <= start:
        return False
    clause = text[start : decision.start]
    return not any(0 < m.start() < len(clause) for m in _SENTENCE_END.finditer(clause))


class _Decision(NamedTuple):
    end: int  # where the phrase ends in the text
    letter: str
    method: str
    start: int  # where it starts


class _Analysis(NamedTuple):
    end: int  # where the last verdict ends
    right: list[str]  # the letters judged right (and never wrong)
    judged: set[str]
    ranked: set[str]  # letters whose right verdict ranks them first (最…, the best, the most …)
    labelled: set[str]  # every letter that opens a clause, judged or not
    cut: bool  # the text stops mid-sentence
    last_label: tuple[int, str]  # where the last option's clause starts, and its letter

    def unfinished(self, options: dict[str, str] | None) -> bool:
        """The analysis stopped (cut off at the token limit) before an option after the last one judged,
        which might have been the one: that option's label came without a verdict, or the text stops
        mid-sentence. An analysis that ends its last sentence ("A錯，B對。") is finished, and options
        skipped in between are not waited for."""
        last = max(self.judged)
        later = {k for k in (options or "ABCD") if k > last and k not in self.judged}
        return bool(later) and (self.cut or bool(later & self.labelled))


def _verdicts(text: str, options: dict[str, str] | None = None) -> _Analysis | None:
    """The per-option verdicts of an analysis, when at least two options carry one; None when the text is
    no per-option analysis. A letter judged both right and wrong counts as neither. An option's own text
    restated after its label ("D. 認定「X」絕對正確…") is no verdict and is skipped."""
    own = {k: as_cleaned(v).casefold() for k, v in (options or {}).items()}
    labels = [(m.start(), m.end(), next(g for g in m.groups() if g)) for m in _LABEL.finditer(text)]
    judged: dict[str, set[bool]] = {}
    ranked: set[str] = set()
    end = 0
    for i, (_, stop, letter) in enumerate(labels):
        nxt = labels[i + 1][0] if i + 1 < len(labels) else len(text)
        start = stop
        restated = own.get(letter)
        if restated:
            window = text[stop : stop + 4]  # a space and an opening quote at most
            lead = len(window) - len(window.lstrip(" \"'“”「」『』"))
            if text[stop + lead : stop + lead + len(restated)].casefold() == restated:
                start = stop + lead + len(restated)
        segment = text[start : min(max(nxt, start), start + _VERDICT_REACH)]
        bare = BARE_VERDICT.match(segment)
        if bare:  # "A 錯 B 對": the verdict word alone after the label
            judged.setdefault(letter, set()).add(bool(bare.group(2)))
            end = start + bare.end()
            continue
        neg, pos = NEG.search(segment), POS.search(segment)
        if neg and (not pos or neg.start() <= pos.start()):
            judged.setdefault(letter, set()).add(False)
            end = start + neg.end()
        elif pos:
            judged.setdefault(letter, set()).add(True)
            end = start + pos.end()
            if FIRST.search(segment):
                ranked.add(letter)
    if len(judged) < 2:
        return None
    right = sorted(k for k, v in judged.items() if v == {True})
    labelled = {letter for _, _, letter in labels}
    last = (labels[-1][0], labels[-1][2])
    return _Analysis(end, right, set(judged), ranked & set(right), labelled, not _ENDED.search(text), last)


# A sentence ends at 。！？!?, at a full stop before a space (never after an option label: "A. …", "1. …";
# a number after a word is no label: "… is concept 2."),
# and at a colon that opens a list ("分析每個選項: A. …", "step by step: 1. …", "Options: - …").
_SENTENCE_END = re.compile(
    r"(?<=[。！？!?])|(?<=[^\sA-Da-d0-9]\.)(?= |$)|(?<=\d\d\.)(?= |$)|(?<=[A-Za-z] \d\.)(?= |$)|(?<=[:：])(?= ?(?:[A-D0-9][.:、)．]|[-*•]|選項|选项|(?i:option)))"
)
# A sentence about one option: it opens with its label ("A. …", "- Option B: …", "(C) …", "選項D：…").
_ABOUT_ONE = re.compile(
    r"^[\s\-*•>]*(?:(?:選項|选项|(?i:option)) ?[A-D]\b|[(\[【]? ?[A-D] ?[)\]】]? ?[.:、)．：|])"
)


def _ends(text: str) -> list[str]:
    """The first and the last sentence that are not about one option: where an answer named by its text
    stands ("這段描述指的是教育公平。理由…", "… so it is the chilling effect."). An analysis weighs option
    texts option by option, and a cut-off one stops in the middle of one. A last sentence that only opens
    what never came ("Therefore, my answer is:") gives way to the one before it. An output cut off in the
    middle of a sentence (at the token limit) has only its first: it stopped inside an analysis, and what
    comes last there is a step of it, never its conclusion. Between them, the last sentence after the
    analysis's last option that opens with a conclusion's marker ("So, the concept … is the Gini
    coefficient. … Do you have any other questions?") counts too."""
    parts = [p for p in _SENTENCE_END.split(text) if p.strip() and not _ABOUT_ONE.match(p)]
    if len(parts) > 1 and not _ENDED.search(text) and not text.rstrip().endswith(":"):
        return parts[:1]  # cut off mid-sentence ("- Fiscal decentralisation: This is a"): unfinished analysis
    if len(parts) > 2 and parts[-1].rstrip().endswith(":"):
        parts.pop()  # a lead-in with nothing after it ("Therefore, my answer is:"): cut off, says nothing
    if len(parts) <= 2:
        return parts
    labels = [m.end() for m in _LABEL.finditer(text)]
    after = _SENTENCE_END.split(text[labels[-1] :])[1:] if labels else parts[1:-1]
    concluding = [p for p in after if CONCLUDES.match(p) and not _ABOUT_ONE.match(p) and not BAD.search(p)]
    return [parts[0], *concluding[-1:], parts[-1]]


# A letter named in a sentence: uppercase, not part of a word or a range/list ("A-D", "A和C", "A or B").
_NAMED = re.compile(r"(?<![A-Za-z0-9])([A-D])(?![A-Za-z0-9])")
_LISTED = re.compile(r"[A-D] ?(?:" + LIST_SEP + r"|-) ?(?:選項|选项|(?i:option))? ?[A-D](?![A-Za-z])")
# "A weathered interrogation: …": the article, not a label (but "A is the one", "A best represents …").
_ARTICLE = re.compile(
    r"A (?!(?:is|was|has|seems|appears|fits|matches|describes|best|most|would|will|can|could|should|must|"
    r"does|aligns|reflects|captures|represents|correctly|accurately|clearly|it|and|or)\b)[a-z]"
)


def _final_start(text: str) -> int:
    """Where the output's last sentence starts, when the output ends that sentence and it is not about one
    option (a conclusion, not the last step of an analysis); the text's length otherwise. A decision found
    there comes after any per-option analysis, even where the sentence names its option as a verdict does
    ("…通过分析，选项 C 最准确地描述了「政教分離」。")."""
    if not _ENDED.search(text):
        return len(text)
    parts = [p for p in _SENTENCE_END.split(text) if p.strip()]
    if len(parts) < 2 or _ABOUT_ONE.match(parts[-1]):
        return len(text)
    return len(text) - len(parts[-1])


def _conclusion(text: str, last_only: bool = False) -> str | None:
    """Rule 8: a first or last sentence that names one option by its letter and judges it well (see the
    module docstring); sentences about one option ("A. …", "Option B: …") are analysis, not a decision,
    and an output cut off mid-sentence has no last sentence to read."""
    parts = [p for p in _SENTENCE_END.split(text) if p.strip()]
    ends = [parts[0]] if parts and not last_only else []
    if (len(parts) > 1 or last_only) and parts and _ENDED.search(text):
        ends.append(parts[-1])
    found = set()
    for i, sentence in enumerate(ends):
        if _LISTED.search(sentence) or BAD.search(sentence):
            continue
        letters = {m.group(1) for m in _NAMED.finditer(sentence) if not _ARTICLE.match(sentence, m.start())}
        # A sentence about one option is a step of a per-option analysis, unless the output opens with it
        # and labels no other option ("Option A describes accountability by …").
        if _ABOUT_ONE.match(sentence) and not (
            i == 0
            and not last_only
            and {next(g for g in m.groups() if g) for m in _LABEL.finditer(text)} <= letters
        ):
            continue
        if len(letters) == 1 and GOOD.search(sentence):
            found |= letters
    return found.pop() if len(found) == 1 else None


def _answer_line(text: str, options: dict[str, str] | None) -> str | None:
    """Rule 9: the output ends in one option's label and its own text after a lead-in that ends in a colon
    ("The best choice here: C. freedom of speech", "綜上所述，我的選擇是：C. 言論自由"), where the lead-in
    opens no walk through the options ("Let's analyze each option: A. …" cut off after its first), judges
    nothing wrong, and has not come before (a dialogue that gives each option in turn after the same
    "老師回答：")."""
    if not options:
        return None
    head, colon, tail = text.rpartition(":")
    m = re.fullmatch(r" ?[(\[]?([A-D])[)\].:、．]? ?(.+?)[ .。]*", tail) if colon else None
    if not m or norm(m.group(2)) != norm(as_cleaned(options.get(m.group(1), ""))):
        return None
    lead = _SENTENCE_END.split(head)[-1]
    if WALK.search(lead) or NEG.search(lead) or WORST.search(lead) or not lead.strip():
        return None
    if head.count(lead.strip()) > 1:
        return None  # "老師回答：A. … 老師回答：B. … 老師回答：D. …": answers enumerated, the last not chosen
    return m.group(1)


def _restates_other(text: str, options: dict[str, str] | None, letter: str) -> bool:
    """Another option is restated after its own label somewhere in the text (near enough: the other script
    or a word changed, "D. 透過再利用…长時間…" for "…長時間…")."""
    for i, m in enumerate(_LABEL.finditer(text)):
        if i == 32:
            return False  # bounded work: a walk through the options restates them within its first labels
        k = next(g for g in m.groups() if g)
        own = norm(as_cleaned((options or {}).get(k, "")))
        if k == letter or len(own) < 4:
            continue
        if _likeness(norm(text[m.end() : m.end() + 2 * len(own) + 8])[: len(own)], own) >= 0.8:
            return True
    return False


def _other_text(sentence: str, options: dict[str, str] | None, letter: str) -> bool:
    """The sentence after an option's label is, near enough, another option's text and not its own ("A.
    那些物种、基因與生態系統的豐富程度。" where B is "一個地區內物種、基因與生態系統的豐富程度")."""
    a = norm(sentence)
    if not options or not a or len(a) > 200:
        return False
    ratio = {k: _likeness(a, norm(as_cleaned(v))) for k, v in options.items()}
    return ratio.get(letter, 0) < 0.4 and any(r >= 0.6 for k, r in ratio.items() if k != letter)


def _restates(sentence: str, options: dict[str, str] | None, letter: str) -> bool:
    """The sentence is the option's own text (written in the other script or with a word changed, as
    models restate it: "B. 不得…而给予…" for "…而給予…"), which judges nothing."""
    own = (options or {}).get(letter)
    if not own:
        return False
    a, b = norm(sentence), norm(as_cleaned(own))
    if not a or len(a) > 2 * len(b) + 8:  # much longer than the option: more than its text (and bounded work)
        return False
    return _likeness(a, b) >= 0.8


LIKENESS_EXACT = 400  # characters of a and b together up to which difflib's ratio is used


def _likeness(a: str, b: str) -> float:
    """How alike two normalised texts are (1.0 the same): an option restated in the other script or with a
    word changed stays at 0.8 or more. difflib's ratio while the two are short (its cost grows with the
    product of their lengths: 17 s for a restated 22,500-character option); beyond that the Dice overlap
    of their character trigrams, linear, which a changed word lowers as little and different texts of one
    alphabet leave near 0."""
    if len(a) + len(b) <= LIKENESS_EXACT:
        return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
    ta, tb = Counter(_trigrams(a)), Counter(_trigrams(b))
    total = sum(ta.values()) + sum(tb.values())
    return 2 * sum((ta & tb).values()) / total if total else float(a == b)


def _trigrams(s: str):
    return (s[i : i + 3] for i in range(max(0, len(s) - 2)))


def _concluded_otherwise(text: str, decision: _Decision, options: dict[str, str]) -> bool:
    """After the decision, the output's last sentence opens with a conclusion's marker, names no letter and
    names the text of one other option: it concluded something else."""
    parts = [p for p in _SENTENCE_END.split(text[decision.end :]) if p.strip()]
    if len(parts) < 2 or not _ENDED.search(text) or not CONCLUDES.match(parts[-1]):
        return False
    last = parts[-1]
    if _NAMED.search(last):
        return False
    named = _match_option_text([last], options)
    return named is not None and named != decision.letter


def _lists_after(rest: str, options: dict[str, str], letter: str) -> bool:
    """The decision's letter opened a list of the options, not a choice: right after its own text, another
    option follows restated after its label with nothing more said of it, and two or more others are
    restated in all ("the best case for each option is: A. … B. … C. … D. …")."""

    def restated(k: str) -> re.Pattern:
        return _label_then_text(k, as_cleaned(options[k]))

    own = as_cleaned(options.get(letter, ""))
    head = rest.lstrip(" .:、)]】").lstrip(" \"'“”「」『』")
    if own and head[: len(own)].casefold() == own.casefold():
        head = head[len(own) :]
    head = head.lstrip(" .。;；\"'“”「」『』")
    others = [k for k, v in options.items() if k != letter and len(as_cleaned(v)) >= 2]
    first = next((m for k in others if (m := restated(k).match(head))), None)
    if first is None or not re.match(
        r" ?[.。;；]? ?(?:$|[(\[【]? ?[A-D] ?[)\]】]? ?[.:、)．|])", head[first.end() :]
    ):
        return False  # the next option is discussed ("A. economic growth is about money."), not listed
    return sum(bool(restated(k).search(rest)) for k in others) >= 2


def _restated(text: str, options: dict[str, str]) -> str:
    """`text` without the options it restates: each option's text right after its own label."""
    for k, v in options.items():
        v = as_cleaned(v)
        if len(v) >= 2:
            text = _label_then_text(k, v).sub(" ", text)
    return text


@functools.lru_cache(maxsize=256)
def _label_then_text(letter: str, option: str) -> re.Pattern:
    """An option's label ("C.", "(C)", "選項C", "Option C") and, after an opening quote at most, its text
    as `clean` leaves it."""
    label = rf"(?:(?:選項|选项|(?i:option)) ?{letter}|[(\[【] ?{letter} ?[)\]】]|(?<![A-Za-z]){letter} ?[.:、)．|])"
    return re.compile(label + r" ?[\"'“”「」『』]? ?" + re.escape(option), re.IGNORECASE)


def _match_option_text(sentences: list[str], options: dict[str, str]) -> str | None:
    """The one option whose text the sentences name; a sentence that names two or more is the options
    listed ("| 選項 | 判斷 | 網路釣魚 | √ | 端對端加密 | √ | …"), not an answer, and does not count."""
    texts = {k: norm(v) for k, v in options.items()}
    whole = norm(_restated(" ".join(sentences), options))
    exact = [k for k, v in texts.items() if v and v == whole]
    if len(exact) == 1:
        return exact[0]
    found: set[str] = set()
    for sentence in sentences:
        t = norm(_restated(sentence, options))
        hits = [k for k, v in texts.items() if len(v) >= 2 and v in t]
        # An option contained in another ("經濟" inside "經濟發展") must not count twice.
        hits = [k for k in hits if not any(k != o and texts[k] in texts[o] and o in hits for o in hits)]
        # Another option nearly named beside it ("States pledge to respond together …" before B's text): the
        # options listed. A near name alone reads nothing: a paraphrase may be of anything.
        near = [k for k, v in texts.items() if k not in hits and len(v) >= 8 and _near(t, v)]
        if len(hits) == 1 and not near:
            found.update(hits)
    return found.pop() if len(found) == 1 else None


def _near(text: str, option: str) -> bool:
    """`text` holds most of `option` in one piece (70% of it or more: "States pledge to respond together to
    aggression against any one of them" for "states pledging to respond together to aggression …")."""
    if len(text) > 4000:
        return False  # bounded work; such a sentence is an analysis, not an answer
    # A common piece of 70% of the option or more holds one of exactly that length: each of the option's
    # windows of that length looked for in the text (str's search, not difflib's longest match, whose cost
    # grows with the product of the lengths: 48 s for 14 sentences beside 10,000-character options)
    size = math.ceil(0.7 * len(option))
    if size > len(text):
        return False
    return any(option[i : i + size] in text for i in range(len(option) - size + 1))


class Reading:
    """One output and the facts the rules read in it, each computed when a rule first asks for it: the
    cheap rules that decide early never pay for the analysis the later ones need. `text` is the output after
    clean-up (whitespace runs as one space); a tag's content is read as a Reading of its own."""

    def __init__(self, raw: str | None, options: dict[str, str] | None = None, text: str | None = None):
        self.raw = raw
        self.options = options
        if text is not None:
            self.__dict__["text"] = text

    @cached_property
    def kept_lines(self) -> str | None:
        """The clean-up with line breaks kept; None when the output stopped inside a reasoning block."""
        return lines(self.raw) if self.raw else ""

    @cached_property
    def text(self) -> str:
        return collapse(self.kept_lines or "")

    @cached_property
    def tag(self) -> str | None:
        """The content of the last complete <output>/<answer> element, or of one the output ends in unclosed
        (the generation stopped inside it, at its end token or a cut stop string); None without one."""
        inner = _last_tag(self.text)
        if inner is None:
            tail = _OPEN_TAIL.search(self.text)
            inner = tail.group(1) if tail else None
        return None if inner is None else inner.strip()

    @cached_property
    def last_line(self) -> str | None:
        """The letter alone on the last line, where the line before is no option's label."""
        return _last_line(self.kept_lines) if self.kept_lines else None

    @cached_property
    def only_letter(self) -> str | None:
        m = _ONLY_LETTER.match(self.text)
        return m.group(1).upper() if m else None

    @cached_property
    def phrases(self) -> tuple[_Decision | None, set[str]]:
        """The decision phrase that ends last (a phrase denied where it stands does not count: "不應該選B",
        "Response: A is wrong"), and every letter some phrase decides."""
        text, decision, decided = self.text, None, set()
        for pattern, method in DECISIONS:
            for m in pattern.finditer(text):
                if NEGATED.search(text[max(0, m.start() - 12) : m.start()]) or DENIED.match(text, m.end()):
                    continue
                decided.add(m.group(1).upper())
                if decision is None or m.end() > decision.end:
                    decision = _Decision(m.end(), m.group(1).upper(), method, m.start())
        return decision, decided

    @cached_property
    def verdicts(self) -> _Analysis | None:
        return _verdicts(self.text, self.options)

    @cached_property
    def final(self) -> int:
        return _final_start(self.text)

    @cached_property
    def decision(self) -> _Decision | None:
        """The decision phrase that ends last; where it comes before a per-option analysis ends (or there is
        none), a last sentence that names one option well (`_conclusion`) after the analysis, whose method is
        `verdicts-conclusion`."""
        decision = self.phrases[0]
        verdicts = self.verdicts
        if verdicts is not None and (decision is None or decision.end <= verdicts.end):
            letter = _conclusion(self.text, last_only=True)
            if letter:
                decision = _Decision(len(self.text), letter, "verdicts-conclusion", self.final)
        return decision

    @cached_property
    def concluded(self) -> bool:
        """A decision comes after the per-option analysis: in the last sentence, or past the last verdict
        and outside the last option's own sentence."""
        decision, verdicts = self.decision, self.verdicts
        return (
            decision is not None
            and verdicts is not None
            and (
                decision.end > self.final
                or (decision.end > verdicts.end and not _own_verdict(self.text, decision, verdicts))
            )
        )

    @cached_property
    def open_verdicts(self) -> _Analysis | None:
        """The per-option verdicts, where no decision after the analysis overrides them."""
        return None if self.concluded else self.verdicts

    @cached_property
    def chances(self) -> dict[str, float] | None:
        return _chances(self.text)

    @cached_property
    def first_sentence(self) -> str:
        return _SENTENCE_END.split(self.text, maxsplit=1)[0]

    @cached_property
    def leading(self) -> re.Match | None:
        """The option label the output opens with ("B.", "(C)", "D 因為…"), unless it is the article ("A
        neutral judge would…") or its first sentence judges that option wrong or worst ("B. 錯誤…")."""
        text, options = self.text, self.options
        m = _LEADING.match(text)
        if (
            m
            and m.group(1) == "A"
            and re.match(r" [a-z]", text[m.end(1) :])
            and not text.lstrip().startswith(("(", "["))
        ):
            return None
        first = self.first_sentence
        if (
            m
            and (NEG.search(first) or WORST.search(first))
            and not _restates(first[m.end() :], options, m.group(1))
        ):
            return None
        return m

    @cached_property
    def labels(self) -> set[str]:
        """Every letter that opens a clause as an option's label."""
        return {next(g for g in x.groups() if g) for x in _LABEL.finditer(self.text)}

    def hedged(self, letter: str) -> bool:
        """A second letter named as just as possible as `letter`."""
        hedge = HEDGE.search(self.text)
        return bool(hedge) and next(g for g in hedge.groups() if g).upper() != letter

    def lists_after(self, decision: _Decision) -> bool:
        return bool(self.options) and _lists_after(self.text[decision.end :], self.options, decision.letter)

    def concluded_otherwise(self, decision: _Decision) -> bool:
        return bool(self.options) and _concluded_otherwise(self.text, decision, self.options)

    def other_text_after_label(self, m: re.Match) -> bool:
        return _other_text(self.first_sentence[m.end() :], self.options, m.group(1))

    def restates_other(self, letter: str) -> bool:
        return _restates_other(self.text, self.options, letter)

    def refused(self) -> bool:
        return bool(REFUSAL.search(self.text))

    def conclusion(self) -> str | None:
        return _conclusion(self.text)

    def answer_line(self) -> str | None:
        return _answer_line(self.text, self.options)

    def option_text(self) -> str | None:
        return _match_option_text(_ends(self.text), self.options) if self.options else None
