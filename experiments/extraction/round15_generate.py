"""Round 15: real outputs of the embedded Qwen2.5-Coder-0.5B-Instruct on dev questions (every question of the
sample has served a round; these are answered here in other styles), in eight prompt styles no round used
(a historian's system prompt, three sentences in zh-Hans, "if you could pick only one", a bulleted answer
with the choice first, a news anchor, an assistant unsure of itself, a short answer then a justification
and a summary, a Socratic tutor's system prompt), half greedy and half sampled at temperature 0.7-1.0, with
512 new tokens as rounds 12-14. Generated after round 14's changes and labelled by hand before it was
scored: a held-out check. Writes id, style, options, text a line."""

from sampling import body, chat, run_round

STYLES = [  # (style, language, prompt, temperature; 0 = greedy)
    ("zh-historian", "zh", lambda tok, r: chat(tok, body(r), "你是一位嚴謹的歷史學者。"), 0.0),
    ("zh-hans-three", "zh", lambda tok, r: chat(tok, body(r) + "\n\n请用三句话回答。"), 0.8),
    (
        "zh-only-one",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n如果只能選一個，你會選哪個？請簡短說明。"),
        0.7,
    ),
    (
        "zh-bullets",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n請用條列式回答，第一點寫出你的答案。"),
        0.0,
    ),
    (
        "en-anchor",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nAnswer in the voice of a news anchor."),
        0.0,
    ),
    (
        "en-unsure",
        "en",
        lambda tok, r: chat(tok, body(r), "You are an assistant who is never quite sure of yourself."),
        0.8,
    ),
    (
        "en-short-long",
        "en",
        lambda tok, r: chat(
            tok, body(r) + "\n\nGive a short answer, then a longer justification, then a one-line summary."
        ),
        1.0,
    ),
    (
        "en-socratic",
        "en",
        lambda tok, r: chat(tok, body(r), "You are a Socratic tutor who guides with questions."),
        0.0,
    ),
]
run_round(
    "experiments/extraction/round15-raw.jsonl",
    "dev",
    STYLES,
    lambda k: [(11 * k + 5 + j) % 60 for j in range(8)],
    seed=15,
    max_new_tokens=512,
)
