"""The phrase tables the rules read, as data: decisions in Chinese (`ZH`, traditional and simplified) and
English (`EN`), each a `Phrase` with an example it reads, and the word tables of verdicts, hedges,
negations and conclusions.

Every pattern is compiled by `bounded` for text whose whitespace runs are one space (clean-up does that),
so that every whitespace quantifier is bounded (` ?`): no pattern has two unbounded quantifiers side by
side, and matching stays linear in the output's length."""

from __future__ import annotations

import re
from typing import NamedTuple

from mcqflow.core.text import REFUSAL as _REFUSAL_TEXT


class Phrase(NamedTuple):
    example: str  # an output the pattern reads
    reads: str  # the letter it reads there
    pattern: str  # group 1 is the letter


def bounded(pattern: str) -> re.Pattern:
    r"""Compile for text whose whitespace runs are one space: `\s*` becomes ` ?`, `\s+` becomes ` `."""
    return re.compile(pattern.replace(r"\s*", " ?").replace(r"\s+", " "))


LIST_SEP = r"(?:和|與|与|及|或|或者|、|,|，|/|&|and\b|or\b|to\b|至|到)"
# A letter that stands alone: not part of a word, not the first of a list ("A和C", "A, C", "A/B").
_ALONE = r"(?![A-Za-z0-9])(?!\s*" + LIST_SEP + r"\s*[A-Da-d](?![A-Za-z]))"
OPEN = r"[(\[【「『〔<]?"
CLOSE = r"[)\]】」』〕>]?"
_L = OPEN + r"\s*([A-Da-d])\s*" + CLOSE + _ALONE  # Chinese contexts: no article ambiguity
_U = r"\(?([A-D])\)?" + _ALONE  # English contexts: uppercase only ("the answer is a trade-off")
_ZH_OPT = r"(?:選項|选项|第)?\s*"
_ZH_ITEM = r"\s*(?:項|项|選項|选项)?"
_GOOD_ZH = r"(?:正確|正确|合適|合适|恰當|恰当|佳|準確|准确|合理|符合題意|符合题意|符合題目要求|符合题目要求|妥當|妥当|最符合)"

# A letter that ends its clause ("…是C。", "…選B，"), perhaps after a closing particle ("應該是C吧。").
_CLAUSE_END = r"\s*(?=[。！!.，,；;]|$)"
_PARTICLE_END = r"\s*(?:吧|啦|了)?" + _CLAUSE_END

