"""Round 10: real outputs of the embedded Qwen2.5-Coder-0.5B-Instruct on the 16 train questions no round
used (rows 160-175; rounds 5, 7 and 9 took rows 0-159), in eight prompt styles none of them used (a
format instruction in zh and en, key words first, a professor's system prompt, a table of pros and cons,
a tutor's system prompt, a 1-10 rating of each option, the answer first), half greedy and half sampled at
temperature 0.7-1.0. Generated before round 10's rule changes and labelled by hand before it was scored:
a held-out check. Writes id, style, options, text a line."""

from sampling import body, chat, run_round

ROWS = list(range(160, 176))
STYLES = [  # (style, language, prompt, temperature; 0 = greedy)
    (
        "zh-format",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n請一步一步思考，最後用「答案：X」的格式作答。"),
        0.0,
    ),
    ("zh-keywords", "zh", lambda tok, r: chat(tok, body(r) + "\n\n請先找出題幹的關鍵詞，再選出答案。"), 0.8),
    (
        "zh-professor",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n這題怎麼選？", "你是一位政治學教授，回答學生的問題。"),
        0.0,
    ),
    (
        "zh-table",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n请用表格列出各选项的优缺点，再给出答案。"),
        0.7,
    ),
    (
        "en-format",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nThink step by step. End with 'The answer is X'."),
        0.0,
    ),
    (
        "en-tutor",
        "en",
        lambda tok, r: chat(
            tok, body(r) + "\n\nWhich option is correct? Justify briefly.", "You are a careful exam tutor."
        ),
        1.0,
    ),
    (
        "en-rate",
        "en",
        lambda tok, r: chat(
            tok, body(r) + "\n\nRate each option from 1 to 10 for how well it fits, then choose one."
        ),
        0.0,
    ),
    (
        "en-answer-first",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nGive your answer first, then a short explanation."),
        0.7,
    ),
]
run_round(
    "experiments/extraction/round10-raw.jsonl",
    "train",
    STYLES,
    lambda k: ROWS[8 * (k % 2) : 8 * (k % 2) + 8],
    seed=10,
)
