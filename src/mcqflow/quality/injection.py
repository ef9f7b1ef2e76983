"""Text in an LLM-written chain that talks to a model instead of about the question: prompt injection
("ignore the previous instructions", "請忽略上面的所有指令"), role and chat-template markup (`<|im_start|>`,
`<<SYS>>`, `### Instruction:`, `Human:`), requests to reveal a prompt, jailbreak personas.

Text is normalised before it is matched, so the usual disguises do not hide a phrase: NFKC (full-width
letters become ASCII), zero-width and soft-hyphen characters removed, Cyrillic and Greek look-alikes folded
onto the Latin letters they imitate, HTML entities decoded, and spaces between CJK characters dropped
("忽 略 以 上 指 令"). Measured on bench/injection/phrasings.txt and on real chains by
bench/injection_report.py (experiments/bench/injection.md)."""

from __future__ import annotations

import html
import re
import unicodedata

_INVISIBLE = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\ufeff\u00ad\u180e")
)
# Cyrillic and Greek letters drawn like Latin ones (Unicode's confusables for the letters in these words)
_LOOK_ALIKES = str.maketrans(
    "АВЕЅІЈКМНОРСТХУаеѕіјорсхуԁһԛԝΑΒΕΖΗΙΚΜΝΟΡΤΥΧαοτυνρ",
    "ABESIJKMHOPCTXYaesijopcxydhqwABEZHIKMNOPTYXaotuvp",
)
_CJK = r"[\u3400-\u9fff\uf900-\ufaff]"
_CJK_GAP = re.compile(rf"(?<={_CJK}|[:,;，。：；])\s+(?={_CJK}|[:,;，。：；])")


def normalise(text: str) -> str:
    """The text as the filter reads it (see the module docstring)."""
    text = unicodedata.normalize("NFKC", html.unescape(text)).translate(_INVISIBLE).translate(_LOOK_ALIKES)
    return _CJK_GAP.sub("", text)


_VERB_EN = r"(?:ignore|disregard|forget|overlook|skip|discard|override|bypass|reset|drop|do\s+not\s+follow|stop\s+following)"
_OBJECT_EN = (
    r"(?:instructions?|prompts?|rules?|directions?|guidelines?|system\s+(?:message|prompt)|rubric|filters?|"
    r"safety\s+rules|everything\s+(?:you\s+were\s+told|above|before)|the\s+above|above)"
)
_DEICTIC_ZH = r"(?:以上|上面|上述|之前|先前|前面|前述|最初|原來|原来|前邊|前边)"
_OBJECT_ZH = (
    r"(?:指令|指示|說明|说明|規則|规则|提示|要求|內容|内容|的話|的话|規定|规定|準則|准则|限制|設定|设定|說了什麼|说了什么|"
    r"過濾|过滤)"
)
_VERB_ZH = (
    r"(?:忽略|忽視|忽视|無視|无视|忘記|忘记|忘掉|不要理會|不要理会|不要管|別管|别管|跳過|跳过|放棄|放弃|"
    r"不要遵守|不用遵守|停止遵循|停止遵守|覆蓋|覆盖|重置|繞過|绕过|拋開|抛开|撇開|撇开)"
)
_SELF = r"(?:你|您|AI|助手|模型|assistant|model)"