# Decisions in Chinese. Where several match, the one that ends last in the output decides
# (analysis.Reading.phrases), whichever pattern read it.
ZH = (
    # 答案是 C / 最終答案：B / 正確答案應為（D）/ 答案選A
    Phrase(
        "最終答案：B",
        "B",
        r"(?:最終|最终|正確|正确|參考|参考|標準|标准|我的|本題|本题)?答案\s*"
        r"(?:應該|应该|應|应|就|可能|顯然|显然|明顯|明显|肯定|一定|當然|当然|無疑|无疑|或許|或许|也許|也许|大概)?\s*"
        r"(?:是|為|为|選項|选项|選|选|:|-)?\s*:?\s*" + _ZH_OPT + _L,
    ),
    Phrase("答：C", "C", r"(?<![A-Za-z\u4e00-\u9fff])答\s*:\s*" + _ZH_OPT + _L),
    # 答案非常明顯，是B。
    Phrase(
        "答案非常明顯，是B。",
        "B",
        r"答案[^。！？!?A-Da-d]{0,12}?[,，]\s*(?:是|為|为|就是)\s*" + _ZH_OPT + _L + r"\s*(?=[。！!.]|$)",
    ),
    # 答曰：C / 擇C。/ C為是。/ C是也。 (Classical Chinese)
    Phrase("答曰：C", "C", r"答曰\s*:?\s*" + _ZH_OPT + _L),
    Phrase(
        "擇C。",
        "C",
        r"(?<![選选])(?:擇|择|取)\s*" + _ZH_OPT + _L + _ZH_ITEM + r"\s*(?:也|矣|乎)?" + _CLAUSE_END,
    ),
    Phrase("C為是。", "C", _ZH_OPT + _L + _ZH_ITEM + r"\s*(?:為是|为是|是也|為正|为正)" + _CLAUSE_END),
    # 【答案】D / 正解：C / 解答：B
    Phrase("【答案】D", "D", r"[【\[]\s*(?:答案|正解)\s*[】\]]\s*:?\s*" + _ZH_OPT + _L),
    Phrase("正解：C", "C", r"(?:正解|解答)\s*(?::|是|為|为)\s*" + _ZH_OPT + _L),
    # 故選C / 因此选择 D / 應選 A / 我選擇B項 / 選B
    Phrase(
        "故選C",
        "C",
        r"(?:最終|最终|故|因此|所以|應|应|應該|应该|我|本題|本题)?\s*(?:選|选)(?:擇|择)?\s*(?:的)?\s*(?:是)?\s*:?\s*"
        + _ZH_OPT
        + _L,
    ),
    # 而是C / 應為B
    Phrase("答案不是A，而是C", "C", r"(?:而是|應為|应为|應是|应是|就是)\s*" + _ZH_OPT + _L),
    # 我覺得是C。/ 我认为是B / 我想應該選D
    Phrase(
        "我覺得是C。",
        "C",
        r"我\s*(?:覺得|觉得|認為|认为|想|相信)\s*(?:應該|应该|應|应)?\s*(?:是|選|选)\s*"
        + _ZH_OPT
        + _L
        + _ZH_ITEM
        + _PARTICLE_END,
    ),
    # 即選項C。/ 亦即B
    Phrase("即選項C。", "C", r"(?:即|亦即)\s*" + _ZH_OPT + _L + _ZH_ITEM + _CLAUSE_END),
    # 只有C是對的 / C對。/ D才是對的
    Phrase(
        "只有C是對的。", "C", _ZH_OPT + _L + _ZH_ITEM + r"\s*(?:才|是|才是)?\s*(?:對|对)(?:的)?" + _CLAUSE_END
    ),
    # 我比較傾向B / 傾向於選C
    Phrase("我比較傾向B", "B", r"(?:傾向|倾向)(?:於|于)?\s*(?:選|选)?(?:擇|择)?\s*" + _ZH_OPT + _L),
    # 剩下C。/ 排除後只剩下D
    Phrase(
        "排除後只剩下D",
        "D",
        r"(?:剩下|剩餘|剩余|只剩|僅剩|仅剩)\s*(?:的)?\s*(?:是|就是|選項|选项)?\s*" + _ZH_OPT + _L,
    ),
    # 可能是C。/ 也許是B吧 / 大概是D (one letter, hedged: still the one it gives; "也可能是…" is a hedge)
    Phrase(
        "也許是B吧。",
        "B",
        r"(?<![也又])(?:可能|也許|也许|或許|或许|大概)\s*(?:是|選|选)\s*"
        + _ZH_OPT
        + _L
        + _ZH_ITEM
        + _PARTICLE_END,
    ),
    # 我猜是C。
    Phrase("我猜是C。", "C", r"猜\s*(?:是|選|选)\s*" + _ZH_OPT + _L + _CLAUSE_END),
    # 所以應該是B。/ 我認為應選C / 必然是D (a letter that ends its clause after a decision's verb)
    Phrase(
        "所以應該是B。",
        "B",
        r"(?<!不)(?:應該|应该|應當|应当|必然|一定|只能|當然|当然)\s*(?:是|選|选|為|为)\s*"
        + _ZH_OPT
        + _L
        + _ZH_ITEM
        + _PARTICLE_END,
    ),
    # 選項C正確 / 选项B是最恰当的 / C項最符合題意 / B最為恰當 / 选项C“寒蟬效應”确实符合题意
    Phrase(
        "選項C正確",
        "C",
        _ZH_OPT
        + _L
        + _ZH_ITEM
        + r"\s*(?:[“\"「『][^”\"」』]{1,40}[”\"」』])?\s*(?:的)?(?:表述|說法|说法|描述|觀點|观点)?\s*"
        r"(?:是|為|为|最為|最为|更為|更为|更|才是|確實|确实)?\s*(?:最|唯一)?\s*(?:"
        + _GOOD_ZH
        + r"|(?<=[更最])好)",
    ),
    # C為正確答案 / 應以C為答案 / B是最終答案
    Phrase(
        "C為正確答案",
        "C",
        r"(?:以)?\s*"
        + _ZH_OPT
        + _L
        + _ZH_ITEM
        + r"\s*(?:為|为|是|作為|作为)\s*(?:最終|最终|正確|正确|最佳|本題|本题)?(?:的)?\s*答案",
    ),
    # 最合適的是B / 最符合題意的選項是C / 正確的是A / 最佳選擇是D / 最恰當的答案為B
    Phrase(
        "最合適的是B",
        "B",
        r"(?:(?:最|較|较|比較|比较|更)(?:為|为)?"
        + _GOOD_ZH
        + r"|正確|正确|最佳|最好|唯一(?:正確|正确|合理|恰當|恰当|合適|合适)?)(?:的)?\s*(?:選項|选项|選擇|选择|答案|一項|一项|描述|說法|说法|是)?\s*"
        r"(?:(?:是|為|为)\s*:?|:)\s*" + _ZH_OPT + _L,
    ),
    # 所以是B / 因此，B。
    Phrase(
        "因此，B。",
        "B",
        r"(?:所以|因此|故|綜上|综上)\s*(?:,|，)?\s*(?:是|為|为)?\s*" + _ZH_OPT + _L + r"\s*(?:[。.!！]|$)",
    ),
    # 綜上所述，D選項符合「國家主權」的定義 / 因此B項正確
    Phrase(
        "綜上所述，D選項符合「國家主權」的定義",
        "D",
        r"(?:綜上所述|综上所述|總之|总之|因此|所以)\s*(?:,|，)?\s*"
        + _ZH_OPT
        + _L
        + _ZH_ITEM
        + r"\s*(?:最)?(?:符合|正確|正确)",
    ),
    # 結論：B
    Phrase("結論：B", "B", r"(?:結論|结论)\s*(?::|是|為|为)\s*" + _ZH_OPT + _L),
    # 這段描述指的是概念B / 說的是選項C
    Phrase("這段描述指的是概念B", "B", r"(?:指的是|指的就是|說的是|说的是)\s*(?:概念|選項|选项|第)?\s*" + _L),
    # 最準確地描述生物多樣性的項是：B / 符合題意的選項為C / 最符合客觀態度的是B選項 (what the item is,
    # said of the question; never after 不: "不符合題意的是A" names the wrong one)
    Phrase(
        "符合題意的選項為C",
        "C",
        r"(?<!不)(?:描述|說明|说明|符合|對應|对应)[^。！？!?]{0,40}?的(?:選項|选项|項|项|一項|一项|概念|答案)?\s*(?:是|為|为)\s*:?\s*"
        + _ZH_OPT
        + _L,
    ),
)
# Decisions in English: a letter in upper case only ("the answer is a trade-off").
EN = (
    # the answer is B / Answer: C / ANSWER - D / the answer would be (B) / My answer: A
    Phrase(
        "the answer is B",
        "B",
        r"(?i:\banswers?)\s*(?i:(?:is|would\s+be|should\s+be|will\s+be|must\s+be)"
        r"(?:\s+(?:actually|clearly|indeed|definitely|likely|probably|most\s+likely))?\s*:?"
        r"|(?:appears|seems)\s+to\s+be|:|-|—|–|=)\s*[\"']?\s*"
        r"(?i:option\s*|choice\s*)?" + _U,
    ),
    # the answer is option (c) / Answer: c)  (a lowercase letter only with its bracket)
    Phrase("the answer is option (c)", "C", r"(?i:\banswer)\s*(?i:is|:)?\s*(?i:option\s*)?\(?([a-d])\)"),
    # Answer B.  / Answer B: <its text>  (a heading with the letter after it)
    Phrase("Answer B.", "B", r"(?i:\banswer)\s+\(?([A-D])\)?\s*(?:$|[.,;:)])"),
    # the correct/best/most appropriate answer/option/choice is D
    Phrase(
        "The most appropriate choice is D",
        "D",
        r"(?i:\b(?:correct|right|best|final|most\s+(?:appropriate|accurate|suitable|reasonable|neutral|balanced))\s+"
        r"(?:answer|option|choice|response)\s*(?:here\s+)?(?:is|would\s+be|should\s+be|:))\s*:?\s*(?i:option\s*)?"
        + _U,
    ),
    Phrase("Final answer: B", "B", r"(?i:\bfinal\s+answer)\s*:?\s*(?i:is\s*)?" + _U),
    # Option C is correct / B is the best option / (D) is the most appropriate choice
    Phrase(
        "Option C is correct",
        "C",
        r"(?i:\b(?:option|choice)\s+)?"
        + r"(?<![A-Za-z])"
        + _U
        + r"\s+(?i:is\s+(?:the\s+)?(?:only\s+)?(?:correct|right|best|most\s+(?:appropriate|accurate|objective|"
        r"neutral|suitable|reasonable|balanced|fitting)|(?<=only\s)(?:reasonable|sensible|valid|plausible|fitting|"
        r"appropriate|accurate|objective))(?:\s+(?:answer|option|choice))?)"
        r"(?![A-Za-z])",
    ),
    # I choose B / I'd go with option C / I will select D / a neutral judge would pick: C
    Phrase(
        "I'd go with option C",
        "C",
        r"(?i:(?:\bI|\bwould|\bwill|'d|'ll|'m|\bam)(?:\s+(?:likely|probably|definitely))?\s+"
        r"(?:choose|pick|select|go\s+with|going\s+with|go\s+for|opt\s+for|settle\s+on|lean\s+towards?))"
        r"\s*:?\s*(?i:option\s+|choice\s+|answer\s+)?" + _U,
    ),
    # {"answer": "B"}
    Phrase('{"answer": "B"}', "B", r'"(?i:answer|choice|option)"\s*:\s*"\s*([A-Da-d])\s*"'),
    # My choice: A / my final answer is C / Final: B
    Phrase(
        "My choice: A",
        "A",
        r"(?i:\bmy\s+(?:final\s+)?(?:choice|answer|pick|selection)\s*(?:is|would\s+be|:|-)|\bfinal\s*:)\s*"
        r"(?i:option\s+|choice\s+)?" + _U,
    ),
    Phrase("C it is.", "C", r"(?<![A-Za-z])" + _U + r"\s+(?i:it\s+is)\s*(?:[.!]|$)"),  # C it is.
    # C is the way to go / Best: C (beside "Worst: A")
    Phrase(
        "C is the way to go",
        "C",
        r"(?<![A-Za-z])(?i:option\s+|choice\s+)?" + _U + r"\s+(?i:is\s+the\s+way\s+to\s+go)\b",
    ),
    Phrase(
        "Best: C", "C", r"(?i:\bbest\s*(?:option|choice|answer|pick)?\s*(?::|=|-))\s*(?i:option\s+)?" + _U
    ),
    # D remains. / the only remaining option is C
    Phrase(
        "D remains.", "D", r"(?<![A-Za-z])(?i:option\s+|choice\s+)?" + _U + r"\s+(?i:remains|is\s+left)\b"
    ),
    Phrase(
        "the only remaining option is C",
        "C",
        r"(?i:\bremaining\s+(?:option|choice|answer)\s+is)\s*:?\s*(?i:option\s+)?" + _U,
    ),
    # It has to be D. / I'd say B. / That leaves us with B. / This points to option C. / Going with D. /
    # Probably C.  (the letter ends the sentence)
    Phrase(
        "It has to be D.",
        "D",
        r"(?i:\b(?:it|this|that)\s+(?:has\s+to|must|should|would|will)\s+be"
        r"|(?:\bI|'d|\bwould)\s+(?:[a-z]+ly\s+)?(?:say|guess)"
        r"|\bif\s+I\s+had\s+to\s+(?:pick|choose|guess)\s*,?|\bleaves\s+(?:us\s+with\s+)?|\bleft\s+with|\bpoints?\s+to"
        r"|\bvote\s+goes\s+to|\bmoney\s+on|\bgo\s+with|\b(?:it's|it\s+has)\s+got\s+to\s+be"
        r"|\bleads?\s+(?:us\s+)?to|\bcorresponds?\s+to|\bgoing\s+with"
        r"|(?:^|(?<=[.!?,]\s)|(?<=,))\s*(?:probably|likely|most\s+likely|definitely|possibly|maybe|perhaps)\s*,?"
        r"|\b(?:in\s+one\s+line|tl;?\s*dr|in\s+short|bottom\s+line|verdict)\s*:)"
        r"\s*(?i:option\s+|choice\s+)?" + _U + r"\s*(?:[.!?]|$)",
    ),
    # it might be C, but … / the answer may be B / I believe it's C  (one letter, hedged: still the one given)
    Phrase(
        "it might be C, but I am unsure",
        "C",
        r"(?i:\b(?:it|this|that|the\s+answer)\s+(?:might|may|could|would)\s+(?:well\s+)?be"
        r"|\bI\s+(?:think|believe|guess|suspect|feel)\s+(?:that\s+)?(?:it's|it\s+is|the\s+answer\s+is))"
        r"\s*(?i:option\s+|choice\s+)?" + _U + r"(?=\s*(?:[.,;!?]|$|(?i:but|though|although|however)\b))",
    ),
    # Correct option: A / Best choice - B / Conclusion: B
    Phrase(
        "Correct option: A",
        "A",
        r"(?i:\b(?:correct|best|right)\s+(?:option|choice)\s*(?::|-)|\b(?:conclusion|solution|response)\s*:"
        r"|\b(?:selected|chosen)\s+(?:option|answer|choice)\s*(?::|-|is))\s*" + _U,
    ),
    # ..., it's D. / That is B.  (the letter ends the sentence)
    Phrase(
        "That is B.",
        "B",
        r"(?i:\b(?:it's|it\s+is|that's|that\s+is))\s*(?i:option\s+|choice\s+)?" + _U + r"\s*(?:[.!]|$)",
    ),
    # the statement that describes X is: A / the concept that best fits it is (C) / the one that best
    # reflects this is: C / the term that most closely captures it is B
    Phrase(
        "the concept that best fits it is (C)",
        "C",
        r"(?i:\b[a-z]+\s+that\s+(?:(?:best\s+|most\s+accurately\s+)?(?:describes|fits|matches|defines|aligns\s+with|"
        r"corresponds\s+to|reflects|captures|represents)|"
        r"(?:best|most\s+[a-z]+ly)\s+[a-z]+s)\b)[^.!?]{0,80}?(?i:\bis)\s*:?\s*(?i:option\s+)?" + _U,
    ),
    # the most appropriate concept is: D / the most objective and neutral attitude when … is: B /
    # the best description of X is option D / … is B. / the correct statement comparing X with Y is: D
    Phrase(
        "the most appropriate concept is: D",
        "D",
        r"(?i:\b(?:the|that\s+is)\s+(?:most|best|correct|right)\s)[^.!?:]{0,120}?(?i:\bis|\bwould\s+be)"
        r"\s*(?::\s*(?i:option\s+)?|(?i:option)\s+|\s(?=\(?[A-D]\)?\s*(?:[.:!]|$)))" + _U,
    ),
    # The concept being discussed is: C. / This concept is B. phishing  (the letter ends the clause)
    Phrase(
        "The concept being discussed is: C.",
        "C",
        r"(?i:\b(?:concept|term|answer|choice|statement|description|attitude|principle|idea|one)\s+"
        r"(?:being\s+[a-z]+\s+|here\s+|in\s+question\s+|described\s+|discussed\s+)?is)\s*:?\s*(?i:option\s+)?"
        + _U
        + r"(?=\s*(?:[.:!]|$))",
    ),
    # the polluter pays principle is best described as option B
    Phrase(
        "the polluter pays principle is best described as option B",
        "B",
        r"(?i:\b(?:best|most\s+accurately)\s+described\s+as)\s*:?\s*(?i:option\s+)?" + _U,
    ),
    # option C best describes X / choice B most accurately reflects Y
    Phrase(
        "option C best describes the idea",
        "C",
        r"(?i:\b(?:option|choice)\s+)" + _U + r"\s+(?i:best|most\s+(?:accurately|closely))\s+(?i:[a-z]+s\b)",
    ),
    # Therefore option D. / Hence, (C). / ..., so D.  (the letter ends the sentence)
    Phrase(
        "Therefore option D.",
        "D",
        r"(?i:\b(?:therefore|hence|thus|so|in\s+conclusion|to\s+conclude|finally))\s*,?\s*(?i:option\s+|choice\s+)?"
        + _U
        + r"\s*(?:[.!]|$)",
    ),
)
# A LaTeX answer box.
BOXED = (Phrase("\\boxed{B}", "B", r"\\boxed\{\s*(?:\\text\{\s*)?\(?([A-Da-d])\)?\s*\}?\s*\}"),)


