"""Round 16: real outputs of the embedded Qwen2.5-Coder-0.5B-Instruct on test questions (every question of the
sample has served a round; these are answered here in other styles), in eight prompt styles no round used
(a news headline, a primary-school teacher's system prompt in zh-Hans, the reasoning then the letter alone
on the last line, the concept being tested first, a haiku, an answer that starts with "Option", a short
debate with oneself, a system prompt of exactly two sentences), half greedy and half sampled at temperature
0.7-1.0, with 512 new tokens as rounds 12-15. Generated after round 15's changes and labelled by hand before
it was scored: a held-out check. Writes id, style, options, text a line."""

from sampling import body, chat, run_round

STYLES = [  # (style, language, prompt, temperature; 0 = greedy)
    ("zh-headline", "zh", lambda tok, r: chat(tok, body(r) + "\n\n請用一則新聞標題回答。"), 0.0),
    (
        "zh-hans-primary",
        "zh",
        lambda tok, r: chat(tok, body(r), "你是一名小学老师，请用简单的话回答。"),
        0.8,
    ),
    (
        "zh-last-line",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n請寫出思考過程，最後一行只寫選項字母。"),
        0.7,
    ),
    (
        "zh-concept-first",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n先說明這題在考什麼概念，再判斷答案。"),
        0.0,
    ),
    ("en-haiku", "en", lambda tok, r: chat(tok, body(r) + "\n\nAnswer with a haiku."), 0.0),
    (
        "en-option-first",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nStart your answer with the word 'Option'."),
        0.8,
    ),
    (
        "en-self-debate",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nDebate with yourself briefly, then settle on one answer."),
        1.0,
    ),
    (
        "en-two-sentences",
        "en",
        lambda tok, r: chat(tok, body(r), "You answer every question in exactly two sentences."),
        0.0,
    ),
]
run_round(
    "experiments/extraction/round16-raw.jsonl",
    "test",
    STYLES,
    lambda k: [(7 * k + 30 + j) % 62 for j in range(8)],
    seed=16,
    max_new_tokens=512,
)