PATTERNS = (
    # English: a verb of setting aside, then (within a few words) what is set aside
    rf"(?i:\b{_VERB_EN}\b[^.\n。]{{0,40}}?\b{_OBJECT_EN})",
    r"(?i:\b(?:you\s+are\s+now|from\s+now\s+on,?\s+you|act\s+as\s+if\s+you|pretend\s+(?:you|to\s+be))\b)",
    r"(?i:\b(?:reveal|print|repeat|show|output|leak)\s+(?:me\s+)?(?:your|the)\s+(?:system\s+prompt|initial\s+"
    r"instructions|instructions|hidden\s+prompt))",
    r"(?i:\bwhat\s+were\s+your\s+(?:initial\s+|original\s+)?instructions\b)",
    r"(?i:\bnew\s+(?:instructions?|task|prompt)\s*:)",
    r"(?i:\b(?:your\s+new\s+task\s+is|end\s+of\s+(?:the\s+)?system\s+prompt|"
    r"system\s+override|developer\s+mode|jailbreak|do\s+anything\s+now|no\s+content\s+policy|without\s+"
    r"restrictions|with\s+no\s+restrictions|unfiltered\s+(?:assistant|ai|mode)|obey\s+only)\b)",
    r"(?i:\b(?:note|message|attention)\s*(?:to\s+)?(?:the\s+)?(?:ai|model|assistant|language\s+model|llm)\b)",
    r"(?i:\b(?:previous|above|earlier|prior)\s+instructions\s+(?:were|are)\s+(?:a\s+test|void|cancelled|fake))",
    r"(?i:\bregardless\s+of\s+the\s+question\b|\brespond\s+only\s+with\b|\bi\s+am\s+your\s+developer\b)",
    # role and chat-template markup: <|im_start|>, <|start_header_id|>, <<SYS>>, [INST], <system>, Gemma's turns,
    # "### Instruction:", and dialogue roles opening a line or a sentence
    r"<\|[a-z_]{2,30}\|>|<</?SYS>>|\[/?INST\]|</?system>|<(?:start|end)_of_turn>",
    r"(?im:^\s*#{2,}\s*(?:instruction|system|response|input|user|assistant)\b)",
    r"(?:^|(?<=[\s.。!?！？]))(?:Human|Assistant|SYSTEM|System|User)\s*:",
    r"(?i:\[\s*system[^\]]{0,20}\])",
    # Chinese: a verb of setting aside, then (within a few characters) an earlier instruction or the question
    rf"{_VERB_ZH}(?:掉|了)?.{{0,8}}?(?:{_DEICTIC_ZH}.{{0,8}}?{_OBJECT_ZH}|(?:所有|全部|一切).{{0,6}}?(?:指令|指示|提示|規則|规则))|(?:忽略|無視|无视|不要管)(?:掉)?(?:題目|题目)",
    rf"{_VERB_ZH}(?:掉|了)?{_SELF}的{_OBJECT_ZH}",
    rf"{_DEICTIC_ZH}(?:的)?(?:所有)?{_OBJECT_ZH}.{{0,4}}?(?:作廢|作废|無效|无效|失效|只是測試|只是测试|{_VERB_ZH})",
    r"(?:你現在是|你现在是|從現在開始|从现在开始|現在起你|现在起你|你不再受|假裝你|假装你|你必須忽略|你必须忽略)",
    r"(?:扮演|成為|成为)(?:一個|一个).{0,12}?(?:AI|助手|模型|不受|沒有|没有)",
    r"(?:系統提示|系统提示|系統訊息|系统消息|系統消息|系统讯息|系統指令|系统指令|用戶指令|用户指令|真正的指令|真正的任務|真正的任务)",
    r"(?<![\u3400-\u9fff])(?:系統|系统|用戶|用户|助手)[：:]",
    r"(?:新的?(?:指令|任務|任务|提示)[：:]|你的新任務|你的新任务|開發者模式|开发者模式|越獄|越狱|解除所有限制|"
    r"不受約束|不受约束|沒有道德限制|没有道德限制|(?:輸出|输出|打印|重複|重复)你(?:的|最初)|最初收到的|服從這一句|服从这一句)",
    rf"(?:致|閱讀此文本的|阅读此文本的){_SELF}",
    # What every injection here is for: a letter. An order to answer one, addressed to the reader (opening
    # a clause, or after "直接/一律/都/請"), where a chain would conclude in the third person ("故选A")
    r"(?i:(?:^|[.;:,!?]\s*|\band\s+|\bthen\s+|\bjust\s+|\bonly\s+)(?:answer|choose|pick|select|output|reply|"
    r"respond|say)\s+(?:with\s+)?(?:only\s+)?(?:option\s+)?[\"'“(]?[A-D]\b(?![\w'’]))",
    r"(?:直接|一律|都|請|请|然後|然后|只|就)(?:回答|輸出|输出|選擇|选择|選|选|填|答)(?:選項|选项)?[「“\"]?[A-D](?![A-Za-z])",
)
_PATTERN = re.compile("|".join(f"(?:{p})" for p in PATTERNS))


def instruction_like(text: str | None) -> str | None:
    """The first instruction-like span of `text` (normalised), or None."""
    if not text:
        return None
    m = _PATTERN.search(normalise(text))
    return m.group(0) if m else None
