"""Batched inference: letter scoring (one forward pass) or generation plus answer extraction.

Every question gets a letter: in generate mode an output with no readable answer falls back to letter
scoring of the same prompt, and the fallback is counted (method "fallback-logits"), never hidden.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from mcqflow.core.errors import UserError
from mcqflow.core.io import atomic_open
from mcqflow.core.prompts import render_prompt
from mcqflow.core.schema import LETTERS, Record, loads
from mcqflow.evaluation.extract.rules import extract_answer

INFERENCE_MODES = ("letter", "generate")


FALLBACK = "fallback-logits"  # the method of an answer no rule could read, letter-scored instead


@dataclass
class Prediction:
    id: str
    answer: str
    method: str
    raw: str
    extracted: str | None
    gold: str | None = None
    truncated: bool = False  # the prompt was longer than the model's context: its start was cut off

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def letter_token_ids(tokenizer) -> list[int]:
    ids = []
    for letter in LETTERS:
        enc = tokenizer.encode(letter, add_special_tokens=False)
        if len(enc) != 1:
            raise UserError(
                f"tokenizer splits the letter {letter!r} into {len(enc)} tokens; letter mode needs one"
            )
        ids.append(enc[0])
    return ids


def _encode(tokenizer, prompts: list[str], max_tokens: int | None = None) -> list[list[int]]:
    """Token ids of each prompt; one longer than `max_tokens` keeps its last `max_tokens` (the options and
    the answer cue stay; the start of an over-long question goes). predict counts them (`truncated`)."""
    ids = tokenizer(prompts, add_special_tokens=False).input_ids
    return [x[-max_tokens:] if max_tokens and len(x) > max_tokens else x for x in ids]


def context_limit(model, reserve: int = 1) -> int | None:
    """Prompt tokens the model can take with `reserve` tokens left for what it writes; None if unknown."""
    n = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return max(1, int(n) - reserve) if isinstance(n, int) else None


def _batches(token_ids: list[list[int]], tokenizer, batch_size: int, desc: str):
    """Yield (indices, padded batch), longest prompts first so padding stays small and OOM shows early."""
    order = sorted(range(len(token_ids)), key=lambda i: -len(token_ids[i]))
    with tqdm(total=len(token_ids), desc=desc, unit="q", dynamic_ncols=True) as bar:
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            enc = tokenizer.pad({"input_ids": [token_ids[i] for i in idx]}, return_tensors="pt")
            yield idx, enc
            bar.update(len(idx))


MIN_SHARED_PREFIX = 16  # tokens; below this the prefix pass costs more than it saves


def shared_prefix(ids: list[list[int]]) -> list[int]:
    """The token ids every prompt starts with (the system prompt and chat framing), less one token so
    that each prompt keeps a suffix to score."""
    n = min(len(x) for x in ids) - 1
    first = ids[0]
    for x in ids[1:]:
        n = next((k for k in range(n) if x[k] != first[k]), n)
    return first[:n]


@torch.inference_mode()
def letter_probs(
    model, tokenizer, prompts: list[str], batch_size: int = 16, share_prefix: bool = False
) -> list[list[float]]:
    """P(A..D) of the next token after each prompt, renormalised over the four letters.

    With `share_prefix`, the key/value cache of the prefix all prompts share is computed once per batch
    (on one row) and the batch runs only the rest: the same numbers, fewer tokens through the model."""
    if not prompts:
        return []
    letters = letter_token_ids(tokenizer)
    token_ids = _encode(tokenizer, prompts, context_limit(model))
    prefix = shared_prefix(token_ids) if share_prefix else []
    if len(prefix) < MIN_SHARED_PREFIX:
        prefix = []
    suffixes = [x[len(prefix) :] for x in token_ids]
    out: list[list[float] | None] = [None] * len(prompts)
    for idx, enc in _batches(suffixes, tokenizer, batch_size, "score"):
        enc = enc.to(model.device)
        # Left padding: positions must count real tokens only, or padded rows see shifted positions.
        pos = (enc.attention_mask.cumsum(-1) - 1).clamp(min=0)
        if prefix:
            b, n = enc.input_ids.shape[0], len(prefix)
            cache = model(torch.tensor([prefix], device=model.device), use_cache=True).past_key_values
            cache.batch_repeat_interleave(b)
            mask = torch.cat([enc.attention_mask.new_ones(b, n), enc.attention_mask], dim=1)
            out_ = model(
                input_ids=enc.input_ids,
                attention_mask=mask,
                position_ids=pos + n,
                past_key_values=cache,
                logits_to_keep=1,
            )
        else:
            out_ = model(**enc, position_ids=pos, logits_to_keep=1)
        logits = out_.logits[:, -1, letters]
        for i, p in zip(idx, logits.float().softmax(-1).tolist(), strict=True):
            out[i] = p
    return out  # type: ignore[return-value]


# A six-tag chain is over at its closing </output>: what a model writes after it is never read.
STOP_STRINGS = {"reasoning": ["</output>"], "plain": []}


@torch.inference_mode()
def generate(
    model,
    tokenizer,
    prompts: list[str],
    batch_size: int = 16,
    max_new_tokens: int = 512,
    stop_strings: list[str] | None = None,
    repetition_penalty: float = 1.0,
) -> list[str]:
    """Greedy generation; each row stops at the template's end token (the model's generation config) or
    at any of `stop_strings`. A `repetition_penalty` above 1 (HF's, CTRL's rule: the logit of every token
    already in the row is divided by it, or multiplied when negative) is a guard against the loops a small
    model's greedy decoding falls into (Qwen2.5-Instruct's own generation configs ship 1.05); 1.0 is off, also
    for a model whose generation config sets one."""
    out: list[str] = [""] * len(prompts)
    stop = {"stop_strings": stop_strings, "tokenizer": tokenizer} if stop_strings else {}
    ids = _encode(tokenizer, prompts, context_limit(model, reserve=max_new_tokens))
    for idx, enc in _batches(ids, tokenizer, batch_size, "generate"):
        enc = enc.to(model.device)
        gen = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            repetition_penalty=repetition_penalty,  # explicit: 1.0 is off whatever the model's config says
            **stop,
        )
        texts = tokenizer.batch_decode(gen[:, enc.input_ids.shape[1] :], skip_special_tokens=True)
        for i, t in zip(idx, texts, strict=True):
            out[i] = t
    return out


def predict_records(
    records: list[Record],
    model,
    tokenizer,
    inference: str = "letter",
    prompt_mode: str = "plain",
    batch_size: int = 16,
    max_new_tokens: int = 512,
    share_prefix: bool = False,
    shots: list[Record] | None = None,
    repetition_penalty: float = 1.0,
) -> list[Prediction]:
    if inference not in INFERENCE_MODES:
        raise UserError(f"inference mode {inference!r}: expected one of {', '.join(INFERENCE_MODES)}")
    prompts = [render_prompt(tokenizer, r, prompt_mode, shots or ()) for r in records]
    limit = context_limit(model, reserve=1 if inference == "letter" else max_new_tokens)
    long = {i for i, n in enumerate(map(len, _encode(tokenizer, prompts))) if limit and n > limit}
    if inference == "letter":
        probs = letter_probs(model, tokenizer, prompts, batch_size, share_prefix)
        return [
            Prediction(
                r.id,
                _argmax(p),
                "letter-logits",
                json.dumps(dict(zip(LETTERS, p, strict=True))),
                None,
                r.answer,
                i in long,
            )
            for i, (r, p) in enumerate(zip(records, probs, strict=True))
        ]
    texts = generate(
        model,
        tokenizer,
        prompts,
        batch_size,
        max_new_tokens,
        STOP_STRINGS.get(prompt_mode),
        repetition_penalty,
    )
    preds = []
    for i, (r, t) in enumerate(zip(records, texts, strict=True)):
        ex = extract_answer(t, r.options)
        preds.append(Prediction(r.id, ex.answer or "", ex.method, t, ex.answer, r.answer, i in long))
    missing = [i for i, p in enumerate(preds) if p.extracted is None]
    if missing:
        probs = letter_probs(model, tokenizer, [prompts[i] for i in missing], batch_size, share_prefix)
        for i, p in zip(missing, probs, strict=True):
            preds[i].answer, preds[i].method = _argmax(p), FALLBACK
    return preds


def _argmax(p: list[float]) -> str:
    return LETTERS[max(range(len(p)), key=p.__getitem__)]


def write_details(preds: list[Prediction], path: str | Path) -> None:
    with atomic_open(path) as f:
        f.writelines(p.to_json() + "\n" for p in preds)


class AnswerJournal:
    """Answers written as they come, so a stopped run resumes where it stopped.

    One JSONL file: a header line with the run's fingerprint (model, adapter, modes, lengths, questions),
    then one answer a line (a Prediction, or another dataclass `item` keyed by `key`), appended and fsynced
    after every chunk of questions. A run with the same fingerprint takes the answers already there and asks
    the model only for the rest; another fingerprint starts the file afresh. The caller removes it once the
    real outputs are written."""

    def __init__(self, path: str | Path, fingerprint: str, item: type = Prediction, key=lambda p: p.id):
        self.path, self.fingerprint, self.item, self.key = Path(path), fingerprint, item, key

    def load(self) -> dict:
        if not self.path.exists():
            return {}
        done = {}
        with self.path.open(encoding="utf-8") as f:
            try:
                head = loads(f.readline() or "{}")
            except json.JSONDecodeError:
                return {}
            if head.get("fingerprint") != self.fingerprint:
                return {}
            for line in f:
                try:
                    p = self.item(**loads(line))
                except (json.JSONDecodeError, TypeError):
                    break  # a line cut off by the kill: everything before it stands
                if isinstance(p, Prediction) and p.answer not in LETTERS:
                    break  # damaged (every answer written is a letter): asked again, from here on
                done[self.key(p)] = p
        return done

    def start(self, done: dict) -> None:
        """Rewrite the file with its header and the answers kept (drops a torn last line)."""
        with atomic_open(self.path) as f:
            f.write(json.dumps({"fingerprint": self.fingerprint}) + "\n")
            f.writelines(_line(p) for p in done.values())

    def resume(self, records: list[Record], keys, chunk: int, work, log=print) -> dict:
        """Every answer `records` need, by key: those already journalled, and `work(part)` run on the rest,
        `chunk` records at a time, each part journalled before the next starts. `keys(record)` are the keys
        of a record's answers (one per question for predict, one per rotation for evaluate); a record with
        any of them missing is asked again whole."""
        done = self.load()
        done = {k: done[k] for r in records for k in keys(r) if k in done}
        todo = [r for r in records if any(k not in done for k in keys(r))]
        if len(todo) < len(records):
            log(f"resuming: {len(records) - len(todo)} of {len(records)} questions from {self.path}")
        self.start(done)
        for s in range(0, len(todo), chunk):
            part = work(todo[s : s + chunk])
            self.append(part)
            done.update((self.key(x), x) for x in part)
        return done

    def append(self, items: list) -> None:
        import os

        with self.path.open("a", encoding="utf-8") as f:
            f.writelines(_line(p) for p in items)
            f.flush()
            os.fsync(f.fileno())


def _line(item) -> str:
    return json.dumps(asdict(item), ensure_ascii=False) + "\n"


def run_fingerprint(records: list[Record], **settings) -> str:
    """What makes two prediction runs the same run: the settings and the questions (ids and texts)."""
    import hashlib

    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for r in records:
        h.update(json.dumps([r.id, r.question, r.options], ensure_ascii=False).encode())
    return h.hexdigest()


def predict_resumable(
    records: list[Record], journal: AnswerJournal, chunk: int, log=print, **kwargs
) -> list[Prediction]:
    """predict_records over `records`, `chunk` questions at a time, each chunk's answers journalled before
    the next starts; answers already in the journal are not asked again. The same answers as one call
    (batched and one-by-one scoring and greedy generation agree: tests/test_predict.py)."""
    done = journal.resume(records, lambda r: [r.id], chunk, lambda part: predict_records(part, **kwargs), log)
    return [done[r.id] for r in records]


def answer_resumably(
    records: list[Record],
    journal_path: str | Path,
    weights: dict,
    *,
    model,
    tokenizer,
    inference: str,
    prompt_mode: str,
    batch_size: int,
    max_new_tokens: int,
    repetition_penalty: float = 1.0,
    share_prefix: bool = False,
    log=print,
) -> list[Prediction]:
    """The predict runner the predict stage and `mcqflow predict` both call: every record answered, eight
    batches at a time, through an answer journal at `journal_path`, so a stopped run started again resumes.
    `weights` names what was loaded (model, adapter, base, quantization, dtype); with the read-out settings
    it is the run's fingerprint, so a journal is taken up only by the same run. The caller removes the
    journal once its own outputs are written."""
    readout = {"inference": inference, "prompt": prompt_mode, "max_new_tokens": max_new_tokens,
               "repetition_penalty": repetition_penalty, "share_prefix": share_prefix}  # fmt: skip
    journal = AnswerJournal(journal_path, run_fingerprint(records, **weights, **readout))
    return predict_resumable(
        records, journal, chunk=8 * batch_size, log=log, model=model, tokenizer=tokenizer, inference=inference,
        prompt_mode=prompt_mode, batch_size=batch_size, max_new_tokens=max_new_tokens,
        repetition_penalty=repetition_penalty, share_prefix=share_prefix,
    )  # fmt: skip
