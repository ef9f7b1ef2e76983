"""Round 14: real outputs of the embedded Qwen2.5-Coder-0.5B-Instruct on train questions (every question of the
sample has served a round; these are answered here in other styles), in eight prompt styles no round used
(a "我選X，因為……" sentence frame, the question restated in one zh-Hans sentence first, a ✓/✗ table then the
answer, a scholar who answers in Classical Chinese, a lawyer's closing argument, the worst and the best
option, a tweet, each option explained in one sentence then an answer), half greedy and half sampled at
temperature 0.7-1.0, with 512 new tokens as rounds 12 and 13. Generated before round 13 was read and
labelled by hand before it was scored: a held-out check. Writes id, style, options, text a line."""

from sampling import body, chat, run_round

STYLES = [  # (style, language, prompt, temperature; 0 = greedy)
    ("zh-frame", "zh", lambda tok, r: chat(tok, body(r) + "\n\n請用「我選X，因為……」的句式回答。"), 0.0),
    (
        "zh-hans-restate",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n先用一句话复述题目，再作答。"),
        0.8,
    ),
    (
        "zh-check-table",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n請用表格列出你對每個選項的判斷（✓或✗），最後寫出答案。"),
        0.7,
    ),
    (
        "zh-classical",
        "zh",
        lambda tok, r: chat(tok, body(r), "你是一位只用文言文回答問題的學者。"),
        0.0,
    ),
    (
        "en-lawyer",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nAnswer like a lawyer making a closing argument."),
        0.0,
    ),
    (
        "en-worst-best",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nWhich option is the worst, and which is the best?"),
        0.8,
    ),
    (
        "en-tweet",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nReply with a short tweet (under 280 characters)."),
        1.0,
    ),
    (
        "en-explain-each",
        "en",
        lambda tok, r: chat(
            tok, body(r) + "\n\nExplain what each option means in one sentence, then answer."
        ),
        0.0,
    ),
]
run_round(
    "experiments/extraction/round14-raw.jsonl",
    "train",
    STYLES,
    lambda k: [(23 * k + 11 + j) % 180 for j in range(8)],
    seed=14,
    max_new_tokens=512,
)
