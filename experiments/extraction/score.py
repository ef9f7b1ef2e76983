"""Answer extraction on real model outputs nobody tuned the rules for: the embedded Qwen2.5-Coder-0.5B-Instruct
answering sample questions in the prompt styles of rounds.yaml (generate.py), each output
labelled by hand (`label`: the letter the output commits to, null when it commits to none) before it was
scored. Prints each round's rate and its misses.

Usage: python experiments/extraction/score.py [experiments/extraction/round4.jsonl ...]"""

import json
import sys
from pathlib import Path

from mcqflow.evaluation.extract.rules import extract_answer


def main() -> None:
    rounds = [p for p in Path(__file__).parent.glob("round*.jsonl") if p.stem[5:].isdigit()]
    files = sys.argv[1:] or [str(p) for p in sorted(rounds, key=lambda p: int(p.stem[5:]))]
    for path in files:
        rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line]
        misses = []
        for i, r in enumerate(rows):
            got = extract_answer(r["text"], r["options"])
            if got.answer != r["label"]:
                misses.append(
                    f"  {i} {r['id']} {r['style']}: label {r['label']}, read {got.answer} ({got.method})"
                )
        ok = len(rows) - len(misses)
        print(f"{path}: {ok}/{len(rows)} = {ok / len(rows):.1%}")
        print("\n".join(misses))


if __name__ == "__main__":
    main()