# The decision tables by the name a reading reports (`Extraction.method`), in the order they are searched.
TABLES = {"zh-phrase": ZH, "en-phrase": EN, "boxed": BOXED}
DECISIONS = tuple((bounded(p.pattern), name) for name, table in TABLES.items() for p in table)
# Hedges between letters: a reading that names a second letter as just as possible is no decision.
HEDGE = bounded(
    r"(?:也可能|也許|也许|或許|或许|又或者|或者)\s*(?:是|選|选|為|为)?\s*"
    + _ZH_OPT
    + _L
    + r"|(?i:\b(?:could|might|may)\s+also\s+be|\bor\s+(?:possibly|maybe|perhaps))\s*(?i:option\s+)?"
    + _U
    # "Maybe A, maybe B.": the first of two tentative letters
    + r"|(?i:\b(?:maybe|perhaps|possibly))\s*(?i:option\s+)?"
    + _U
    + r"\s*[,;/]\s*(?i:or\s+)?(?i:maybe|perhaps|possibly)\b"
)
# What denies a decision that follows it at once ("不應該選B", "別選A", "並非選C", "not going with A", "錯誤的答案是A",
# "the wrong one is: A").
NEGATED = re.compile(
    r"(?:[不別别非勿莫]|沒有|没有|(?:錯誤|错误|錯|错)的?|(?i:\bnot|n't|\bnever|\b(?:wrong|incorrect|false|worst|least)))"
    r" ?$"
)
# What denies the letter a decision just read ("Response: A is wrong", "答案：A錯誤").
DENIED = re.compile(
    r" ?(?:[.:、)] ?)?(?:(?i:is\s+(?:not|wrong|incorrect|false)\b|isn't\b)|(?:是)?(?:錯|错|不對|不对|不正確|不正确))"
)

