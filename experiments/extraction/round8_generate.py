"""Round 8: real outputs of the embedded Qwen2.5-Coder-0.5B-Instruct on dev questions no earlier round used
(round 4 took rows 0-23), in eight prompt styles none of them used (an examinee's system prompt, a
comparison, zh-Hans in brief, reasons for and against, a teacher's system prompt, JSON, one line, a
ranking), half greedy and half sampled at temperature 0.7. Generated before round 7's fixes were written
and read only after them: a held-out check of those fixes. Writes id, style, options, text a line."""

from sampling import body, chat, run_round

STYLES = [  # (style, language, prompt, temperature; 0 = greedy)
    (
        "zh-examinee",
        "zh",
        lambda tok, r: chat(tok, body(r), "你是一名正在參加考試的考生，請選出答案並說明。"),
        0.0,
    ),
    ("zh-compare", "zh", lambda tok, r: chat(tok, body(r) + "\n\n請比較各選項後作答。"), 0.7),
    ("zh-hans-brief", "zh", lambda tok, r: chat(tok, body(r) + "\n\n请简要回答。"), 0.0),
    (
        "zh-for-against",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n請先列出每個選項的支持與反對理由，再選出最佳答案。"),
        0.7,
    ),
    (
        "en-teacher",
        "en",
        lambda tok, r: chat(tok, body(r), "You are a civics teacher explaining the answer to a student."),
        0.0,
    ),
    (
        "en-json",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nRespond in JSON with the keys answer and explanation."),
        0.7,
    ),
    ("en-one-line", "en", lambda tok, r: chat(tok, body(r) + "\n\nAnswer in one line."), 0.0),
    (
        "en-rank",
        "en",
        lambda tok, r: chat(
            tok, body(r) + "\n\nRank the options from best to worst, then state your answer."
        ),
        0.7,
    ),
]
run_round(
    "experiments/extraction/round8-raw.jsonl",
    "dev",
    STYLES,
    lambda k: range(24 + 8 * (k % 4), 32 + 8 * (k % 4)),
    seed=4,
)
