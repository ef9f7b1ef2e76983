"""Scoring protocols for labelled MCQ files (`mcqflow evaluate`), the way evaluation suites score them.

- `letter`: the next-token logits of A–D after the prompt (lm-evaluation-harness's multiple-choice
  letter style); the predict stage's plain read-out.
- `calibrated`: letter scoring with contextual calibration (Zhao et al., 2021): the model's prior over the
  four letters is estimated from content-free prompts of the same template (question and options "N/A",
  "[MASK]", empty) and divided out. The prior never comes from the evaluated labels.
- `cloze`: each option's text scored as the answer to the question alone (no options shown), by its
  mean token log-likelihood (the OpenCompass / lm-eval "ppl" style, length-normalised per token): knowledge
  without the letter's position bias.
- `generate`: greedy generation and answer extraction, as predict does for reasoning models.

`circular` (OpenCompass's CircularEval) scores the four rotations of the options: a question counts only
if all four are right, and the accuracy of each rotation makes the position bias a number. `shots` puts k
solved examples before each question as earlier chat turns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import torch
from tqdm import tqdm

from mcqflow.core.errors import UserError
from mcqflow.core.prompts import cloze_prompt, render_prompt
from mcqflow.core.schema import LETTERS, Record
from mcqflow.evaluation.metrics import wilson_interval
from mcqflow.evaluation.predict import AnswerJournal, Prediction, letter_probs, predict_records

PROTOCOLS = ("letter", "calibrated", "cloze", "generate")
CONTENT_FREE = ("N/A", "[MASK]", "")


def rotate(rec: Record, r: int) -> Record:
    """The options shifted by `r` places: option A of rotation r is option LETTERS[r] of the original.
    The gold letter moves with its option."""
    options = {LETTERS[j]: rec.options[LETTERS[(j + r) % 4]] for j in range(4)}
    answer = None if rec.answer is None else LETTERS[(LETTERS.index(rec.answer) - r) % 4]
    return replace(rec, options=options, answer=answer)


def unrotate(letter: str, r: int) -> str:
    """A letter answered under rotation `r`, as the letter of the original option."""
    return LETTERS[(LETTERS.index(letter) + r) % 4]


def content_free_prior(
    model, tokenizer, lang: str, mode: str, shots: list[Record], batch_size: int
) -> list[float]:
    """The model's mean P(A..D) over content-free questions of the same template."""
    free = [
        Record(id=f"cf-{i}", question=t, options=dict.fromkeys(LETTERS, t), lang=lang)
        for i, t in enumerate(CONTENT_FREE)
    ]
    probs = letter_probs(
        model, tokenizer, [render_prompt(tokenizer, r, mode, shots) for r in free], batch_size
    )
    return [sum(p[k] for p in probs) / len(probs) for k in range(4)]