# ------------------------------------------------------------------------------------------- words

# A refusal to answer.
REFUSAL = bounded(_REFUSAL_TEXT)
# Verdicts on one option: wrong (NEG), right (POS), worst (WORST), ranked first (FIRST).
NEG = re.compile(
    r"不正確|不正确|不對|不对|不符合|不恰當|不恰当|不合適|不合适|不準確|不准确|不是正確|不是正确|不是指|不是最|錯誤|错误|錯的|错的|說法錯|说法错|排除|不選|不选|不符|不合理"
    r"|不客觀|不客观|不中立|並不中立|并不中立"
    r"|(?i:\bincorrect\b|\bnot\s+(?:as\s+|very\s+|quite\s+|entirely\s+|fully\s+|completely\s+|directly\s+)?"
    r"(?:correct|right|the\s+best|accurate|appropriate|objective|neutral|balanced)\b"
    r"|\bwrong\b|\bfalse\b"
    r"|\binaccurate\b|\beliminat\w*|\bruled?\s+out\b"
    r"|\bunrelated\b|\birrelevant\b|\bnot\s+(?:related|relevant|likely)\b|\bunlikely\b|^\s*[-:–—]?\s*no\b)"
    r"|無關|无关|不相符|不相關|不相关"
    r"|[✗✘×❌]"
)
POS = re.compile(
    r"(?:正確|正确|恰當|恰当|合適|合适|準確|准确|合理)(?!性)|(?<![反相面針针應应絕绝])(?:對的|对的)|說法對|说法对"
    r"|符合題意|符合题意|符合|最佳"
    r"|(?i:\bcorrect\b|\btrue\b|\bthe\s+best\b|\bmost\s+appropriate\b|\baccurate\b"
    r"|\bis\s+(?:both\s+)?objective\s+and\s+neutral\b|\brelevant\b|\brelated\b|\blikely\b|^\s*[-:–—]?\s*yes\b)"
    r"|(?<!不)相符"
    r"|[✓✔√✅]"
)
# A verdict word alone right after an option's label ("A 錯", "B 對", "C: right", "D wrong"): it ends there
# (a stop, the end, or the next label follows), so "A. 對於…" and "A right to vote…" are no verdict.
_WRONG_WORD = r"錯誤|错误|錯|错|(?i:wrong|incorrect|false)(?![A-Za-z])"
_RIGHT_WORD = r"正確|正确|對|对|(?i:right|correct|true)(?![A-Za-z])"
_WORD_END = r"(?= ?(?:[。，,.;；!！:：)）]|$|[(\[【]? ?[A-D](?![A-Za-z])))"
VERDICT_WORD = r"(?:" + _WRONG_WORD + "|" + _RIGHT_WORD + ")" + _WORD_END
BARE_VERDICT = re.compile(
    r" ?(?:(" + _WRONG_WORD + ")|(" + _RIGHT_WORD + "))" + _WORD_END
)  # 1 wrong, 2 right
WORST = re.compile(r"最不|極端|极端|偏激|片面|(?i:\b(?:least|worst|extreme|extremist|biased|one-sided)\b)")
FIRST = re.compile(r"最|(?i:\bbest\b|\bmost\b)")  # a right verdict that ranks its option above the others

