"""How every stage reads an answer letter and a refusal: one definition each.

- `letter_of`: an answer cell, an LLM's JSON `answer` or a chain's `<output>` in any of the ways people
  write one letter ("A", " a ", "A.", "(A)", "（Ａ）", "Ａ") -> "A"..."D", else None. Ingest, generate,
  translate and the chain parser read gold and produced letters through it.
- `stated_letter`: the letter a chat transcript's reply states as its answer, a training label: one
  letter, perhaps after an answer label ("答案：C", "Answer: C"), or the content of a chain's last
  `<output>`. Ingest reads chat files through it; no prose is interpreted (that is answer extraction's
  job, for model outputs, in evaluation/extract/).
- `FULLWIDTH`: full-width letters and brackets as ASCII, for text read by patterns (answer extraction).
- `LABEL`: an option label in front of an option's text ("A.", "（Ｂ）", "C、", "D:"): ingest takes it off,
  the validate gate flags a row that still has one.
- `REFUSAL`: the phrases of a model declining to answer, in Chinese (both scripts) and English. Answer
  extraction reads an output that has one as no answer; the LLM client marks a teacher response that has
  one as refused (kept and counted, never used as data).

Free of other mcqflow imports, so any module can use it without widening a stage's dependencies."""

from __future__ import annotations

import re

FULLWIDTH = str.maketrans("ＡＢＣＤａｂｃｄ（）：［］．，", "ABCDabcd():[].,")
_LETTER = re.compile(r"^[(\[]?\s*([A-Da-d])\s*[)\].、:]?$")
LABEL = r"[(（\[]?\s*[A-DＡ-Ｄ]\s*[)）\].．、:：]"
REFUSAL = (
    r"無法回答|无法回答|不能回答|無法作答|无法作答|拒絕回答|拒绝回答|無法提供|无法提供|無法協助|无法协助"
    r"|不便回答|不便評論|不便评论|不予置評|不予置评|抱歉|對不起|对不起|作為一個(?:AI|人工智能)|作为一个(?:AI|人工智能)"
    r"|(?i:\bI\s+(?:cannot|can't|can not|won't|will not|am unable to|am not able to)\s+"
    r"(?:answer|help|provide|assist|choose|select|pick|take\s+sides))"
    r"|(?i:\bI'm\s+sorry\b)|(?i:\bAs\s+an\s+AI\b)|(?i:\bI\s+(?:do\s+not|don't)\s+(?:have|hold)\s+personal\s+(?:opinions|views))"
)


def letter_of(raw: object) -> str | None:
    """ "A".."D" when `raw` is one answer letter in any width, case or wrapping; None otherwise."""
    if not isinstance(raw, str):
        return None
    m = _LETTER.match(raw.translate(FULLWIDTH).replace("\u3000", " ").strip())
    return m.group(1).upper() if m else None


# An answer label before the letter of a reply: "答案：", "最終答案是", "Answer:", "The answer is".
_ANSWER_LABEL = re.compile(
    r"^(?:(?:最終|最终|正確|正确)?答案\s*(?:是|為|为)?|(?i:(?:the\s+)?(?:final\s+)?answer(?:\s+is)?))\s*[:：]?"
)


def stated_letter(reply: str) -> str | None:
    """The letter a chat reply states: the content of its last complete <output> (or <answer>) element
    when it has one, else the reply after its last `</think>`; one letter as `letter_of` reads it, perhaps
    after an answer label. None for anything else ("我認為應該是環境保護" states no letter)."""
    text = reply
    for tag in ("output", "answer"):
        start = text.rfind(f"<{tag}>")
        end = text.find(f"</{tag}>", start) if start >= 0 else -1
        if end >= 0:
            text = text[start + len(tag) + 2 : end]
            break
    else:
        text = text[text.rfind("</think>") + len("</think>") :] if "</think>" in text else text
    text = text.translate(FULLWIDTH).replace("\u3000", " ").strip().rstrip("。.")
    return letter_of(_ANSWER_LABEL.sub("", text, count=1))
