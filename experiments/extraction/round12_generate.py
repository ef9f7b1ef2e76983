"""Round 12: real outputs of the embedded Qwen2.5-Coder-0.5B-Instruct on dev questions (every question of the
sample has served a round by now; these were round 4's and round 8's, answered here in other styles), in
eight prompt styles no round used (narrow to two finalists then decide, at most 50 characters, a news
commentator's system prompt, an examinee's quick exam technique, explained to a 12-year-old, the best case
for each option then a verdict, a probability for each option, a YAML reply), half greedy and half sampled
at temperature 0.7-1.0, generated with 512 new tokens (what `mcqflow evaluate --protocol generate` allows;
rounds 4-11 stopped at 256, so more of their analyses were cut off). Generated after round 11's changes and
labelled by hand before it was scored: a held-out check. Writes id, style, options, text a line."""

from sampling import body, chat, run_round

STYLES = [  # (style, language, prompt, temperature; 0 = greedy)
    (
        "zh-finalists",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n請先找出最可能的兩個選項，比較之後再決定。"),
        0.0,
    ),
    (
        "zh-hans-50",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n用不超过50个字回答：选哪一项？为什么？"),
        0.8,
    ),
    (
        "zh-commentator",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n請評論這一題。", "你是一位新聞評論員。"),
        0.7,
    ),
    (
        "zh-exam-technique",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n如果你是考生，會怎樣在考場上快速作答這題？"),
        0.0,
    ),
    (
        "en-eli5",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nExplain your answer as you would to a 12-year-old."),
        0.0,
    ),
    (
        "en-steelman",
        "en",
        lambda tok, r: chat(
            tok, body(r) + "\n\nMake the best case for each option, then say which one is right."
        ),
        0.8,
    ),
    (
        "en-probabilities",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nGive the probability (in %) that each option is correct."),
        1.0,
    ),
    (
        "en-yaml",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nReply in YAML with the keys reasoning and answer."),
        0.0,
    ),
]
run_round(
    "experiments/extraction/round12-raw.jsonl",
    "dev",
    STYLES,
    lambda k: [(7 * k + j) % 60 for j in range(8)],
    seed=12,
    max_new_tokens=512,
)