# A sentence that opens with a conclusion's marker ("So, the concept … is the Gini coefficient.").
CONCLUDES = re.compile(
    r" ?(?:\d{1,2}\. ?)?(?:(?i:summary|conclusion) ?: ?"
    r"|(?i:(?:so|therefore|thus|hence|in\s+conclusion|in\s+summary|overall|to\s+sum\s+up|concluding|"
    r"in\s+the\s+end|finally|ultimately)\b)"
    r"|因此|所以|綜上|综上|總之|总之|由此可見|由此可见)"
)

# A sentence that judges its option well (GOOD) or not, or asks (BAD).
GOOD = re.compile(
    r"正確|正确|符合|最|體現|体现|屬於|属于|反映|恰當|恰当|合適|合适|準確|准确|對應|对应|描述了|指的是"
    r"|(?i:\b(?:correct|right|best|most|fits?|fitting|matches|describes|reflects|captures|aligns|"
    r"represents|true|accurate|appropriate|suitable|choose|pick|select)\b)"
)
BAD = re.compile(
    r"不(?!同|僅|仅|只|斷|断)|沒有|没有|錯|错|排除|極端|极端|偏激|片面|否定|而非|並非|并非"
    r"|(?i:\b(?:not|no|never|incorrect|wrong|false|least|worst|extreme|biased|radical|unlikely|except|"
    r"rather\s+than|instead\s+of|if|whether|which|what|n't)\b|n't\b|\?)"
)


# A lead-in that opens a walk through the options, not an answer ("Let's analyze each option:").
WALK = re.compile(
    r"逐一|每個|每个|各個|各个|各選項|各选项|以下|下列|如下|分析|(?i:\b(?:each|every|all|options|following|"
    r"analy[sz]e|analysis|consider|look|review|examine|breakdown|break)\b)"
)