@torch.inference_mode()
def cloze_scores(model, tokenizer, records: list[Record], batch_size: int = 16) -> list[list[float]]:
    """Per question, the mean log-probability of each option's tokens after the question (A..D).

    The question runs once: its key/value cache is repeated for its four options, which run only their
    own tokens after it (`batch_size` option rows a batch, so a quarter as many questions). The same
    numbers as one forward pass of question + option per option (tests/test_evaluate.py), with the
    question's tokens through the model once instead of four times."""
    prefixes, options = [], []
    for rec in records:
        prefixes.append(tokenizer(cloze_prompt(tokenizer, rec), add_special_tokens=False).input_ids)
        options.append([tokenizer(rec.options[k], add_special_tokens=False).input_ids for k in LETTERS])
        empty = [k for k, ids in zip(LETTERS, options[-1], strict=True) if not ids]
        if empty:
            raise UserError(
                f"{rec.source or rec.id}: option {empty[0]} is empty; cloze scoring needs its text"
            )
    out = [[0.0] * 4 for _ in records]
    per_batch = max(1, batch_size // 4)
    order = sorted(range(len(records)), key=lambda i: -len(prefixes[i]))  # like lengths share a batch
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with tqdm(total=4 * len(records), desc="cloze", unit="option", dynamic_ncols=True) as bar:
        for s in range(0, len(order), per_batch):
            qs = order[s : s + per_batch]
            b, n = len(qs), max(len(prefixes[i]) for i in qs)
            ids = torch.full((b, n), pad_id, dtype=torch.long)
            mask = torch.zeros((b, n), dtype=torch.long)
            for r, i in enumerate(qs):  # left padding: every question ends where its options start
                ids[r, n - len(prefixes[i]) :] = torch.tensor(prefixes[i])
                mask[r, n - len(prefixes[i]) :] = 1
            ids, mask = ids.to(model.device), mask.to(model.device)
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            first = model(
                input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1
            )
            cache = first.past_key_values
            cache.batch_repeat_interleave(4)
            first_logp = first.logits[:, -1].float().log_softmax(-1).repeat_interleave(4, 0)  # [4b, V]
            rows = [opt for i in qs for opt in options[i]]
            m = max(len(o) for o in rows)
            oids = torch.full((4 * b, m), pad_id, dtype=torch.long)
            omask = torch.zeros((4 * b, m), dtype=torch.long)
            for r, opt in enumerate(rows):  # right padding: padded places come after every real one
                oids[r, : len(opt)] = torch.tensor(opt)
                omask[r, : len(opt)] = 1
            oids, omask = oids.to(model.device), omask.to(model.device)
            start = mask.sum(-1, keepdim=True).repeat_interleave(4, 0)  # each question's real length
            logits = model(
                input_ids=oids,
                attention_mask=torch.cat([mask.repeat_interleave(4, 0), omask], dim=1),
                position_ids=start + torch.arange(m, device=model.device),
                past_key_values=cache,
            ).logits.float()
            # token t of an option is predicted by the position before it: the question's last for t = 0
            later = (
                logits[:, :-1].log_softmax(-1).gather(-1, oids[:, 1:, None]).squeeze(-1) if m > 1 else None
            )
            head = first_logp.gather(-1, oids[:, :1]).squeeze(-1)
            for r, opt in enumerate(rows):
                total = head[r] + (later[r, : len(opt) - 1].sum() if later is not None else 0.0)
                out[qs[r // 4]][r % 4] = float(total) / len(opt)
            bar.update(4 * b)
    return out


@dataclass
class Scored:
    """One question under one rotation: the predicted original letter and the per-letter scores."""

    id: str
    rotation: int
    answer: str
    gold: str | None
    scores: list[float] | None
    method: str


def score(
    records: list[Record],
    model,
    tokenizer,
    protocol: str = "letter",
    rotations: tuple[int, ...] = (0,),
    shots: list[Record] | None = None,
    prompt_mode: str = "plain",
    batch_size: int = 16,
    max_new_tokens: int = 512,
    repetition_penalty: float = 1.0,
) -> list[Scored]:
    if protocol not in PROTOCOLS:
        raise UserError(f"protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    shots = list(shots or [])
    langs = {r.lang for r in records}
    priors = {
        lang: content_free_prior(model, tokenizer, lang, prompt_mode, shots, batch_size)
        for lang in sorted(langs)
        if protocol == "calibrated"
    }
    # Cloze scores each option's text without showing letters: a rotation only relabels them.
    cloze = cloze_scores(model, tokenizer, records, batch_size) if protocol == "cloze" else None
    out: list[Scored] = []
    for r in rotations:
        recs = [rotate(rec, r) for rec in records]
        if protocol == "generate":
            preds = predict_records(
                recs,
                model,
                tokenizer,
                "generate",
                prompt_mode,
                batch_size,
                max_new_tokens,
                shots=shots,
                repetition_penalty=repetition_penalty,
            )
            out += [
                Scored(rec.id, r, unrotate(p.answer, r), records[i].answer, None, p.method)
                for i, (rec, p) in enumerate(zip(recs, preds, strict=True))
            ]
            continue
        if cloze is not None:
            table = [[c[(j + r) % 4] for j in range(4)] for c in cloze]
        else:
            prompts = [render_prompt(tokenizer, rec, prompt_mode, shots) for rec in recs]
            table = letter_probs(model, tokenizer, prompts, batch_size)
            if protocol == "calibrated":
                table = [_calibrate(p, priors[rec.lang]) for p, rec in zip(table, recs, strict=True)]
        for i, (rec, s) in enumerate(zip(recs, table, strict=True)):
            best = LETTERS[max(range(4), key=s.__getitem__)]
            out.append(Scored(rec.id, r, unrotate(best, r), records[i].answer, s, protocol))
    return out


def journal_for(path, fingerprint: str) -> AnswerJournal:
    """The journal of an evaluate run: one Scored a line, keyed by (question, rotation)."""
    return AnswerJournal(path, fingerprint, item=Scored, key=lambda s: (s.id, s.rotation))


def score_resumable(
    records: list[Record],
    journal: AnswerJournal,
    chunk: int,
    log=print,
    rotations: tuple[int, ...] = (0,),
    **kwargs,
) -> list[Scored]:
    """score over `records`, `chunk` questions at a time (each with all its rotations), each chunk journalled
    before the next starts; questions already in the journal are not asked again. The same scores, in the
    same order, as one call of score (batched and one-by-one scoring agree: tests/test_predict.py)."""
    done = journal.resume(
        records,
        lambda rec: [(rec.id, r) for r in rotations],
        chunk,
        lambda part: score(part, rotations=rotations, **kwargs),
        log,
    )
    return [done[(rec.id, r)] for r in rotations for rec in records]


def _calibrate(p: list[float], prior: list[float]) -> list[float]:
    q = [x / max(w, 1e-12) for x, w in zip(p, prior, strict=True)]
    total = sum(q)
    return [x / total for x in q]


def summarize(scored: list[Scored], rotations: tuple[int, ...]) -> dict:
    """Accuracy with its Wilson interval; under several rotations also the circular accuracy (right under
    every rotation) and the accuracy of each rotation."""
    by_id: dict[str, list[Scored]] = {}
    for s in scored:
        by_id.setdefault(s.id, []).append(s)
    labelled = {k: v for k, v in by_id.items() if v[0].gold is not None}
    n = len(labelled)
    first = [v[0] for v in labelled.values()]
    k = sum(s.answer == s.gold for s in first)
    lo, hi = wilson_interval(k, n)
    shares = {L: 0 for L in LETTERS}
    for s in scored:
        shown = LETTERS[(LETTERS.index(s.answer) - s.rotation) % 4]  # the letter the model said
        shares[shown] += 1
    m = {
        "n": n,
        "accuracy": round(k / n, 4) if n else 0.0,
        "accuracy_ci95_low": round(lo, 4),
        "accuracy_ci95_high": round(hi, 4),
        "letter_share": {L: round(c / len(scored), 4) if scored else 0.0 for L, c in shares.items()},
    }
    if len(rotations) > 1:
        kc = sum(all(s.answer == s.gold for s in v) for v in labelled.values())
        clo, chi = wilson_interval(kc, n)
        m["circular_accuracy"] = round(kc / n, 4) if n else 0.0
        m["circular_ci95_low"], m["circular_ci95_high"] = round(clo, 4), round(chi, 4)
        m["rotation_accuracy"] = {
            str(r): round(
                sum(s.answer == s.gold for v in labelled.values() for s in v if s.rotation == r) / n, 4
            )
            if n
            else 0.0
            for r in rotations
        }
    return m


def as_prediction(s: Scored) -> Prediction:
    raw = json.dumps({"rotation": s.rotation, "scores": s.scores})
    return Prediction(s.id, s.answer, s.method, raw, None, s.gold)
