"""The chat messages a model sees. One function builds them for training and for prediction,
so the train-time and inference-time prompts cannot drift apart (the seed's did)."""

from __future__ import annotations

from mcqflow.core.schema import LETTERS, Record

MODES = ("plain", "reasoning")

SYSTEM = {
    "zh": "你是一位中立、客觀的助理。請根據題目選出唯一正確的選項。",
    "en": "You are a neutral, objective assistant. Choose the single correct option for the question.",
}
INSTRUCTION = {
    ("zh", "plain"): "請只回答正確選項的字母（A、B、C 或 D）。",
    (
        "zh",
        "reasoning",
    ): "請依照 <question><think><reasoning><reflection><adjustment><output> 的格式逐步推理，"
    "並在 <output> 中只寫出答案字母。",
    ("en", "plain"): "Answer with the letter of the correct option only (A, B, C or D).",
    ("en", "reasoning"): "Reason step by step in the <question><think><reasoning><reflection><adjustment>"
    "<output> format, and put only the answer letter in <output>.",
}
QUESTION_LABEL = {"zh": "題目：", "en": "Question: "}
# Cloze scoring (mcqflow.evaluation.evaluate): the question alone, each option's text scored as the answer.
CLOZE_INSTRUCTION = {"zh": "請直接寫出正確答案。", "en": "Write the correct answer."}


def user_content(rec: Record, mode: str) -> str:
    lines = [QUESTION_LABEL[rec.lang] + rec.question]
    lines += [f"{k}. {rec.options[k]}" for k in LETTERS]
    lines.append(INSTRUCTION[(rec.lang, mode)])
    return "\n".join(lines)


def prompt_messages(rec: Record, mode: str, shots: tuple[Record, ...] | list[Record] = ()) -> list[dict]:
    """System prompt, then `shots` solved examples as earlier turns (few-shot), then the question."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    messages = [{"role": "system", "content": SYSTEM[rec.lang]}]
    for shot in shots:
        messages += [
            {"role": "user", "content": user_content(shot, mode)},
            {"role": "assistant", "content": completion_text(shot, mode)},
        ]
    return messages + [{"role": "user", "content": user_content(rec, mode)}]


def cloze_prompt(tokenizer, rec: Record) -> str:
    """The question without its options; what follows is scored option by option."""
    messages = [
        {"role": "system", "content": SYSTEM[rec.lang]},
        {
            "role": "user",
            "content": QUESTION_LABEL[rec.lang] + rec.question + "\n" + CLOZE_INSTRUCTION[rec.lang],
        },
    ]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def completion_text(rec: Record, mode: str) -> str:
    if rec.answer is None:
        raise ValueError(f"record {rec.id} has no answer to train on")
    if mode == "plain":
        return rec.answer
    if not rec.reasoning:
        raise ValueError(f"record {rec.id} has no reasoning chain for mode 'reasoning'")
    return rec.reasoning


def sft_example(rec: Record, mode: str) -> dict:
    """A TRL conversational prompt-completion example: the loss falls on the completion only."""
    return {
        "prompt": prompt_messages(rec, mode),
        "completion": [{"role": "assistant", "content": completion_text(rec, mode)}],
    }


def render_prompt(tokenizer, rec: Record, mode: str, shots: tuple[Record, ...] | list[Record] = ()) -> str:
    return tokenizer.apply_chat_template(
        prompt_messages(rec, mode, shots), tokenize=False, add_generation_prompt=True
    )
