"""Answer extraction: turn a model's free text into one letter A–D, or None.

Used by predict (generate mode), `mcqflow evaluate --protocol generate`, chat-file ingest and the GRPO
rewards. The rules are named and ordered; `RULES` below is the list a reader audits, and each reading
reports the rule that decided it (`Extraction.method`).

Clean-up first, in this order (none of it decides anything):
  chat-tokens   template and special tokens (`<|im_end|>`, `<|start_header_id|>assistant<|end_header_id|>`,
                `<｜end▁of▁sentence｜>`, `[/INST]`, `</s>`) are removed;
  think         a reasoning block (`<think>…</think>`, DeepSeek-R1 and Qwen3 style) is dropped: only the text
                after the last `</think>` counts; an unclosed block is a run cut off while thinking (None);
  markdown      emphasis (`**`, `__`, backticks) and heading marks are removed;
  width         full-width letters, brackets and colons become ASCII; whitespace runs become one space.

Then the first rule that reads a letter decides:
  1. tag            the last complete <output>/<answer> element, or one the output ends in unclosed (the
                    generation stopped inside it); its content alone is read (rules 3–7);
  2. last-line      the output's last line is one letter and nothing else ("…思考過程…\n\nC"), and the line
                    before it is no option's label (an option list cut off at "D" is no answer); where the
                    later rules read another letter ("答案是A。\n\nB"), a contradiction (None);
  3. letter         the whole output is one letter (any case), perhaps bracketed or followed by a stop;
  4. decision       explicit decisions (zh-Hant, zh-Hans, en, \\boxed{}): "答案是", "故選", "最合適的是",
                    "the answer is", "I'd go with", "B is the best option"…; where several appear, the one
                    that ends last wins ("排除A和B……最終選擇D" is D; "答案不是A，而是C" is C), unless
                    the per-option verdicts come after it; three or more letters decided, and no decision
                    after a per-option analysis, is options enumerated ("第一種…選A。第二種…選B。第三種…
                    選C"): None;
     A second letter named as just as possible ("答案可能是A，也可能是B", "B, or possibly C", "Maybe A,
                    maybe B") is a hedge: None. A last sentence that opens with a conclusion's marker, names
                    no letter and names another option's text ("… is: A. ransomware … Concluding, … is the
                    multifactor authentication.") contradicts the decision: None.
     With no decision, a percentage given to each of three or more options ("A: 10%, B: 70%, C: 15%,
                    D: 5%") reads the option given the most (`chances`; a tie is None, `chances-tie`).
  5. verdicts       an analysis that judges the options in turn ("A. 錯誤 … B. 正確 …", "Option C: incorrect"):
                    exactly one option judged right decides; two or more judged right is a contradiction
                    (None) unless a decision comes after the analysis: past the last verdict and outside
                    the last option's own sentence ("D. … - 正确的選項是D" is D's verdict), or in a last
                    sentence not about one option ("通过分析，选项 C 最准确地描述了…。"), where rule 8's
                    reading counts as a decision too ("因此，最為客觀、中立的態度是A。"). An analysis that
                    stops before its last options (cut off at the token limit) decides only where the right
                    verdict ranks its option first ("這個選項是最客觀的", "the best"); otherwise the
                    unjudged option might be the one (`verdicts-unfinished`, None);
  6. leading-letter the output starts with a letter label ("B.", "(C)", "D 因為…"; never the article in "A
                    neutral judge would…"), unless it restates three or more option labels (the options
                    listed, not one chosen: `option-list`, None);
                    a first sentence that judges its option wrong or worst ("B. 錯誤…", "Option A is the
                    most extreme view.") is that option judged, not chosen, and the later rules read on;
                    a label followed by another option's text ("A. <B's text>") is a contradiction (None),
                    and an output that also restates another option after its label ("B. <B's text> 优点…
                    D. <D's text> 优点…") sets options out in turn (`option-list`, None);
  7. refusal        a refusal is None, whatever option texts it mentions;
  8. conclusion     the output's last sentence (when it ends one; else none) or its first names exactly one
                    option by its letter ("A選項…", "…的是C", "Option D …", "…: B") and judges it well
                    (正確/符合/最/體現/屬於, correct/best/most/fits/describes/reflects…) with no negation or bad
                    superlative (不, not, wrong, 最不, least, extreme, 極端, 片面…): a decision in words no
                    phrase of rule 4 knows; when the first and the last sentence name different letters, None;
                    "A" before a lowercase noun is the article ("A weathered debate: …"); a sentence about one
                    option counts only where it opens an output that labels no other ("Option A describes
                    accountability by …");
  9. answer-line    with the options given, the output ends in one option's label and its own text after a
                    lead-in ending in a colon ("The best choice here: C. freedom of speech") that opens no
                    walk through the options ("Let's analyze each option: A. …", cut off after the first),
                    judges nothing wrong and was not said before (each option in turn after "老師回答：");
  10. option-text   with the options given, the one option whose text the first or last sentence names
                    (or the last sentence after the analysis that opens with a conclusion's marker: "So,
                    the concept … is the Gini coefficient. … Any questions?"; a sentence that names two or
                    more is the options listed and does not count), leaving out sentences about one option
                    ("A. …", "Option B: …": an analysis weighing them, or one cut off mid-way); an option
                    quoted after its own label ("A. 十八世紀起…", "Option B: \"…\"") is the options
                    restated, not an answer, and does not count.
Lists ("A和C", "A or B"), hedges between letters, letters outside A–D and anything else are None: never a
default letter.

Linear time on any input: whitespace runs are collapsed before matching, so every whitespace quantifier
is bounded (` ?`); no pattern has two unbounded quantifiers side by side; tags are paired in one pass.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

from mcqflow.core.text import FULLWIDTH, REFUSAL

# ------------------------------------------------------------------------------------------- clean-up

_CHAT_TOKENS = re.compile(
    r"<\|(?:im_start|start_header_id)\|>(?:assistant|user|system)?(?:<\|end_header_id\|>)?"
    r"|<\|[A-Za-z_]{1,40}\|>|<｜[^｜<>]{1,40}｜>|</?s>|\[/?INST\]"
)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)
_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_MARKDOWN = re.compile(r"\*\*|__|`+|(?m:^[ \t]{0,3}#{1,6}[ \t]+)|(?m:^[ \t]{0,3}>[ \t]?)")
_WS = re.compile(r"\s+")

# ------------------------------------------------------------------------------------------- patterns

_LIST_SEP = r"(?:和|與|与|及|或|或者|、|,|，|/|&|and\b|or\b|to\b|至|到)"
# A letter that stands alone: not part of a word, not the first of a list ("A和C", "A, C", "A/B").
_ALONE = r"(?![A-Za-z0-9])(?!\s*" + _LIST_SEP + r"\s*[A-Da-d](?![A-Za-z]))"
_OPEN = r"[(\[【「『〔<]?"
_CLOSE = r"[)\]】」』〕>]?"
_L = _OPEN + r"\s*([A-Da-d])\s*" + _CLOSE + _ALONE  # Chinese contexts: no article ambiguity
_U = r"\(?([A-D])\)?" + _ALONE  # English contexts: uppercase only ("the answer is a trade-off")
_ZH_OPT = r"(?:選項|选项|第)?\s*"
_ZH_ITEM = r"\s*(?:項|项|選項|选项)?"
_GOOD_ZH = r"(?:正確|正确|合適|合适|恰當|恰当|佳|準確|准确|合理|符合題意|符合题意|符合題目要求|符合题目要求|妥當|妥当|最符合)"

# A letter that ends its clause ("…是C。", "…選B，"), perhaps after a closing particle ("應該是C吧。").
_CLAUSE_END = r"\s*(?=[。！!.，,；;]|$)"
_PARTICLE_END = r"\s*(?:吧|啦|了)?" + _CLAUSE_END

_ZH = [
    # 答案是 C / 最終答案：B / 正確答案應為（D）/ 答案選A
    r"(?:最終|最终|正確|正确|參考|参考|標準|标准|我的|本題|本题)?答案\s*"
    r"(?:應該|应该|應|应|就|可能|顯然|显然|明顯|明显|肯定|一定|當然|当然|無疑|无疑|或許|或许|也許|也许|大概)?\s*"
    r"(?:是|為|为|選項|选项|選|选|:|-)?\s*:?\s*" + _ZH_OPT + _L,
    r"(?<![A-Za-z\u4e00-\u9fff])答\s*:\s*" + _ZH_OPT + _L,
    # 答案非常明顯，是B。
    r"答案[^。！？!?A-Da-d]{0,12}?[,，]\s*(?:是|為|为|就是)\s*" + _ZH_OPT + _L + r"\s*(?=[。！!.]|$)",
    # 答曰：C / 擇C。/ C為是。/ C是也。 (Classical Chinese)
    r"答曰\s*:?\s*" + _ZH_OPT + _L,
    r"(?<![選选])(?:擇|择|取)\s*" + _ZH_OPT + _L + _ZH_ITEM + r"\s*(?:也|矣|乎)?" + _CLAUSE_END,
    _ZH_OPT + _L + _ZH_ITEM + r"\s*(?:為是|为是|是也|為正|为正)" + _CLAUSE_END,
    # 【答案】D / 正解：C / 解答：B
    r"[【\[]\s*(?:答案|正解)\s*[】\]]\s*:?\s*" + _ZH_OPT + _L,
    r"(?:正解|解答)\s*(?::|是|為|为)\s*" + _ZH_OPT + _L,
    # 故選C / 因此选择 D / 應選 A / 我選擇B項 / 選B
    r"(?:最終|最终|故|因此|所以|應|应|應該|应该|我|本題|本题)?\s*(?:選|选)(?:擇|择)?\s*(?:的)?\s*(?:是)?\s*:?\s*"
    + _ZH_OPT
    + _L,
    # 而是C / 應為B
    r"(?:而是|應為|应为|應是|应是|就是)\s*" + _ZH_OPT + _L,
    # 我覺得是C。/ 我认为是B / 我想應該選D
    r"我\s*(?:覺得|觉得|認為|认为|想|相信)\s*(?:應該|应该|應|应)?\s*(?:是|選|选)\s*"
    + _ZH_OPT
    + _L
    + _ZH_ITEM
    + _PARTICLE_END,
    # 即選項C。/ 亦即B
    r"(?:即|亦即)\s*" + _ZH_OPT + _L + _ZH_ITEM + _CLAUSE_END,
    # 只有C是對的 / C對。/ D才是對的
    _ZH_OPT + _L + _ZH_ITEM + r"\s*(?:才|是|才是)?\s*(?:對|对)(?:的)?" + _CLAUSE_END,
    # 我比較傾向B / 傾向於選C
    r"(?:傾向|倾向)(?:於|于)?\s*(?:選|选)?(?:擇|择)?\s*" + _ZH_OPT + _L,
    # 剩下C。/ 排除後只剩下D
    r"(?:剩下|剩餘|剩余|只剩|僅剩|仅剩)\s*(?:的)?\s*(?:是|就是|選項|选项)?\s*" + _ZH_OPT + _L,
    # 可能是C。/ 也許是B吧 / 大概是D (one letter, hedged: still the one it gives; "也可能是…" is a hedge)
    r"(?<![也又])(?:可能|也許|也许|或許|或许|大概)\s*(?:是|選|选)\s*"
    + _ZH_OPT
    + _L
    + _ZH_ITEM
    + _PARTICLE_END,
    # 我猜是C。
    r"猜\s*(?:是|選|选)\s*" + _ZH_OPT + _L + _CLAUSE_END,
    # 所以應該是B。/ 我認為應選C / 必然是D (a letter that ends its clause after a decision's verb)
    r"(?<!不)(?:應該|应该|應當|应当|必然|一定|只能|當然|当然)\s*(?:是|選|选|為|为)\s*"
    + _ZH_OPT
    + _L
    + _ZH_ITEM
    + _PARTICLE_END,
    # 選項C正確 / 选项B是最恰当的 / C項最符合題意 / B最為恰當 / 选项C“寒蟬效應”确实符合题意
    _ZH_OPT
    + _L
    + _ZH_ITEM
    + r"\s*(?:[“\"「『][^”\"」』]{1,40}[”\"」』])?\s*(?:的)?(?:表述|說法|说法|描述|觀點|观点)?\s*"
    r"(?:是|為|为|最為|最为|更為|更为|更|才是|確實|确实)?\s*(?:最|唯一)?\s*(?:"
    + _GOOD_ZH
    + r"|(?<=[更最])好)",
    # C為正確答案 / 應以C為答案 / B是最終答案
    r"(?:以)?\s*"
    + _ZH_OPT
    + _L
    + _ZH_ITEM
    + r"\s*(?:為|为|是|作為|作为)\s*(?:最終|最终|正確|正确|最佳|本題|本题)?(?:的)?\s*答案",
    # 最合適的是B / 最符合題意的選項是C / 正確的是A / 最佳選擇是D / 最恰當的答案為B
    r"(?:(?:最|較|较|比較|比较|更)(?:為|为)?"
    + _GOOD_ZH
    + r"|正確|正确|最佳|最好|唯一(?:正確|正确|合理|恰當|恰当|合適|合适)?)(?:的)?\s*(?:選項|选项|選擇|选择|答案|一項|一项|描述|說法|说法|是)?\s*"
    r"(?:(?:是|為|为)\s*:?|:)\s*" + _ZH_OPT + _L,
    # 所以是B / 因此，B。
    r"(?:所以|因此|故|綜上|综上)\s*(?:,|，)?\s*(?:是|為|为)?\s*" + _ZH_OPT + _L + r"\s*(?:[。.!！]|$)",
    # 綜上所述，D選項符合「國家主權」的定義 / 因此B項正確
    r"(?:綜上所述|综上所述|總之|总之|因此|所以)\s*(?:,|，)?\s*"
    + _ZH_OPT
    + _L
    + _ZH_ITEM
    + r"\s*(?:最)?(?:符合|正確|正确)",
    # 結論：B
    r"(?:結論|结论)\s*(?::|是|為|为)\s*" + _ZH_OPT + _L,
    # 這段描述指的是概念B / 說的是選項C
    r"(?:指的是|指的就是|說的是|说的是)\s*(?:概念|選項|选项|第)?\s*" + _L,
    # 最準確地描述生物多樣性的項是：B / 符合題意的選項為C / 最符合客觀態度的是B選項 (what the item is,
    # said of the question; never after 不: "不符合題意的是A" names the wrong one)
    r"(?<!不)(?:描述|說明|说明|符合|對應|对应)[^。！？!?]{0,40}?的(?:選項|选项|項|项|一項|一项|概念|答案)?\s*(?:是|為|为)\s*:?\s*"
    + _ZH_OPT
    + _L,
]
_EN = [
    # the answer is B / Answer: C / ANSWER - D / the answer would be (B) / My answer: A
    r"(?i:\banswers?)\s*(?i:(?:is|would\s+be|should\s+be|will\s+be|must\s+be)"
    r"(?:\s+(?:actually|clearly|indeed|definitely|likely|probably|most\s+likely))?\s*:?"
    r"|(?:appears|seems)\s+to\s+be|:|-|—|–|=)\s*[\"']?\s*"
    r"(?i:option\s*|choice\s*)?" + _U,
    # the answer is option (c) / Answer: c)  (a lowercase letter only with its bracket)
    r"(?i:\banswer)\s*(?i:is|:)?\s*(?i:option\s*)?\(?([a-d])\)",
    # Answer B.  / Answer B: <its text>  (a heading with the letter after it)
    r"(?i:\banswer)\s+\(?([A-D])\)?\s*(?:$|[.,;:)])",
    # the correct/best/most appropriate answer/option/choice is D
    r"(?i:\b(?:correct|right|best|final|most\s+(?:appropriate|accurate|suitable|reasonable|neutral|balanced))\s+"
    r"(?:answer|option|choice|response)\s*(?:here\s+)?(?:is|would\s+be|should\s+be|:))\s*:?\s*(?i:option\s*)?"
    + _U,
    r"(?i:\bfinal\s+answer)\s*:?\s*(?i:is\s*)?" + _U,
    # Option C is correct / B is the best option / (D) is the most appropriate choice
    r"(?i:\b(?:option|choice)\s+)?"
    + r"(?<![A-Za-z])"
    + _U
    + r"\s+(?i:is\s+(?:the\s+)?(?:only\s+)?(?:correct|right|best|most\s+(?:appropriate|accurate|objective|"
    r"neutral|suitable|reasonable|balanced|fitting)|(?<=only\s)(?:reasonable|sensible|valid|plausible|fitting|"
    r"appropriate|accurate|objective))(?:\s+(?:answer|option|choice))?)"
    r"(?![A-Za-z])",
    # I choose B / I'd go with option C / I will select D / a neutral judge would pick: C
    r"(?i:(?:\bI|\bwould|\bwill|'d|'ll|'m|\bam)(?:\s+(?:likely|probably|definitely))?\s+"
    r"(?:choose|pick|select|go\s+with|going\s+with|go\s+for|opt\s+for|settle\s+on|lean\s+towards?))"
    r"\s*:?\s*(?i:option\s+|choice\s+|answer\s+)?" + _U,
    # {"answer": "B"}
    r'"(?i:answer|choice|option)"\s*:\s*"\s*([A-Da-d])\s*"',
    # My choice: A / my final answer is C / Final: B
    r"(?i:\bmy\s+(?:final\s+)?(?:choice|answer|pick|selection)\s*(?:is|would\s+be|:|-)|\bfinal\s*:)\s*"
    r"(?i:option\s+|choice\s+)?" + _U,
    r"(?<![A-Za-z])" + _U + r"\s+(?i:it\s+is)\s*(?:[.!]|$)",  # C it is.
    # C is the way to go / Best: C (beside "Worst: A")
    r"(?<![A-Za-z])(?i:option\s+|choice\s+)?" + _U + r"\s+(?i:is\s+the\s+way\s+to\s+go)\b",
    r"(?i:\bbest\s*(?:option|choice|answer|pick)?\s*(?::|=|-))\s*(?i:option\s+)?" + _U,
    # D remains. / the only remaining option is C
    r"(?<![A-Za-z])(?i:option\s+|choice\s+)?" + _U + r"\s+(?i:remains|is\s+left)\b",
    r"(?i:\bremaining\s+(?:option|choice|answer)\s+is)\s*:?\s*(?i:option\s+)?" + _U,
    # It has to be D. / I'd say B. / That leaves us with B. / This points to option C. / Going with D. /
    # Probably C.  (the letter ends the sentence)
    r"(?i:\b(?:it|this|that)\s+(?:has\s+to|must|should|would|will)\s+be"
    r"|(?:\bI|'d|\bwould)\s+(?:[a-z]+ly\s+)?(?:say|guess)"
    r"|\bif\s+I\s+had\s+to\s+(?:pick|choose|guess)\s*,?|\bleaves\s+(?:us\s+with\s+)?|\bleft\s+with|\bpoints?\s+to"
    r"|\bvote\s+goes\s+to|\bmoney\s+on|\bgo\s+with|\b(?:it's|it\s+has)\s+got\s+to\s+be"
    r"|\bleads?\s+(?:us\s+)?to|\bcorresponds?\s+to|\bgoing\s+with"
    r"|(?:^|(?<=[.!?,]\s)|(?<=,))\s*(?:probably|likely|most\s+likely|definitely|possibly|maybe|perhaps)\s*,?"
    r"|\b(?:in\s+one\s+line|tl;?\s*dr|in\s+short|bottom\s+line|verdict)\s*:)"
    r"\s*(?i:option\s+|choice\s+)?" + _U + r"\s*(?:[.!?]|$)",
    # it might be C, but … / the answer may be B / I believe it's C  (one letter, hedged: still the one given)
    r"(?i:\b(?:it|this|that|the\s+answer)\s+(?:might|may|could|would)\s+(?:well\s+)?be"
    r"|\bI\s+(?:think|believe|guess|suspect|feel)\s+(?:that\s+)?(?:it's|it\s+is|the\s+answer\s+is))"
    r"\s*(?i:option\s+|choice\s+)?" + _U + r"(?=\s*(?:[.,;!?]|$|(?i:but|though|although|however)\b))",
    # Correct option: A / Best choice - B / Conclusion: B
    r"(?i:\b(?:correct|best|right)\s+(?:option|choice)\s*(?::|-)|\b(?:conclusion|solution|response)\s*:"
    r"|\b(?:selected|chosen)\s+(?:option|answer|choice)\s*(?::|-|is))\s*" + _U,
    # ..., it's D. / That is B.  (the letter ends the sentence)
    r"(?i:\b(?:it's|it\s+is|that's|that\s+is))\s*(?i:option\s+|choice\s+)?" + _U + r"\s*(?:[.!]|$)",
    # the statement that describes X is: A / the concept that best fits it is (C) / the one that best
    # reflects this is: C / the term that most closely captures it is B
    r"(?i:\b[a-z]+\s+that\s+(?:(?:best\s+|most\s+accurately\s+)?(?:describes|fits|matches|defines|aligns\s+with|"
    r"corresponds\s+to|reflects|captures|represents)|"
    r"(?:best|most\s+[a-z]+ly)\s+[a-z]+s)\b)[^.!?]{0,80}?(?i:\bis)\s*:?\s*(?i:option\s+)?" + _U,
    # the most appropriate concept is: D / the most objective and neutral attitude when … is: B /
    # the best description of X is option D / … is B. / the correct statement comparing X with Y is: D
    r"(?i:\b(?:the|that\s+is)\s+(?:most|best|correct|right)\s)[^.!?:]{0,120}?(?i:\bis|\bwould\s+be)"
    r"\s*(?::\s*(?i:option\s+)?|(?i:option)\s+|\s(?=\(?[A-D]\)?\s*(?:[.:!]|$)))" + _U,
    # The concept being discussed is: C. / This concept is B. phishing  (the letter ends the clause)
    r"(?i:\b(?:concept|term|answer|choice|statement|description|attitude|principle|idea|one)\s+"
    r"(?:being\s+[a-z]+\s+|here\s+|in\s+question\s+|described\s+|discussed\s+)?is)\s*:?\s*(?i:option\s+)?"
    + _U
    + r"(?=\s*(?:[.:!]|$))",
    # the polluter pays principle is best described as option B
    r"(?i:\b(?:best|most\s+accurately)\s+described\s+as)\s*:?\s*(?i:option\s+)?" + _U,
    # option C best describes X / choice B most accurately reflects Y
    r"(?i:\b(?:option|choice)\s+)" + _U + r"\s+(?i:best|most\s+(?:accurately|closely))\s+(?i:[a-z]+s\b)",
    # Therefore option D. / Hence, (C). / ..., so D.  (the letter ends the sentence)
    r"(?i:\b(?:therefore|hence|thus|so|in\s+conclusion|to\s+conclude|finally))\s*,?\s*(?i:option\s+|choice\s+)?"
    + _U
    + r"\s*(?:[.!]|$)",
]
_BOXED = r"\\boxed\{\s*(?:\\text\{\s*)?\(?([A-Da-d])\)?\s*\}?\s*\}"


def _bounded(pattern: str) -> re.Pattern:
    r"""Compile for text whose whitespace runs are one space: `\s*` becomes ` ?`, `\s+` becomes ` `."""
    return re.compile(pattern.replace(r"\s*", " ?").replace(r"\s+", " "))


_DECISIONS = (
    [(_bounded(p), "zh-phrase") for p in _ZH]
    + [(_bounded(p), "en-phrase") for p in _EN]
    + [(_bounded(_BOXED), "boxed")]
)
# Hedges between letters: a reading that names a second letter as just as possible is no decision.
_HEDGE = _bounded(
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
_NEGATED = re.compile(
    r"(?:[不別别非勿莫]|沒有|没有|(?:錯誤|错误|錯|错)的?|(?i:\bnot|n't|\bnever|\b(?:wrong|incorrect|false|worst|least)))"
    r" ?$"
)
# What denies the letter a decision just read ("Response: A is wrong", "答案：A錯誤").
_DENIED = re.compile(
    r" ?(?:[.:、)] ?)?(?:(?i:is\s+(?:not|wrong|incorrect|false)\b|isn't\b)|(?:是)?(?:錯|错|不對|不对|不正確|不正确))"
)
_TAG_MARK = re.compile(r"<(/?)(output|answer) ?>", re.IGNORECASE)
_OPEN_TAIL = re.compile(r"<(?:output|answer) ?>([^<>]{0,20})$", re.IGNORECASE)
_LEADING = _bounded(
    r"^\s*(?:(?:選項|选项|(?i:option))\s*)?"
    + _OPEN
    + r"\s*([A-D])(?!\s*"
    + _LIST_SEP
    + r"\s*[A-Da-d](?![A-Za-z]))"
    r"\s*(?:[)\]】」.．、:]|$|\s)"
)
_ONLY_LETTER = _bounded(
    r"^\s*(?:(?:選項|选项|(?i:option))\s*)?" + _OPEN + r"\s*([A-Da-d])\s*" + _CLOSE + r"\s*[.．、。]?\s*$"
)
_REFUSAL = _bounded(REFUSAL)

# Per-option verdicts. A label: an option letter that opens a clause ("A.", "B：", "(C)", "選項D", "Option A:").
_LABEL = _bounded(
    r"(?:^|(?<=[\s。；;，,.!！?？)）|]))(?:(?:選項|选项)\s*([A-D])\s*[.:、)]?|(?i:option)\s+([A-D])\s*[.:)\-]?"
    r"|[(\[【]\s*([A-D])\s*[)\]】]\s*[.:、]?|([A-D])\s*[.:、)．|]|([A-D])\s*(?:項|项)(?:說法|说法)?"
    r"|([A-D])\s[-–—]\s)"  # "A - no"
)
_NEG = re.compile(
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
_POS = re.compile(
    r"(?:正確|正确|恰當|恰当|合適|合适|準確|准确|合理)(?!性)|(?<![反相面針针應应絕绝])(?:對的|对的)|說法對|说法对"
    r"|符合題意|符合题意|符合|最佳"
    r"|(?i:\bcorrect\b|\btrue\b|\bthe\s+best\b|\bmost\s+appropriate\b|\baccurate\b"
    r"|\bis\s+(?:both\s+)?objective\s+and\s+neutral\b|\brelevant\b|\brelated\b|\blikely\b|^\s*[-:–—]?\s*yes\b)"
    r"|(?<!不)相符"
    r"|[✓✔√✅]"
)
_WORST = re.compile(r"最不|極端|极端|偏激|片面|(?i:\b(?:least|worst|extreme|extremist|biased|one-sided)\b)")
# An option letter and the first percentage after it, with no other letter or number between them.
_CHANCE = re.compile(
    r"(?<![A-Za-z0-9])([A-D])(?![A-Za-z0-9])(?:(?![A-D](?![A-Za-z]))[^%\d]){0,100}?(\d{1,3}(?:\.\d+)?) ?%"
)
_ENDED = re.compile(r"[。！？.!?」』\"')）]\s*$")  # the text ends a sentence
_FIRST = re.compile(r"最|(?i:\bbest\b|\bmost\b)")  # a right verdict that ranks its option above the others
_VERDICT_REACH = 80  # characters after a label in which its verdict is looked for


@dataclass(frozen=True)
class Extraction:
    answer: str | None
    method: str


# The order in which the rules are tried: the audit list of this module (see the docstring).
RULES = (
    "tag",
    "last-line",
    "letter",
    "decision",
    "verdicts",
    "leading-letter",
    "refusal",
    "conclusion",
    "answer-line",
    "option-text",
)


def clean(text: str) -> str | None:
    """The clean-up steps (chat-tokens, think, markdown, width); None when the output stopped inside a
    reasoning block."""
    lines = _lines(text)
    return None if lines is None else _WS.sub(" ", lines).strip()


def _lines(text: str) -> str | None:
    """`clean` with the line breaks kept."""
    text = _CHAT_TOKENS.sub(" ", text)
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        text = text[closes[-1].end() :]
    elif _THINK_OPEN.search(text):
        return None
    return _MARKDOWN.sub("", text).translate(FULLWIDTH)


# A last line that is one letter and nothing else ("…思考過程…\n\nC", "reasoning …\n(B)").
_LAST_LINE = re.compile(r"\n[ \t]*[(\[【]?[ \t]*([A-D])[ \t]*[)\]】]?[ \t]*[.。]?\s*$")


def _last_line(text: str) -> str | None:
    """Rule 2: the letter alone on the output's last line, where the line before it is no option's label
    (an option list cut off at "D" is no answer)."""
    m = _LAST_LINE.search(text)
    if not m:
        return None
    before = [line for line in text[: m.start()].splitlines() if line.strip()]
    if not before or _ABOUT_ONE.match(before[-1]) or _LEADING.match(_WS.sub(" ", before[-1]).strip()):
        return None
    return m.group(1)


def extract_answer(text: str | None, options: dict[str, str] | None = None) -> Extraction:
    if text is None or not text.strip():
        return Extraction(None, "empty")
    lines = _lines(text)
    if lines is None:
        return Extraction(None, "think-unfinished")
    cleaned = _WS.sub(" ", lines).strip()
    if not cleaned:
        return Extraction(None, "empty")
    inner = _last_tag(cleaned)
    if inner is None:  # an <output> the generation stopped in (at its end token, or a cut stop string)
        tail = _OPEN_TAIL.search(cleaned)
        inner = tail.group(1) if tail else None
    if inner is not None:
        found = _from_text(inner.strip(), options)
        return Extraction(found.answer, "tag" if found.answer else "tag-unreadable")
    found = _from_text(cleaned, options)
    letter = _last_line(lines)
    if letter and found.answer not in (None, letter):
        return Extraction(None, "contradiction")  # "答案是A。\n\nB"
    return Extraction(letter, "last-line") if letter else found


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
    decision = None
    decided: set[str] = set()
    for pattern, method in _DECISIONS:
        for m in pattern.finditer(text):
            if _NEGATED.search(text[max(0, m.start() - 12) : m.start()]) or _DENIED.match(text, m.end()):
                continue  # "不應該選B", "別選A", "Response: A is wrong": a decision denied
            decided.add(m.group(1).upper())
            if decision is None or m.end() > decision.end:
                decision = _Decision(m.end(), m.group(1).upper(), method, m.start())
    verdicts = _verdicts(text, options)
    final = _final_start(text)
    if verdicts is not None and (decision is None or decision.end <= verdicts.end):
        letter = _conclusion(text, last_only=True)  # "因此，最為客觀、中立的態度是A。" after the analysis
        if letter:
            decision = _Decision(len(text), letter, "conclusion", final)
    concluded = (
        decision is not None
        and verdicts is not None
        and (
            decision.end > final
            or (decision.end > verdicts.end and not _own_verdict(text, decision, verdicts))
        )
    )
    if len(decided) >= 3 and not concluded:  # "第一種…選A。第二種…選B。第三種…選C": enumerated, none chosen
        return Extraction(None, "contradiction")
    if decision is None:
        chances = _chances(text)
        if chances is not None:  # "A: 10%, B: 70%, C: 15%, D: 5%": the option it gives the most chance
            top = max(chances.values())
            best = [k for k, v in chances.items() if v == top]
            return Extraction(
                best[0] if len(best) == 1 else None, "chances" if len(best) == 1 else "chances-tie"
            )
    if verdicts is not None and not concluded:
        if len(verdicts.right) > 1:
            return Extraction(None, "contradiction")
        if len(verdicts.right) == 1:
            (letter,) = verdicts.right
            if letter in verdicts.ranked or not verdicts.unfinished(options):
                return Extraction(letter, "verdicts")
            if decision is None:
                return Extraction(None, "verdicts-unfinished")
    if decision and options and _lists_after(text[decision.end :], options, decision.letter):
        return Extraction(None, "option-list")  # "the best case for each option is: A. … B. … C. … D. …"
    if decision and options and _concluded_otherwise(text, decision, options):
        return Extraction(None, "contradiction")  # "… is: A. ransomware … Concluding, … is the multifactor …"
    if decision:
        hedge = _HEDGE.search(text)
        if hedge and next(g for g in hedge.groups() if g).upper() != decision.letter:
            return Extraction(None, "hedge")
        return Extraction(decision.letter, decision.method)
    m = _LEADING.match(text)
    if (
        m
        and m.group(1) == "A"
        and re.match(r" [a-z]", text[m.end(1) :])
        and not text.lstrip().startswith(("(", "["))
    ):
        m = None  # "A neutral judge would pick option C.": the article, not a label
    first = _SENTENCE_END.split(text, maxsplit=1)[0]
    if (
        m
        and (_NEG.search(first) or _WORST.search(first))
        and not _restates(first[m.end() :], options, m.group(1))
    ):
        m = None  # "B. 錯誤…", "Option A is the most extreme view.": the option judged, not chosen
    if m:
        labels = {next(g for g in x.groups() if g) for x in _LABEL.finditer(text)}
        if len(labels) >= 3:  # the options restated ("A. … B. … C. …"), not an answer
            return Extraction(None, "option-list")
        # "A. <option B's text>": the letter and the text disagree
        if _other_text(first[m.end() :], options, m.group(1)):
            return Extraction(None, "contradiction")
        # "B. <B's text> 优点…缺点… D. <D's text> 优点…缺点…": two options set out in turn, none chosen
        if _restates_other(text, options, m.group(1)):
            return Extraction(None, "option-list")
        return Extraction(m.group(1), "leading-letter")
    if _REFUSAL.search(text):
        return Extraction(None, "refusal")
    letter = _conclusion(text)
    if letter:
        return Extraction(letter, "conclusion")
    letter = _answer_line(text, options)
    if letter:
        return Extraction(letter, "answer-line")
    if options:
        letter = _match_option_text(_ends(text), options)
        if letter:
            return Extraction(letter, "option-text")
    return Extraction(None, "no-answer")


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
    own = {k: _as_cleaned(v).casefold() for k, v in (options or {}).items()}
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
        neg, pos = _NEG.search(segment), _POS.search(segment)
        if neg and (not pos or neg.start() <= pos.start()):
            judged.setdefault(letter, set()).add(False)
            end = start + neg.end()
        elif pos:
            judged.setdefault(letter, set()).add(True)
            end = start + pos.end()
            if _FIRST.search(segment):
                ranked.add(letter)
    if len(judged) < 2:
        return None
    right = sorted(k for k, v in judged.items() if v == {True})
    labelled = {letter for _, _, letter in labels}
    last = (labels[-1][0], labels[-1][2])
    return _Analysis(end, right, set(judged), ranked & set(right), labelled, not _ENDED.search(text), last)


def _as_cleaned(option: str) -> str:
    """An option's text as `clean` leaves the output it is looked for in: ASCII width, single spaces."""
    return _WS.sub(" ", option.translate(FULLWIDTH)).strip()


