"""Clean-up before any rule reads, in this order (none of it decides anything):

  chat-tokens   template and special tokens (`<|im_end|>`, `<|start_header_id|>assistant<|end_header_id|>`,
                `<｜end▁of▁sentence｜>`, `[/INST]`, `</s>`) are removed;
  think         a reasoning block (`<think>…</think>`, DeepSeek-R1 and Qwen3 style) is dropped: only the text
                after the last `</think>` counts; an unclosed block is a run cut off while thinking;
  markdown      emphasis (`**`, `__`, backticks) and heading and quote marks are removed;
  width         full-width letters, brackets and colons become ASCII; whitespace runs become one space.

Every rule then reads text whose whitespace runs are one space, which is what keeps matching linear
(`phrases.bounded`)."""

from __future__ import annotations

import re

from mcqflow.core.text import FULLWIDTH

_CHAT_TOKENS = re.compile(
    r"<\|(?:im_start|start_header_id)\|>(?:assistant|user|system)?(?:<\|end_header_id\|>)?"
    r"|<\|[A-Za-z_]{1,40}\|>|<｜[^｜<>]{1,40}｜>|</?s>|\[/?INST\]"
)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)
_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_MARKDOWN = re.compile(r"\*\*|__|`+|(?m:^[ \t]{0,3}#{1,6}[ \t]+)|(?m:^[ \t]{0,3}>[ \t]?)")
WS = re.compile(r"\s+")


def lines(text: str) -> str | None:
    """The clean-up with the line breaks kept; None when the output stopped inside a reasoning block."""
    text = _CHAT_TOKENS.sub(" ", text)
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        text = text[closes[-1].end() :]
    elif _THINK_OPEN.search(text):
        return None
    return _MARKDOWN.sub("", text).translate(FULLWIDTH)


def collapse(text: str) -> str:
    """Whitespace runs as one space, ends stripped."""
    return WS.sub(" ", text).strip()


def clean(text: str) -> str | None:
    """All four clean-up steps; None when the output stopped inside a reasoning block."""
    kept = lines(text)
    return None if kept is None else collapse(kept)


def as_cleaned(option: str) -> str:
    """An option's text as `clean` leaves the output it is looked for in: ASCII width, single spaces."""
    return collapse(option.translate(FULLWIDTH))


def norm(s: str) -> str:
    """A text for comparison: no spaces or punctuation, case folded."""
    return re.sub(r"[\s。．.!！?？,，、;；:：\"'「」『』\-‐–—]+", "", s).casefold()
