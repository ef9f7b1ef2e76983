"""Round 17: real outputs of the embedded Qwen2.5-Coder-0.5B-Instruct on train questions (every question of the
sample has served a round; these are answered here in other styles), in eight prompt styles no round used
(a civil servant's briefing, a pros-and-cons list per option in zh-Hans, a reply to a friend's message, an
answer as a dictionary entry, a customer-support agent, a step count ("Step 1 … Step N"), a textbook margin
note, a one-paragraph essay), half greedy and half sampled at temperature 0.7-1.0, with 512 new tokens as
rounds 12-16. Generated after round 16's changes and labelled by hand before it was scored: a held-out
check. Writes id, style, options, text a line."""

from sampling import body, chat, run_round

STYLES = [  # (style, language, prompt, temperature; 0 = greedy)
    ("zh-briefing", "zh", lambda tok, r: chat(tok, body(r) + "\n\n請以公務員簡報的口吻作答。"), 0.0),
    (
        "zh-hans-pros-cons",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n请逐项列出优点和缺点，然后作答。"),
        0.8,
    ),
    (
        "zh-friend",
        "zh",
        lambda tok, r: chat(tok, "朋友傳來這題問我答案，請幫我回覆他：\n\n" + body(r)),
        0.7,
    ),
    (
        "zh-dictionary",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n請以辭典條目的形式作答。"),
        0.0,
    ),
    (
        "en-support",
        "en",
        lambda tok, r: chat(tok, body(r), "You are a friendly customer-support agent."),
        0.0,
    ),
    (
        "en-steps",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nSolve it in numbered steps (Step 1, Step 2, ...)."),
        0.8,
    ),
    (
        "en-margin-note",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nWrite the answer as a textbook margin note."),
        1.0,
    ),
    (
        "en-essay",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nAnswer in one short paragraph, like an exam essay."),
        0.0,
    ),
]
run_round(
    "experiments/extraction/round17-raw.jsonl",
    "train",
    STYLES,
    lambda k: [(19 * k + 100 + j) % 180 for j in range(8)],
    seed=17,
    max_new_tokens=512,
)
