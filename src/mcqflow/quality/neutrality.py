"""A lexicon-based neutrality score for Traditional Chinese, Simplified Chinese and English text.

The seed scored neutrality by counting words; this keeps the idea and makes it careful:

- two lexicons: *absolutist or loaded* terms ("絕對", "一無是處", "洗腦", "undeniably", "evil") and
  *hedging or multi-perspective* terms ("可能", "一方面", "不同立場", "evidence", "on the other hand");
  each Chinese term is listed in Traditional and Simplified forms;
- negation-aware: an absolutist term right after a negation ("並非絕對", "not always") is not counted
  as absolutist, it is a hedge;
- normalised by length: counts become densities per 100 units (a CJK character or a Latin word), so a long
  chain is not punished for being long;
- score = (1 + H) / (1 + H + 2·A), with A and H the two densities: 1.0 for text with no loaded terms,
  falling as loaded terms get denser, raised by hedging. Always in (0, 1].

It is a screen, not a judge: it flags one-sided wording cheaply and reproducibly. An LLM judge can be
layered on top through the generation backends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ABSOLUTIST = [
    # Traditional / Simplified pairs
    "絕對",
    "绝对",
    "毫無疑問",
    "毫无疑问",
    "毫無",
    "毫无",
    "不容置疑",
    "一律",
    "完全錯誤",
    "完全错误",
    "全面否定",
    "必然",
    "永遠",
    "永远",
    "所有人都",
    "唯一正確",
    "唯一正确",
    "徹底",
    "彻底",
    "一無是處",
    "一无是处",
    "罪大惡極",
    "罪大恶极",
    "邪惡",
    "邪恶",
    "無恥",
    "无耻",
    "叛徒",
    "暴政",
    "洗腦",
    "洗脑",
    "荒謬",
    "荒谬",
    "可恥",
    "可耻",
    "顯然",
    "显然",
    # English
    "absolutely",
    "undeniably",
    "unquestionably",
    "without doubt",
    "everyone knows",
    "always",
    "never",
    "completely wrong",
    "totally",
    "the only correct",
    "evil",
    "traitor",
    "traitors",
    "brainwashed",
    "absurd",
    "worthless",
    "disgraceful",
    "obviously",
]
HEDGING = [
    "可能",
    "或許",
    "或许",
    "也許",
    "也许",
    "一方面",
    "另一方面",
    "不同立場",
    "不同立场",
    "多元",
    "觀點",
    "观点",
    "兼顧",
    "兼顾",
    "權衡",
    "权衡",
    "證據",
    "证据",
    "取捨",
    "取舍",
    "爭議",
    "争议",
    "視情況",
    "视情况",
    "相對",
    "相对",
    "平衡",
    "客觀",
    "客观",
    "中立",
    "不確定",
    "不确定",
    "may",
    "might",
    "perhaps",
    "on the other hand",
    "perspective",
    "perspectives",
    "viewpoint",
    "viewpoints",
    "evidence",
    "trade-off",
    "trade-offs",
    "balance",
    "depends",
    "arguably",
    "some argue",
    "critics argue",
    "uncertain",
    "neutral",
]
NEGATIONS_ZH = ("並非", "并非", "不是", "未必", "沒有", "没有", "不", "非", "無須", "无须")
NEGATIONS_EN = ("not", "never", "no", "isn't", "aren't", "wasn't", "hardly")


def _alternation(terms: list[str]) -> re.Pattern:
    parts = []
    for t in sorted(set(terms), key=len, reverse=True):  # longest first: "毫無疑問" before "毫無"
        esc = re.escape(t)
        parts.append(rf"\b{esc}\b" if t.isascii() else esc)
    return re.compile("|".join(parts), re.IGNORECASE)


_ABS = _alternation(ABSOLUTIST)
_HEDGE = _alternation(HEDGING)
_UNITS = re.compile(r"[\u4e00-\u9fff]|[A-Za-z]+(?:'[a-z]+)?")


@dataclass(frozen=True)
class Neutrality:
    score: float
    absolutist: tuple[str, ...]
    hedging: tuple[str, ...]
    units: int


def _negated(text: str, start: int) -> bool:
    before = text[max(0, start - 3) : start]
    if any(before.endswith(n) for n in NEGATIONS_ZH):
        return True
    words = re.findall(r"[A-Za-z']+", text[max(0, start - 24) : start].lower())
    return bool(words) and words[-1] in NEGATIONS_EN


def analyse(text: str) -> Neutrality:
    units = max(1, len(_UNITS.findall(text)))
    absolutist, hedging = [], []
    for m in _ABS.finditer(text):
        (hedging if _negated(text, m.start()) else absolutist).append(m.group(0))
    hedging += [m.group(0) for m in _HEDGE.finditer(text)]
    a = 100 * len(absolutist) / units
    h = 100 * len(hedging) / units
    return Neutrality(round((1 + h) / (1 + h + 2 * a), 4), tuple(absolutist), tuple(hedging), units)


def neutrality_score(text: str) -> float:
    return analyse(text).score