def _norm(s: str) -> str:
    return re.sub(r"[\s。．.!！?？,，、;；:：\"'「」『』\-‐–—]+", "", s).casefold()


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


# A sentence that opens with a conclusion's marker ("So, the concept … is the Gini coefficient.").
_CONCLUDES = re.compile(
    r" ?(?:\d{1,2}\. ?)?(?:(?i:summary|conclusion) ?: ?"
    r"|(?i:(?:so|therefore|thus|hence|in\s+conclusion|in\s+summary|overall|to\s+sum\s+up|concluding|"
    r"in\s+the\s+end|finally|ultimately)\b)"
    r"|因此|所以|綜上|综上|總之|总之|由此可見|由此可见)"
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
    concluding = [p for p in after if _CONCLUDES.match(p) and not _ABOUT_ONE.match(p) and not _BAD.search(p)]
    return [parts[0], *concluding[-1:], parts[-1]]


# A letter named in a sentence: uppercase, not part of a word or a range/list ("A-D", "A和C", "A or B").
_NAMED = re.compile(r"(?<![A-Za-z0-9])([A-D])(?![A-Za-z0-9])")
_LISTED = re.compile(r"[A-D] ?(?:" + _LIST_SEP + r"|-) ?(?:選項|选项|(?i:option))? ?[A-D](?![A-Za-z])")
# "A weathered interrogation: …": the article, not a label (but "A is the one", "A best represents …").
_ARTICLE = re.compile(
    r"A (?!(?:is|was|has|seems|appears|fits|matches|describes|best|most|would|will|can|could|should|must|"
    r"does|aligns|reflects|captures|represents|correctly|accurately|clearly|it|and|or)\b)[a-z]"
)
_GOOD = re.compile(
    r"正確|正确|符合|最|體現|体现|屬於|属于|反映|恰當|恰当|合適|合适|準確|准确|對應|对应|描述了|指的是"
    r"|(?i:\b(?:correct|right|best|most|fits?|fitting|matches|describes|reflects|captures|aligns|"
    r"represents|true|accurate|appropriate|suitable|choose|pick|select)\b)"
)
_BAD = re.compile(
    r"不(?!同|僅|仅|只|斷|断)|沒有|没有|錯|错|排除|極端|极端|偏激|片面|否定|而非|並非|并非"
    r"|(?i:\b(?:not|no|never|incorrect|wrong|false|least|worst|extreme|biased|radical|unlikely|except|"
    r"rather\s+than|instead\s+of|if|whether|which|what|n't)\b|n't\b|\?)"
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
        if _LISTED.search(sentence) or _BAD.search(sentence):
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
        if len(letters) == 1 and _GOOD.search(sentence):
            found |= letters
    return found.pop() if len(found) == 1 else None


# A lead-in that opens a walk through the options, not an answer ("Let's analyze each option:").
_WALK = re.compile(
    r"逐一|每個|每个|各個|各个|各選項|各选项|以下|下列|如下|分析|(?i:\b(?:each|every|all|options|following|"
    r"analy[sz]e|analysis|consider|look|review|examine|breakdown|break)\b)"
)


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
    if not m or _norm(m.group(2)) != _norm(_as_cleaned(options.get(m.group(1), ""))):
        return None
    lead = _SENTENCE_END.split(head)[-1]
    if _WALK.search(lead) or _NEG.search(lead) or _WORST.search(lead) or not lead.strip():
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
        own = _norm(_as_cleaned((options or {}).get(k, "")))
        if k == letter or len(own) < 4:
            continue
        if _likeness(_norm(text[m.end() : m.end() + 2 * len(own) + 8])[: len(own)], own) >= 0.8:
            return True
    return False


def _other_text(sentence: str, options: dict[str, str] | None, letter: str) -> bool:
    """The sentence after an option's label is, near enough, another option's text and not its own ("A.
    那些物种、基因與生態系統的豐富程度。" where B is "一個地區內物種、基因與生態系統的豐富程度")."""
    a = _norm(sentence)
    if not options or not a or len(a) > 200:
        return False
    ratio = {k: _likeness(a, _norm(_as_cleaned(v))) for k, v in options.items()}
    return ratio.get(letter, 0) < 0.4 and any(r >= 0.6 for k, r in ratio.items() if k != letter)


def _restates(sentence: str, options: dict[str, str] | None, letter: str) -> bool:
    """The sentence is the option's own text (written in the other script or with a word changed, as
    models restate it: "B. 不得…而给予…" for "…而給予…"), which judges nothing."""
    own = (options or {}).get(letter)
    if not own:
        return False
    a, b = _norm(sentence), _norm(_as_cleaned(own))
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
    if len(parts) < 2 or not _ENDED.search(text) or not _CONCLUDES.match(parts[-1]):
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
        return _label_then_text(k, _as_cleaned(options[k]))

    own = _as_cleaned(options.get(letter, ""))
    head = rest.lstrip(" .:、)]】").lstrip(" \"'“”「」『』")
    if own and head[: len(own)].casefold() == own.casefold():
        head = head[len(own) :]
    head = head.lstrip(" .。;；\"'“”「」『』")
    others = [k for k, v in options.items() if k != letter and len(_as_cleaned(v)) >= 2]
    first = next((m for k in others if (m := restated(k).match(head))), None)
    if first is None or not re.match(
        r" ?[.。;；]? ?(?:$|[(\[【]? ?[A-D] ?[)\]】]? ?[.:、)．|])", head[first.end() :]
    ):
        return False  # the next option is discussed ("A. economic growth is about money."), not listed
    return sum(bool(restated(k).search(rest)) for k in others) >= 2


def _restated(text: str, options: dict[str, str]) -> str:
    """`text` without the options it restates: each option's text right after its own label."""
    for k, v in options.items():
        v = _as_cleaned(v)
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
    norm = {k: _norm(v) for k, v in options.items()}
    whole = _norm(_restated(" ".join(sentences), options))
    exact = [k for k, v in norm.items() if v and v == whole]
    if len(exact) == 1:
        return exact[0]
    found: set[str] = set()
    for sentence in sentences:
        t = _norm(_restated(sentence, options))
        hits = [k for k, v in norm.items() if len(v) >= 2 and v in t]
        # An option contained in another ("經濟" inside "經濟發展") must not count twice.
        hits = [k for k in hits if not any(k != o and norm[k] in norm[o] and o in hits for o in hits)]
        # Another option nearly named beside it ("States pledge to respond together …" before B's text): the
        # options listed. A near name alone reads nothing: a paraphrase may be of anything.
        near = [k for k, v in norm.items() if k not in hits and len(v) >= 8 and _near(t, v)]
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
