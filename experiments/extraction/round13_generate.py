"""Round 13: real outputs of the embedded Qwen2.5-Coder-0.5B-Instruct on test questions (every question of the
sample has served a round; these were rounds 6's and 11's, answered here in other styles), in eight prompt
styles no round used (the answer first in zh-Hant, a marker's answer key in zh-Hans, the trap option named
before the right one, a student-teacher dialogue, "Final answer:" after step-by-step reasoning, a critic of
each option then a pick, a concise assistant's system prompt, one word), half greedy and half sampled at
temperature 0.7-1.0, with 512 new tokens as round 12. Generated before round 12 was read and labelled by
hand before it was scored: a held-out check. Writes id, style, options, text a line."""

from sampling import body, chat, run_round

STYLES = [  # (style, language, prompt, temperature; 0 = greedy)
    ("zh-answer-first", "zh", lambda tok, r: chat(tok, body(r) + "\n\n請先給出答案，再解釋理由。"), 0.0),
    (
        "zh-hans-answer-key",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n请像阅卷老师一样，写出标准答案和评分要点。"),
        0.8,
    ),
    (
        "zh-trap",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n這題最容易誤選哪個選項？正確答案又是哪個？"),
        0.7,
    ),
    (
        "zh-dialogue",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n請以學生提問、老師回答的對話形式講解這題。"),
        0.0,
    ),
    (
        "en-final-answer",
        "en",
        lambda tok, r: chat(
            tok, body(r) + "\n\nThink step by step, then write 'Final answer:' followed by the letter."
        ),
        0.0,
    ),
    (
        "en-critic",
        "en",
        lambda tok, r: chat(
            tok, body(r) + "\n\nWhat would a critic of each option say? Conclude with your pick."
        ),
        0.8,
    ),
    (
        "en-concise",
        "en",
        lambda tok, r: chat(tok, body(r), "You are a helpful assistant. Be concise."),
        1.0,
    ),
    ("en-one-word", "en", lambda tok, r: chat(tok, body(r) + "\n\nAnswer in one word."), 0.0),
]
run_round(
    "experiments/extraction/round13-raw.jsonl",
    "test",
    STYLES,
    lambda k: [(5 * k + 3 + j) % 62 for j in range(8)],
    seed=13,
    max_new_tokens=512,
)
