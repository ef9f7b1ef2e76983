"""Answer extraction: turn a model's free text into one letter A–D, or None.

Used by predict (generate mode) and by GRPO rewards. Order of evidence:
1. the last <output>/<answer> tag (its content alone decides; lowercase counts inside tags);
2. explicit decision phrases, Chinese (Traditional and Simplified) and English, and \\boxed{};
   when several appear, the one that ends last wins ("排除A和B……最終選擇D" is D);
3. a leading letter ("B.", "(C)", "C)", "A");
4. a refusal is None;
5. with options given, the one option whose text appears in the output.
Anything else is None: never a default letter.

Linear time on any input: whitespace runs are collapsed to one space before matching, so every
whitespace quantifier in the patterns is bounded (` ?`) and no two unbounded quantifiers sit side by
side; tags are paired in one left-to-right pass. (`答案` and 150 spaces used to never finish.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FULLWIDTH = str.maketrans("ＡＢＣＤａｂｃｄ（）：", "ABCDabcd():")

# A letter that stands alone: not part of a word, not the first of a list ("A和C", "A, C", "A/B").
_ALONE = r"(?![A-Za-z0-9])(?!\s*(?:和|與|与|及|或|、|,|，|/|&|and\b|or\b)\s*[A-Da-d](?![A-Za-z]))"
_L = r"[(\[【]?\s*([A-Da-d])\s*[)\]】]?" + _ALONE  # Chinese contexts: no article ambiguity
_U = r"\(?([A-D])\)?" + _ALONE  # English contexts: uppercase only ("the answer is a trade-off")

_ZH = [
    r"(?:最終|最终|正確|正确|參考|参考|標準|标准)?答案\s*(?:應該|应该|應|应|就)?\s*(?:是|為|为|選|选|:)?\s*:?\s*"
    r"(?:選項|选项)?\s*" + _L,
    r"(?<![A-Za-z\u4e00-\u9fff])答\s*:\s*" + _L,
    r"(?:最終|最终|故|因此|所以|應|应|應該|应该|我)?\s*(?:選|选)(?:擇|择)?\s*:?\s*(?:選項|选项)?\s*" + _L,
    r"(?:而是|應為|应为|應是|应是)\s*(?:選項|选项)?\s*" + _L,
    r"(?:選項|选项)\s*" + _L + r"\s*(?:是|為|为)?\s*(?:最)?(?:正確|正确|合適|合适|恰當|恰当|佳|準確|准确)",
]
_EN = [
    r"(?i:\banswer)\s*(?i:is|:)\s*:?\s*(?i:option\s*)?" + _U,
    r"(?i:\bthe\s+(?:correct|right|best|final)\s+(?:answer|option|choice)\s+(?:is|would\s+be))\s*:?\s*"
    r"(?i:option\s*)?" + _U,
    r"(?i:\bfinal\s+answer)\s*:?\s*(?i:is\s*)?" + _U,
    r"(?i:\b(?:option|choice))\s+" + _U + r"\s+(?i:is\s+(?:the\s+)?(?:correct|right|best))",
    r"(?i:\bI\s+(?:would\s+)?(?:choose|pick|select))\s+(?i:option\s+)?" + _U,
]
_BOXED = r"\\boxed\{\s*(?:\\text\{\s*)?([A-Da-d])\s*\}?\s*\}"

_WS = re.compile(r"\s+")


def _bounded(pattern: str) -> re.Pattern:
    r"""Compile for text whose whitespace runs are one space: `\s*` becomes ` ?`, `\s+` becomes ` `."""
    return re.compile(pattern.replace(r"\s*", " ?").replace(r"\s+", " "))


_PATTERNS = (
    [(_bounded(p), "zh-phrase") for p in _ZH]
    + [(_bounded(p), "en-phrase") for p in _EN]
    + [(_bounded(_BOXED), "boxed")]
)
_TAG_MARK = re.compile(r"<(/?)(output|answer) ?>", re.IGNORECASE)
_LEADING = _bounded(r"^\s*[(\[【]?\s*([A-D])\s*(?:[)\]】.．、:]|$|\s)")
_ONLY_LETTER = _bounded(r"^\s*[(\[【]?\s*([A-Da-d])\s*[)\]】.．、]?\s*$")
_REFUSAL = _bounded(
    r"無法回答|无法回答|不能回答|無法作答|无法作答|拒絕回答|拒绝回答|無法提供|无法提供|抱歉|對不起|对不起"
    r"|(?i:\bI\s+(?:cannot|can't|can not|won't|am unable to)\s+(?:answer|help|provide|assist))"
    r"|(?i:\bI'm\s+sorry\b)"
)


@dataclass(frozen=True)
class Extraction:
    answer: str | None
    method: str


def extract_answer(text: str | None, options: dict[str, str] | None = None) -> Extraction:
    if text is None or not text.strip():
        return Extraction(None, "empty")
    text = _WS.sub(" ", text.translate(_FULLWIDTH))
    inner = _last_tag(text)
    if inner is not None:
        found = _from_text(inner.strip(), options)
        return Extraction(found.answer, "tag" if found.answer else "tag-unreadable")
    return _from_text(text, options)


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


def _from_text(text: str, options: dict[str, str] | None) -> Extraction:
    m = _ONLY_LETTER.match(text)  # the whole output is one letter: no article ambiguity, any case
    if m:
        return Extraction(m.group(1).upper(), "letter")
    best = None
    for pattern, method in _PATTERNS:
        for m in pattern.finditer(text):
            if best is None or m.end() > best[0]:
                best = (m.end(), m.group(1).upper(), method)
    if best:
        return Extraction(best[1], best[2])
    m = _LEADING.match(text)
    if m:
        return Extraction(m.group(1), "leading-letter")
    if _REFUSAL.search(text):
        return Extraction(None, "refusal")
    if options:
        letter = _match_option_text(text, options)
        if letter:
            return Extraction(letter, "option-text")
    return Extraction(None, "no-answer")


def _norm(s: str) -> str:
    return re.sub(r"[\s。．.!！?？,，、;；:：\"'「」『』]+", "", s).casefold()


def _match_option_text(text: str, options: dict[str, str]) -> str | None:
    t = _norm(text)
    norm = {k: _norm(v) for k, v in options.items()}
    exact = [k for k, v in norm.items() if v and v == t]
    if len(exact) == 1:
        return exact[0]
    hits = [k for k, v in norm.items() if len(v) >= 2 and v in t]
    # An option contained in another ("經濟" inside "經濟發展") must not count twice.
    hits = [k for k in hits if not any(k != o and norm[k] in norm[o] and o in hits for o in hits)]
    return hits[0] if len(hits) == 1 else None
