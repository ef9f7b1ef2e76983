"""Round 7: real outputs of the embedded Qwen2.5-Coder-0.5B-Instruct, *sampled* (temperature 0.7-1.0, as a
GRPO policy samples; rounds 4-6 were greedy), on train questions no earlier round used (round 5 took rows 20k to 20k + 7), in eight prompt
styles none of them used (step by step in zh-Hans, a verdict for each option, letter first, an exam answer
line, markdown, a stated confidence, the project's own reasoning prompt, a plain question). For a held-out
extraction check after round 6's changes. Writes id, style, options, text a line."""

from sampling import body, chat, run_round

from mcqflow.core.prompts import render_prompt

STYLES = [  # (style, language, prompt, temperature)
    ("zh-hans-step", "zh", lambda tok, r: chat(tok, body(r) + "\n\n请一步一步思考，然后给出答案。"), 0.7),
    (
        "en-each",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nFor each option, say whether it is right, then answer."),
        0.7,
    ),
    (
        "zh-letter-first",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n先寫出答案的字母，再用一句話說明理由。"),
        0.7,
    ),
    (
        "en-exam",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nAnswer:", "You are taking a multiple-choice exam."),
        0.7,
    ),
    (
        "zh-markdown",
        "zh",
        lambda tok, r: chat(tok, body(r) + "\n\n請用Markdown格式作答，包括分析與結論。"),
        0.7,
    ),
    (
        "en-confidence",
        "en",
        lambda tok, r: chat(tok, body(r) + "\n\nGive your answer and how sure you are (0-100%)."),
        0.7,
    ),
    ("zh-reasoning", "zh", lambda tok, r: render_prompt(tok, r, "reasoning"), 1.0),
    ("en-plain-t1", "en", lambda tok, r: chat(tok, body(r)), 1.0),
]
run_round(
    "experiments/extraction/round7-raw.jsonl", "train", STYLES, lambda k: range(20 * k + 8, 20 * k + 16), seed=3
)  # round 5 took rows [20k, 20k + 8)
