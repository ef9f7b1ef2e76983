"""Where a GPU waits: the idle gaps between kernels in a Chrome trace of a few training micro-batches
(`MCQFLOW_BENCH_TIMELINE=folder mcqflow bench ...`, which writes `grpo-<variant>.json.gz`, and a whole SFT step
as `sft-<variant>.json.gz`), and what the host was doing in each; then the GPU's time by kernel.

For each gap between the GPU's kernels (copies and memsets count as busy) the host threads' operators that
span the gap's midpoint are found: the innermost (what the host was executing) and the outermost (which
phase: `mcqflow::forward_and_loss` is the forward and TRL's loss; the rest of a micro-batch is backward and
the trainer's own work). Gaps are summed by both. A GPU that waits on a host busy with small launches shows
many short gaps under the operators that launch them; a host that waited for the GPU (a `.item()`, a
`cudaStreamSynchronize`) shows as a gap right after the wait ended.

Usage: python bench/timeline_gaps.py TRACE.json.gz [--top N] [--min-us U]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import Counter, defaultdict

GPU_CATS = {"kernel", "gpu_memcpy", "gpu_memset"}
HOST_CATS = {"cpu_op", "user_annotation"}


def load(path: str) -> list[dict]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    return [e for e in data.get("traceEvents", []) if e.get("ph") == "X" and "dur" in e]


def busy_intervals(events: list[dict]) -> list[tuple[float, float]]:
    """The GPU's busy time as disjoint [start, end) intervals (µs), all streams together."""
    spans = sorted(
        (float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in events if e.get("cat") in GPU_CATS
    )
    merged: list[list[float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def gaps_of(busy: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(b0[1], b1[0]) for b0, b1 in zip(busy[:-1], busy[1:], strict=True) if b1[0] > b0[1]]


def host_context(events: list[dict], points: list[float]) -> list[tuple[str, str]]:
    """For each time in `points` (ascending): (innermost, outermost) host operator spanning it, over every
    host thread (the innermost of the deepest stack), or ("(none)", "(none)")."""
    by_thread: dict = defaultdict(list)
    for e in events:
        if e.get("cat") in HOST_CATS:
            by_thread[(e.get("pid"), e.get("tid"))].append(
                (float(e["ts"]), float(e["ts"]) + float(e["dur"]), e["name"])
            )
    answers: list[list] = [[0, "(none)", "(none)"] for _ in points]  # depth, innermost, outermost
    for ops in by_thread.values():
        ops.sort(key=lambda o: (o[0], -o[1]))
        stack: list[tuple[float, float, str]] = []
        i = 0
        for k, t in enumerate(points):
            while i < len(ops) and ops[i][0] <= t:
                while stack and stack[-1][1] <= ops[i][0]:
                    stack.pop()
                stack.append(ops[i])
                i += 1
            while stack and stack[-1][1] <= t:
                stack.pop()
            live = [o for o in stack if o[1] > t]
            if live and len(live) > answers[k][0]:
                answers[k] = [len(live), live[-1][2], live[0][2]]
    return [(a[1], a[2]) for a in answers]


def report(path: str, top: int = 15, min_us: float = 0.0) -> str:
    events = load(path)
    busy = busy_intervals(events)
    if not busy:
        return f"{path}: no GPU kernels in the trace"
    window = busy[-1][1] - busy[0][0]
    span = max(float(e["ts"]) + float(e["dur"]) for e in events) - min(float(e["ts"]) for e in events)
    on = sum(b - a for a, b in busy)
    gaps = [g for g in gaps_of(busy) if g[1] - g[0] >= min_us]
    idle = sum(b - a for a, b in gaps)
    context = host_context(events, [(a + b) / 2 for a, b in gaps])
    inner, outer = Counter(), Counter()
    for (a, b), (i, o) in zip(gaps, context, strict=True):
        inner[i] += b - a
        outer[o] += b - a
    sizes = Counter()
    for a, b in gaps:
        d = b - a
        sizes["< 10 µs" if d < 10 else "10-100 µs" if d < 100 else "0.1-1 ms" if d < 1000 else ">= 1 ms"] += d
    syncs = [e for e in events if e.get("cat") == "cuda_runtime" and "Synchronize" in e["name"]]
    kernels, calls = Counter(), Counter()
    for e in events:
        if e.get("cat") in GPU_CATS:
            kernels[e["name"][:90]] += float(e["dur"])
            calls[e["name"][:90]] += 1
    lines = [
        f"{path}",
        f"trace {span / 1e3:.1f} ms, host included: GPU busy {on / span:.0%} of it",
        f"window {window / 1e3:.1f} ms: GPU busy {on / 1e3:.1f} ms ({on / window:.0%}), "
        f"idle {idle / 1e3:.1f} ms in {len(gaps)} gaps",
        f"host waits for the GPU: {len(syncs)} synchronize calls, {sum(e['dur'] for e in syncs) / 1e3:.1f} ms",
        "idle by gap length: " + ", ".join(f"{k} {v / 1e3:.1f} ms" for k, v in sizes.items()),
        "",
        "idle by the outermost host operator (phase):",
        *(f"  {v / 1e3:9.1f} ms  {k[:100]}" for k, v in outer.most_common(top)),
        "",
        "idle by the innermost host operator:",
        *(f"  {v / 1e3:9.1f} ms  {k[:100]}" for k, v in inner.most_common(top)),
        "",
        "GPU time by kernel (calls):",
        *(f"  {v / 1e3:9.1f} ms  {calls[k]:5d}  {k}" for k, v in kernels.most_common(top)),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("traces", nargs="+")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--min-us", type=float, default=0.0, help="leave out gaps shorter than this")
    args = ap.parse_args(argv)
    for path in args.traces:
        try:
            print(report(path, args.top, args.min_us), end="\n\n")
        except (OSError, ValueError) as e:
            print(f"{path}: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
