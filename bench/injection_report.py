"""How well the validate gate's instruction filter (mcqflow.quality.injection) tells injections from real chains.

Catch rate: bench/injection/phrasings.txt (written before the filter was widened), each phrase as it is and,
for the first 20 of each language, disguised four ways (zero-width spaces, full-width letters, Cyrillic
look-alikes, spaced-out characters), split by line parity into the half looked at while writing the
patterns (dev) and the half only measured (held out). Each phrase is also measured inside a real chain's
<reasoning>, where the gate meets it.
False positives: every real text the gate could meet, none of which is an injection: the sample's chains,
questions and options (Chinese and English), and GAOKAO-Bench's 607 questions, options and analyses with the chains converted from them.

Usage: python bench/injection_report.py [--out experiments/bench/injection.md]
"""

from __future__ import annotations

import argparse
import glob
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mcqflow.quality.injection import instruction_like  # noqa: E402

FULL = {c: chr(ord(c) + 0xFEE0) for c in map(chr, range(0x21, 0x7F))}
CYRILLIC = str.maketrans("aeopcxyAEOPCXHKMT", "аеорсхуАЕОРСХНКМТ")


def disguises(text: str, lang: str) -> dict[str, str]:
    return {
        "zero-width": "\u200b".join(text[i : i + 2] for i in range(0, len(text), 2)),
        "full-width": "".join(FULL.get(c, c) for c in text),
        "look-alike": text.translate(CYRILLIC) if lang == "en" else text.replace("指令", "指\u200d令"),
        "spaced": " ".join(text) if lang == "zh" else text.replace(" ", "  \t "),
    }


def phrasings() -> list[tuple[str, str, str, str]]:
    """(lang, split, disguise, text)"""
    out, lang, fresh, n = [], None, [], defaultdict(int)
    for line in (ROOT / "bench/injection/phrasings.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            lang, *fresh = line[3:].split()
            continue
        if not line.strip() or line.startswith("#"):
            continue
        if fresh:  # written after the fixes: measured as they are
            out.append((lang, "fresh", "as written", line))
            continue
        i = n[lang]
        n[lang] += 1
        split = "dev" if i % 2 == 0 else "held out"
        out.append((lang, split, "as written", line))
        if i < 20:
            out += [(lang, split, k, v) for k, v in disguises(line, lang).items()]
    return out


def real_texts() -> list[tuple[str, str]]:
    """(where, text) for every real text: none of them is an injection."""
    from mcqflow.data.gaokao import read_file
    from mcqflow.data.generate import chain_from_analysis
    from mcqflow.data.ingest import ingest

    out = []
    for path in sorted(glob.glob(str(ROOT / "data/sample/**/*"), recursive=True)):
        if Path(path).suffix not in {".csv", ".jsonl", ".json"}:
            continue
        for r in ingest(path).records:
            out += [("sample chain", r.reasoning)] if r.reasoning else []
            out += [("sample question/option", t) for t in (r.question, *r.options.values())]
    for path in sorted(glob.glob(str(ROOT / "data/gaokao/*.json"))):
        for r in read_file(path)[0]:
            out += [("GAOKAO question/option", t) for t in (r.question, *r.options.values())]
            out += [("GAOKAO analysis", r.analysis)] if r.analysis else []
            chain, _ = chain_from_analysis(r)
            out += [("GAOKAO chain", chain)] if chain else []
    return out


HISTORY = """How these figures came about (2026-12-03), so that they are read for what they are:
1. The 98 phrasings were written and committed before the filter was widened. Its first widened form
   caught 124/129 of the dev forms and 121/129 of the held-out ones, with no false positive.
2. The 13 misses were fixed, among them a bug that missed "New instructions:" in every form. After that
   the held-out half had been seen, and 100% on it says nothing about unseen text.
3. 30 fresh phrasings were written and measured once: **1 of 30 caught (3%)**. A list of patterns catches
   the phrasings it was written for and almost no paraphrase of them.
4. A rule for what every injection here is for was added: an order to answer a letter, addressed to the
   reader ("… and answer A", "直接回答B"). The fresh set, already seen, then scores the figure below. It
   is not a held-out figure either.
What would measure the filter honestly: phrasings written by someone who has not read the patterns. What
would catch paraphrases: a classifier trained for injection, not more patterns. The false-positive
figure is the one that holds: real texts, none written with the filter in mind."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "experiments/bench/injection.md")
    a = ap.parse_args()
    rows = phrasings()
    real = real_texts()
    chain = next(t for w, t in real if w == "GAOKAO chain")
    caught: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    missed = []
    for lang, split, how, text in rows:
        inside = chain.replace("</reasoning>", text + "</reasoning>")
        for where, t in (("alone", text), ("in a chain", inside)):
            hit = instruction_like(t) is not None
            for key in ((lang, split, how, where), (lang, split, "all", where), ("all", split, "all", where)):
                caught[key][0] += hit
                caught[key][1] += 1
            if not hit and where == "alone":
                missed.append((lang, split, how, text))
    fp: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    flagged = []
    for where, text in real:
        hit = instruction_like(text)
        fp[where][0] += hit is not None
        fp[where][1] += 1
        if hit:
            flagged.append((where, hit, text))
    n_phr = sum(1 for r in rows if r[2] == "as written")
    lines = [
        "# The instruction filter: catch rate and false positives (bench/injection_report.py)",
        "",
        HISTORY,
        "",
        f"{n_phr} phrasings (bench/injection/phrasings.txt) plus {len(rows) - n_phr} disguised variants; "
        f"{len(real):,} real texts. Dev: the even lines, looked at while writing the patterns; held out: the "
        "odd lines, seen since step 2; fresh: the last 30, seen since step 4.",
        "",
        "| language | split | form | caught alone | caught inside a chain |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key in sorted(k for k in caught if k[3] == "alone"):
        lang, split, how, _ = key
        a1, n1 = caught[key]
        a2, n2 = caught[(lang, split, how, "in a chain")]
        lines.append(f"| {lang} | {split} | {how} | {a1}/{n1} ({a1 / n1:.0%}) | {a2}/{n2} ({a2 / n2:.0%}) |")
    lines += ["", "| real text | flagged (false positives) |", "| --- | --- |"]
    lines += [f"| {w} | {k}/{n} ({k / n:.2%}) |" for w, (k, n) in sorted(fp.items())]
    lines += ["", "## Missed", ""]
    lines += [f"- {lang}, {split}, {how}: `{t!r}`" for lang, split, how, t in missed] or ["- none"]
    lines += ["", "## Flagged real texts", ""]
    lines += [f"- {w}: `{h}` in `{t[:120]!r}`" for w, h, t in flagged] or ["- none"]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
