"""Round 11: real outputs of the embedded Qwen2.5-Coder-0.5B-Instruct on the 14 test questions round 6 left
(rows 8, 9, 18, 19, …, 58-61), in eight prompt styles no round used (rebut the wrong options first, an
option and a reason, a zh-Hans judgement of each option, a careful assistant's system prompt, the letter
and the option text only, three bullet points then a choice, a debate coach's system prompt, a quiz-show
contestant), half greedy and half sampled at temperature 0.7-1.0. Generated after round 10's changes and
labelled by hand before it was scored: a held-out check. Writes id, style, options, text a line."""

from sampling import body, chat, run_round

ROWS = [8, 9, 18, 19, 28, 29, 38, 39, 48, 49, 58, 59, 60, 61]
STYLES = [  # (style, language, prompt, temperature; 0 = greedy)
    (
        "zh-rebut",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n請先逐一反駁錯誤的選項，再說明正確的選項。"),
        0.0,
    ),
    ("zh-option-reason", "zh", lambda tok, r: chat(tok, body(r) + "\n\n回答格式：選項＋一句理由。"), 0.8),
    (
        "zh-hans-judge",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n请判断每个选项是否符合题意，最后给出答案。"),
        0.7,
    ),
    ("zh-careful", "zh", lambda tok, r: chat(tok, body(r), "你是一個謹慎的助理，不確定時要說明。"), 0.0),
    (
        "en-letter-text",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nRespond with the letter and the option text only."),
        0.0,
    ),
    (
        "en-bullets",
        "en",
        lambda tok, r: chat(
            tok, body(r) + "\n\nGive your reasoning in three bullet points, then your final choice."
        ),
        0.8,
    ),
    (
        "en-coach",
        "en",
        lambda tok, r: chat(
            tok, body(r) + "\n\nWhich option would a neutral judge pick?", "You are a debate coach."
        ),
        1.0,
    ),
    ("en-quiz", "en", lambda tok, r: chat(tok, body(r) + "\n\nAnswer as a quiz-show contestant would."), 0.0),
]
run_round(
    "experiments/extraction/round11-raw.jsonl",
    "test",
    STYLES,
    lambda k: ROWS[6 * (k % 2) : 6 * (k % 2) + 8],
    seed=11,
)
