"""Round 9: real outputs of the embedded Qwen2.5-Coder-0.5B-Instruct on train questions no earlier round used
(rounds 5 and 7 took rows 20k to 20k + 15; this takes 20k + 16 to 20k + 19), in eight prompt styles none of
them used (a teacher in zh-Hans, one sentence, elimination, "which would you pick and why" in zh and en, a
student's explanation, True/False per option, a terse system prompt), half greedy and half sampled at
temperature 0.7. Generated after round 8's changes, read once, not tuned on: a held-out check of them.
Writes id, style, options, text a line."""

from sampling import body, chat, run_round

ROWS = [20 * b + i for b in range(8) for i in range(16, 20)]  # 32 rows no round used
STYLES = [  # (style, language, prompt, temperature; 0 = greedy)
    (
        "zh-hans-teacher",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n请解释并作答。", "你是一名高中老师。"),
        0.0,
    ),
    ("zh-one-sentence", "zh", lambda tok, r: chat(tok, body(r) + "\n\n請用一句話回答。"), 0.7),
    ("zh-eliminate", "zh", lambda tok, r: chat(tok, body(r) + "\n\n請用排除法作答。"), 0.0),
    ("zh-pick-why", "zh", lambda tok, r: chat(tok, body(r) + "\n\n你會選哪一個？為什麼？"), 0.7),
    (
        "en-student",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nExplain it to a high-school student, then answer."),
        0.0,
    ),
    ("en-pick-why", "en", lambda tok, r: chat(tok, body(r) + "\n\nWhich would you pick, and why?"), 0.7),
    (
        "en-true-false",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nMark each option True or False, then answer."),
        0.0,
    ),
    ("en-terse", "en", lambda tok, r: chat(tok, body(r), "Answer multiple-choice questions tersely."), 0.7),
]
run_round(
    "experiments/extraction/round9-raw.jsonl",
    "train",
    STYLES,
    lambda k: ROWS[8 * (k % 4) : 8 * (k % 4) + 8],
    seed=5,
)
