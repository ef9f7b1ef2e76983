import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mcqflow.benchmark.bench import Shapes, check_targets, make_records, run, sft_length
from mcqflow.modeling.models import load_tokenizer


def test_smoke_run_measures_every_path_against_vanilla_and_writes_results(tmp_path):
    res = run("tiny", tmp_path / "results", tmp_path / "work", shapes=Shapes.smoke(), log=lambda _: None)
    rows = {(r["bench"], r["variant"]): r for r in res.rows}
    assert rows[("sft", "vanilla-qlora")]["skipped"] == "NF4 needs a CUDA GPU"  # said, not silently left out
    for key, unit in [
        (("sft", "fast-bf16-padded"), "tokens_per_s"),
        (("sft", "fast-bf16"), "tokens_per_s"),
        (("sft", "fast-bf16-padded-ragged"), "tokens_per_s"),
        (("sft", "fast-bf16-ragged"), "tokens_per_s"),
        (("predict", "vanilla-generate"), "questions_per_s"),
        (("predict", "vanilla-forward"), "questions_per_s"),
        (("predict", "fast-letter"), "questions_per_s"),
        (("predict", "evaluate-circular"), "questions_per_s"),
        (("predict", "evaluate-cloze"), "questions_per_s"),
        (("grpo", "vanilla"), "completions_per_s"),
        (("grpo", "fast-hf-generate"), "completions_per_s"),
        (("grpo", "fast"), "completions_per_s"),
        (("grpo", "fast-hf-generate-ragged"), "completions_per_s"),
        (("grpo", "fast-ragged"), "completions_per_s"),
    ]:
        assert rows[key][unit] > 0, key
    # Ragged shapes: SFT examples of drawn lengths, packed (same loss as padded); GRPO completions of drawn
    # lengths; every GRPO row says where its step's time went.
    assert rows[("sft", "fast-bf16-ragged")]["padding_free"] is True
    assert abs(rows[("sft", "fast-bf16-ragged")]["loss_vs_padded"]) < 1e-3
    assert rows[("grpo", "fast-ragged")]["new_tokens"] == Shapes.smoke().grpo_ragged_max
    # The sampled tokens are counted, not assumed: forced ends drawn from [min, max] average inside it
    smoke = Shapes.smoke()
    ragged = rows[("grpo", "fast-ragged")]
    assert smoke.grpo_ragged_min <= ragged["mean_completion_tokens"] <= smoke.grpo_ragged_max
    assert ragged["completion_tokens_per_s"] > 0
    assert rows[("grpo", "fast")]["mean_completion_tokens"] == smoke.grpo_new_tokens  # random: to the cap
    assert rows[("predict", "fast-letter")]["prompt_tokens"] > 0
    letter = rows[("predict", "fast-letter")]
    assert letter["prompt_tokens_per_s"] == pytest.approx(
        letter["questions_per_s"] * letter["prompt_tokens"], rel=0.01
    )
    for bench, steps in (("sft", smoke.sft_steps), ("grpo", smoke.grpo_steps)):
        timed = [r for r in res.rows if r["bench"] == bench and "steps_s" in r]
        assert timed and all(len(r["steps_s"]) == steps for r in timed), bench  # each step, warm-up too
    split = rows[("grpo", "fast")]["split_s"]
    assert split["generation"] > 0 and split["forward_backward"] > 0
    assert abs(sum(v for k, v in split.items() if k != "total") - split["total"]) < 0.01
    assert (
        rows[("grpo", "fast")]["completions_per_step"]
        == 2 * rows[("grpo", "vanilla")]["completions_per_step"]
    )
    saved = list((tmp_path / "results").glob("*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["device"] == res.device
    table = saved[0].with_suffix(".md").read_text()
    assert "| grpo | fast |" in table and "x |" in table
    assert "| fast-ragged |" in table  # the step split table


def test_benchmark_records_fill_the_token_budget(tiny_dir):
    tok = load_tokenizer(tiny_dir)
    recs = make_records(tok, 12, 200, "sft")
    lengths = [sft_length(tok, r) for r in recs]
    assert all(180 <= n <= 200 for n in lengths), lengths
    assert sorted({r.answer for r in recs}) == ["A", "B", "C", "D"]


def test_targets_are_checked_against_the_issue_goals():
    rows = [
        {"bench": "sft", "variant": "vanilla-qlora", "profile": "vanilla", "tokens_per_s": 5000},
        {"bench": "sft", "variant": "fast-bf16", "profile": "fast", "tokens_per_s": 12500},
        {"bench": "predict", "variant": "fast-letter", "questions_per_s": 250},
        {"bench": "grpo", "variant": "vanilla", "profile": "vanilla", "completions_per_s": 0.5},
        {"bench": "grpo", "variant": "fast", "profile": "fast", "completions_per_s": 21.0},
        # The ragged shapes, each against round 1's fast on the same shape; their rates never count as the
        # fixed-shape figures.
        {"bench": "sft", "variant": "fast-bf16-padded-ragged", "profile": "fast-padded", "shape": "ragged",
         "tokens_per_s": 10000, "padding_free": False},
        {"bench": "sft", "variant": "fast-bf16-ragged", "profile": "fast", "shape": "ragged",
         "tokens_per_s": 30000, "padding_free": True},
        {"bench": "grpo", "variant": "fast-hf-generate-ragged", "profile": "fast-hf-generate",
         "shape": "ragged", "completions_per_s": 5.0},
        {"bench": "grpo", "variant": "fast-ragged", "profile": "fast", "shape": "ragged",
         "completions_per_s": 9.0},
    ]  # fmt: skip
    met = {c["target"]: (c["value"], c["met"]) for c in check_targets(rows)}
    assert met == {
        "sft tokens/s": (12500, False),
        "sft ratio to vanilla QLoRA": (2.5, True),
        "sft ragged: fast-bf16-ragged over padded batches": (3.0, True),
        "sft ragged: fast-bf16-ragged of the fixed shape's rate": (2.4, True),
        "predict letter questions/s": (250, True),
        "grpo completions/s": (21.0, True),
        "grpo ratio to vanilla TRL": (42.0, True),
        "grpo ragged: fast-ragged over HF generate": (1.8, False),
    }  # no card named: the H200's rates are not checked


def test_issue_33s_rates_are_checked_on_an_h200_and_ragged_sft_against_its_fixed_shape_anywhere():
    """Run 0419's rows (an H200, before `fast` took `fused_swiglu`): SFT 24,113 tokens/s under 25,000, ragged
    GRPO 15.45 under 16, ragged SFT (one step of 3.7 s in the allocator) 56% of the fixed shape's rate."""
    saved = Path(__file__).parents[1] / "experiments/bench/2026-12-07-0419-qwen2.5-7b-nvidia-h200.json"
    res = json.loads(saved.read_text())
    met = {c["target"]: (c["value"], c["met"]) for c in check_targets(res["rows"], device=res["device"])}
    assert met["sft tokens/s on an H200"] == (24113.2, False)
    assert met["grpo ragged completions/s on an H200"] == (15.45, False)
    assert met["sft ragged: fast-bf16-ragged of the fixed shape's rate"] == (0.56, False)
    assert met["sft ratio to vanilla QLoRA"] == (3.87, True)  # the earlier rounds' targets still checked
    # Above the goals they are met; a lever's variant or vanilla is not today's `fast`; other cards are not
    # held to the H200's rates
    rows = [
        {"bench": "sft", "variant": "fast-bf16", "profile": "fast", "tokens_per_s": 25500.0},
        {"bench": "sft", "variant": "fast-bf16-ragged", "profile": "fast", "shape": "ragged",
         "padding_free": True, "tokens_per_s": 24500.0},
        {"bench": "grpo", "variant": "fast-ragged", "profile": "fast", "shape": "ragged", "completions_per_s": 16.2},
        {"bench": "grpo", "variant": "fast-no-prefill-once-ragged", "profile": "fast-no-prefill-once",
         "shape": "ragged", "completions_per_s": 17.0},
        {"bench": "sft", "variant": "fast-fused-qkv-bf16", "profile": "fast-fused-qkv", "tokens_per_s": 26000.0},
    ]  # fmt: skip
    met = {c["target"]: (c["value"], c["met"]) for c in check_targets(rows, device="NVIDIA H200")}
    assert met["sft tokens/s on an H200"] == (25500.0, True)
    assert met["grpo ragged completions/s on an H200"] == (16.2, True)
    assert met["sft ragged: fast-bf16-ragged of the fixed shape's rate"] == (0.96, True)
    h100 = {c["target"] for c in check_targets(rows, device="NVIDIA H100 80GB HBM3")}
    assert "sft ragged: fast-bf16-ragged of the fixed shape's rate" in h100
    assert not any("H200" in t for t in h100)


def test_multi_gpu_scaling_is_checked_against_the_one_gpu_run_of_the_same_variant():
    one = [{"bench": "sft", "variant": "fast-bf16", "processes": 1, "tokens_per_s": 14000}]
    two = [
        {"bench": "sft", "variant": "fast-bf16", "processes": 2, "tokens_per_s": 27000},
        {
            "bench": "sft",
            "variant": "fast-bf16-micro16",
            "processes": 2,
            "tokens_per_s": 20000,
        },  # no baseline
        {"bench": "grpo", "variant": "fast", "profile": "fast", "processes": 2, "completions_per_s": 16.0},
    ]
    checks = check_targets(two, one)
    assert [(c["target"], c["value"], c["met"]) for c in checks] == [
        ("sft fast-bf16 on 2 GPUs over 1", 1.93, True)
    ]  # and the one-GPU targets are not judged on a two-GPU sum
    assert not check_targets([{**two[0], "tokens_per_s": 20000}], one)[0]["met"]


@pytest.mark.slow
def test_bench_runs_under_two_processes_and_rank_0_alone_writes(tmp_path):
    """`--processes 2` on a CPU: weights built once, two gloo ranks each doing the one-process work
    (twice the global batch), one results file, one table, scaling against the baseline's variant."""
    root = Path(__file__).resolve().parents[1]
    base = run("tiny", tmp_path / "one", tmp_path / "work", only=("sft",), shapes=Shapes.smoke(),
               log=lambda _: None, sft_variants=["fast-bf16"])  # fmt: skip
    baseline = next((tmp_path / "one").glob("*.json"))
    cmd = [sys.executable, "-m", "mcqflow.cli", "bench", "--arch", "tiny", "--smoke", "--processes", "2",
           "--only", "sft,grpo", "--sft-variants", "fast-bf16", "--grpo-variants", "fast",
           "--out", str(tmp_path / "two"), "--work", str(tmp_path / "work"), "--baseline", str(baseline)]  # fmt: skip
    r = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("# mcqflow bench: tiny") == 1  # rank 0 prints, rank 1 does not
    saved = list((tmp_path / "two").glob("*.json"))
    assert len(saved) == 1 and saved[0].name.endswith("-x2.json")
    res = json.loads(saved[0].read_text())
    assert res["processes"] == 2 and res["baseline"] == str(baseline)
    rows = {(x["bench"], x["variant"]): x for x in res["rows"]}
    sft, one = rows[("sft", "fast-bf16")], base.rows[0]
    assert sft["processes"] == 2 and sft["effective_batch"] == 2 * one["effective_batch"]
    assert sft["micro_batch"] == one["micro_batch"]  # each rank does what one process did alone
    assert rows[("grpo", "fast")]["completions_per_s"] > 0
    assert "| sft | fast-bf16 | 8 x 1 x 2 GPUs |" in saved[0].with_suffix(".md").read_text()


def test_random_weights_are_written_shard_by_shard_and_load_whole(tmp_path):
    """The writer never holds the model at once: with 0.2 GiB shards the 0.5B architecture (tied
    embeddings) comes out in several files that transformers loads with nothing missing or left over."""
    from transformers import AutoModelForCausalLM

    from mcqflow.benchmark.bench import corpus
    from mcqflow.modeling.models import build_random, train_tokenizer

    out = build_random("qwen2.5-0.5b", train_tokenizer(corpus(), 3000), tmp_path / "m", shard_gib=0.2)
    shards = sorted(p.name for p in out.glob("*.safetensors"))
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert len(shards) >= 4 and set(index["weight_map"].values()) == set(shards)
    assert not list(out.glob("*.tmp.*"))
    assert "lm_head.weight" not in index["weight_map"]  # tied: saved once, as the embedding
    model, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert model.lm_head.weight is model.model.embed_tokens.weight
    q = model.model.layers[3].self_attn.q_proj
    assert abs(q.weight.float().std().item() - model.config.initializer_range) < 2e-3
    assert q.bias.abs().sum() == 0 and (model.model.norm.weight == 1).all()


def test_shapes_take_key_value_changes_and_name_the_keys_on_a_typo():
    from mcqflow.core.errors import UserError

    s = Shapes().replace(["sft_batch=4", "grpo_new_tokens=64"])
    assert (s.sft_batch, s.grpo_new_tokens, s.sft_tokens) == (4, 64, Shapes().sft_tokens)
    with pytest.raises(
        UserError, match="--shape sft_bach=4: expected KEY=INTEGER with KEY one of .*sft_batch"
    ):
        Shapes().replace(["sft_bach=4"])


def test_scaling_compares_each_variant_with_the_run_of_fewer_gpus():
    from mcqflow.benchmark.bench import BenchResult, markdown, scaling

    two = [{"bench": "sft", "variant": "memory-bf16", "processes": 2, "tokens_per_s": 4000.0}]
    four = [
        {"bench": "sft", "variant": "memory-bf16", "processes": 4, "tokens_per_s": 7000.0, "step_s": 2.0,
         "peak_gib": 21.7, "peak_gib_per_gpu": [21.7, 21.5, 21.7, 21.6], "micro_batch": 16, "grad_accum": 1},
        {"bench": "sft", "variant": "fast-bf16", "processes": 4, "tokens_per_s": 9000.0},  # no 2-GPU run
    ]  # fmt: skip
    (row,) = scaling(four, two)
    assert (row["speedup"], row["ideal"], row["efficiency"]) == (1.75, 2.0, 0.875)
    assert scaling(two, four) == []  # a run is never scaled against one of more GPUs
    res = BenchResult("qwen2.5-32b", "H200", {}, {}, processes=4, rows=four[:1], distributed="FSDP",
                      config="configs/accelerate/fsdp2.yaml", scaling=[row])  # fmt: skip
    text = markdown(res)
    assert "x 4 processes (FSDP)" in text and "per GPU 21.7 / 21.5 / 21.7 / 21.6" in text
    assert "| memory-bf16 | 4 | 7,000.0 | 4,000.0 on 2 | 1.75x | 2x | 88% |" in text


def test_a_restarted_training_is_timed_from_its_own_start():
    """OOM back-off starts training again: the steps of the attempt that ran out of memory, and the reload
    between attempts, must not enter the rate (they did, and halved the ragged padding-free SFT figure)."""
    import time

    from mcqflow.benchmark.bench import step_timer

    timer = step_timer()
    timer.on_train_begin(None, None, None)
    timer.on_step_begin(None, None, None)
    timer.on_step_end(None, None, None)  # the first attempt: one step, then out of memory
    now = time.perf_counter()
    timer.marks = [now - 200.0, now - 100.0]  # (its times, made long ago)
    timer.on_train_begin(None, None, None)  # the second attempt
    for _ in range(3):
        timer.on_step_begin(None, None, None)
        timer.on_step_end(None, None, None)
    assert len(timer.marks) == 4 and timer.marks[0] >= now
    rate, step = timer.rate(0, per_step=10.0)
    assert rate > 10.0 / 1.0 and step < 1.0  # microseconds a step, not the 100 s of the failed attempt


def test_real_weights_run_both_grpo_modes_to_the_policys_own_ends(tmp_path, tiny_dir):
    """--weights: a model folder instead of random weights; GRPO in plain and reasoning mode, each completion
    as long as the policy makes it (counted), against TRL's default at the same mode; files named for it."""
    from mcqflow.core.errors import UserError

    smoke = Shapes.smoke()
    res = run(
        "qwen2.5-7b", tmp_path / "results", tmp_path / "work", only=("grpo",), shapes=smoke,
        log=lambda _: None, weights=tiny_dir,
        grpo_variants=["vanilla-plain", "fast-plain", "vanilla-reasoning", "fast-reasoning"],
    )  # fmt: skip
    rows = {r["variant"]: r for r in res.rows}
    assert set(rows) == {"vanilla-plain", "fast-plain", "vanilla-reasoning", "fast-reasoning"}
    assert {r["mode"] for r in res.rows} == {"plain", "reasoning"}
    assert rows["fast-reasoning"]["new_tokens"] == smoke.grpo_reasoning_new_tokens
    for r in res.rows:
        assert 1 <= r["mean_completion_tokens"] <= r["new_tokens"]
        assert r["completion_tokens_per_step"] == pytest.approx(
            r["mean_completion_tokens"] * r["completions_per_step"], abs=0.1
        )
    assert res.weights == tiny_dir and res.arch == Path(tiny_dir).name and res.checks == []
    saved = list((tmp_path / "results").glob("*.json"))
    assert len(saved) == 1 and Path(tiny_dir).name in saved[0].name
    page = saved[0].with_suffix(".md").read_text()
    assert "(real weights)" in page and "| fast-reasoning | reasoning |" in page
    assert "| grpo | fast-plain |" in page and "x |" in page  # against vanilla-plain
    # Without real weights the policy-ended modes would only run to the cap: refused, saying why
    with pytest.raises(UserError, match="random weights never end a completion"):
        run("tiny", tmp_path / "r2", tmp_path / "w2", only=("grpo",), shapes=smoke, log=lambda _: None,
            grpo_variants=["fast-plain"])  # fmt: skip
    with pytest.raises(UserError, match="not a model folder"):
        run("tiny", tmp_path / "r3", tmp_path / "w3", only=("grpo",), shapes=smoke, log=lambda _: None,
            weights=str(tmp_path / "nothing-here"))  # fmt: skip


def test_timeline_gaps_finds_the_gpus_idle_time_and_what_the_host_did_meanwhile(tmp_path):
    """bench/timeline_gaps.py on a Chrome trace made by hand: kernels with a 30 µs gap while the host ran
    `aten::mm` inside the forward, and a 200 µs gap while it ran `_LoraLinearBackward` outside it."""
    import gzip

    def ev(cat, name, ts, dur, tid=1):
        return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur, "pid": 1, "tid": tid}

    events = [
        ev("kernel", "k1", 0, 100, tid=7),
        ev("kernel", "k2", 130, 70, tid=7),
        ev("gpu_memcpy", "copy", 150, 100, tid=8),  # overlaps k2 on another stream: busy until 250
        ev("kernel", "k3", 450, 50, tid=7),
        ev("user_annotation", "mcqflow::forward_and_loss", 0, 140),
        ev("cpu_op", "aten::linear", 90, 45),
        ev("cpu_op", "aten::mm", 100, 30),
        ev("cpu_op", "_LoraLinearBackward", 240, 220, tid=2),  # autograd's own thread
        ev("cuda_runtime", "cudaStreamSynchronize", 10, 5),
    ]
    path = tmp_path / "grpo-x.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump({"traceEvents": events}, f)
    out = subprocess.run(
        [sys.executable, "bench/timeline_gaps.py", str(path)],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "window 0.5 ms: GPU busy 0.3 ms (54%), idle 0.2 ms in 2 gaps" in out
    assert "trace 0.5 ms, host included: GPU busy 54% of it" in out  # host events end by 500 µs too
    kernels = out.split("GPU time by kernel (calls):")[1].strip().splitlines()
    assert [line.split()[-1] for line in kernels] == ["k1", "copy", "k2", "k3"]  # longest first
    assert kernels[0].split()[:3] == ["0.1", "ms", "1"]
    assert "1 synchronize calls" in out
    phase = out.split("outermost host operator")[1].split("innermost")[0]
    assert "0.2 ms  _LoraLinearBackward" in phase and "0.0 ms  mcqflow::forward_and_loss" in phase
    inner = out.split("innermost host operator:")[1]
    assert "aten::mm" in inner and "aten::linear" not in inner


def test_the_timeline_callback_records_only_the_chosen_micro_batches_of_the_chosen_step(tmp_path):
    """MCQFLOW_BENCH_TIMELINE's callback: a gzipped Chrome trace of step 2's micro-batches 2-3, holding the work
    done between their ends and nothing from step 1 or from after (here on a CPU, where it has no kernels)."""
    import gzip
    from types import SimpleNamespace

    import torch

    from mcqflow.benchmark.bench import trace_micro_batches

    out = tmp_path / "t" / "grpo-x.json.gz"
    cb = trace_micro_batches(out, step=2, first=2, last=3)
    state = SimpleNamespace(global_step=0)
    for step in (1, 2):
        state.global_step = step - 1
        cb.on_step_begin(None, state, None)
        for micro in (1, 2, 3, 4):
            with torch.profiler.record_function(f"work-{step}-{micro}"):
                torch.ones(8) @ torch.ones(8)
            cb.on_substep_end(None, state, None)
        assert out.exists() == (step == 2)
    with gzip.open(out, "rt", encoding="utf-8") as f:
        names = {e.get("name") for e in json.load(f)["traceEvents"]}
    assert {n for n in names if str(n).startswith("work-")} == {"work-2-2", "work-2-3"}
    report = subprocess.run(
        [sys.executable, "bench/timeline_gaps.py", str(out)],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "no GPU kernels" in report


def test_the_whole_step_timeline_spans_from_the_step_before_to_the_chosen_steps_end(tmp_path):
    """SFT's MCQFLOW_BENCH_TIMELINE callback: step 3 whole, from step 2's end (so the loading of step 3's batch
    is in it, as in the span `step_timer` times) to step 3's end, and nothing of steps 2 or 4."""
    import gzip
    from types import SimpleNamespace

    import torch

    from mcqflow.benchmark.bench import trace_whole_step

    out = tmp_path / "t" / "sft-x.json.gz"
    cb = trace_whole_step(out, step=3)
    state = SimpleNamespace(global_step=0)
    for step in (1, 2, 3, 4):
        with torch.profiler.record_function(f"load-{step}"):
            torch.ones(8) + 1
        cb.on_step_begin(None, state, None)
        with torch.profiler.record_function(f"work-{step}"):
            torch.ones(8) @ torch.ones(8)
        state.global_step = step  # the trainer counts the step before on_step_end
        cb.on_step_end(None, state, None)
        assert out.exists() == (step >= 3)
    with gzip.open(out, "rt", encoding="utf-8") as f:
        names = {e.get("name") for e in json.load(f)["traceEvents"]}
    assert {n for n in names if str(n).startswith(("work-", "load-"))} == {"load-3", "work-3"}


def test_a_variant_named_again_runs_again_in_a_folder_of_its_own_and_the_report_shows_each_run(tmp_path):
    """A, A in one list: two timed runs, each training into its own folder, each row with its place in the
    list, and the page lists both runs and their mean."""
    smoke = Shapes.smoke()
    res = run(
        "tiny", tmp_path / "results", tmp_path / "work", only=("sft", "grpo"), shapes=smoke,
        log=lambda _: None, sft_variants=["fast-bf16", "fast-bf16"], grpo_variants=["fast", "fast"],
    )  # fmt: skip
    for bench, unit in (("sft", "tokens_per_s"), ("grpo", "completions_per_s")):
        rows = [r for r in res.rows if r["bench"] == bench]
        assert [r["order"] for r in rows] == [1, 2] and all(r[unit] > 0 for r in rows)
    grpo = [r for r in res.rows if r["bench"] == "grpo"]
    assert all(r["split_s"]["forward_backward"] > 0 for r in grpo)  # both trained their steps
    assert {p.name for p in (tmp_path / "work").iterdir()} >= {
        "sft-fast-bf16", "sft-fast-bf16-run2", "grpo-fast", "grpo-fast-run2",
    }  # fmt: skip
    page = next((tmp_path / "results").glob("*.md")).read_text()
    first, second = (r["completions_per_s"] for r in grpo)
    mean = f"{(first + second) / 2:,.3f}"
    assert f"| grpo | fast | 1: {first:,}, 2: {second:,} | {mean} |" in page


def test_the_report_lists_repeated_variants_by_place_and_leaves_single_runs_out():
    from mcqflow.benchmark.bench_report import repeats

    rows = [
        {"bench": "grpo", "variant": "fast-ragged", "order": 1, "completions_per_s": 10.0},
        {"bench": "grpo", "variant": "fast-fused-qkv-ragged", "order": 2, "completions_per_s": 11.0},
        {"bench": "grpo", "variant": "fast-fused-qkv-ragged", "order": 3, "completions_per_s": 12.0},
        {"bench": "grpo", "variant": "fast-ragged", "order": 4, "completions_per_s": 12.5},
        {"bench": "grpo", "variant": "vanilla", "order": 5, "skipped": "CUDA out of memory at micro-batch 8"},
        {"bench": "grpo", "variant": "vanilla", "order": 6, "completions_per_s": 0.5},
        {"bench": "sft", "variant": "fast-bf16", "tokens_per_s": 100.0},  # an older file's rows: no order
        {"bench": "sft", "variant": "fast-bf16", "tokens_per_s": 300.0},
    ]
    assert repeats(rows) == {
        ("grpo", "fast-ragged"): [(1, 10.0), (4, 12.5)],
        ("grpo", "fast-fused-qkv-ragged"): [(2, 11.0), (3, 12.0)],
        ("sft", "fast-bf16"): [(1, 100.0), (2, 300.0)],
    }  # a skipped run is not a run


def test_the_page_compares_each_row_with_the_mean_of_vanillas_runs():
    """Vanilla run twice (A, B, B, A with vanilla as A): "vs vanilla" divides by its mean, not its first run."""
    from mcqflow.benchmark.bench_report import BenchResult, markdown

    def row(variant: str, order: int, rate: float) -> dict:
        return {"bench": "grpo", "variant": variant, "profile": variant, "order": order,
                "completions_per_s": rate, "completions_per_step": 16, "micro_batch": 8}  # fmt: skip

    rows = [row("vanilla", 1, 1.0), row("fast", 2, 8.0), row("vanilla", 3, 3.0)]
    page = markdown(BenchResult("qwen2.5-7b", "H200", {}, {}, rows=rows))
    table = [line for line in page.splitlines() if " completions/s | " in line]  # the first table's rows
    fast = next(line for line in table if line.startswith("| grpo | fast |"))
    vanillas = [line for line in table if line.startswith("| grpo | vanilla |")]
    assert "| 4.00x |" in fast  # 8 / mean(1, 3), not 8 / 1
    assert ["| 0.50x |" in v for v in vanillas] == [True, False] and "| 1.50x |" in vanillas[1]


def test_a_target_counts_a_variant_run_more_than_once_by_its_mean():
    """A, B, B, A: the targets read each variant's mean, not its best run, and check it once."""
    rows = [
        {"bench": "grpo", "variant": "vanilla", "profile": "vanilla", "order": 1, "completions_per_s": 0.5},
        {"bench": "grpo", "variant": "fast", "profile": "fast", "order": 2, "completions_per_s": 18.0},
        {"bench": "grpo", "variant": "fast", "profile": "fast", "order": 3, "completions_per_s": 22.0},
        {"bench": "grpo", "variant": "fast-hf-generate-ragged", "profile": "fast-hf-generate",
         "shape": "ragged", "order": 4, "completions_per_s": 4.0},
        {"bench": "grpo", "variant": "fast-ragged", "profile": "fast", "shape": "ragged", "order": 5,
         "completions_per_s": 10.0},
        {"bench": "grpo", "variant": "fast-ragged", "profile": "fast", "shape": "ragged", "order": 6,
         "completions_per_s": 12.0},
        {"bench": "grpo", "variant": "fast-ragged", "order": 7, "skipped": "CUDA out of memory at micro-batch 16"},
    ]  # fmt: skip
    checks = check_targets(rows)
    assert [c["target"] for c in checks] == [
        "grpo completions/s",
        "grpo ratio to vanilla TRL",
        "grpo ragged: fast-ragged over HF generate",
    ]  # each once
    met = {c["target"]: (c["value"], c["met"]) for c in checks}
    assert met["grpo completions/s"] == (20.0, True)  # the mean of 18 and 22, not the 22
    assert met["grpo ratio to vanilla TRL"] == (40.0, True)
    assert met["grpo ragged: fast-ragged over HF generate"] == (2.75, True)


def _compile(name: str, runtime, *, t: list[float], took: float) -> bool:
    """What Triton's JITFunction._do_compile does around a compilation, its hooks called as it calls them,
    the clock moved by `took` in between."""
    from triton.runtime.jit import JitFunctionInfo

    kw = {
        "key": (name,), "repr": f"{name}[]()", "fn": JitFunctionInfo("tests", name, None),
        "compile": {"key": (name,)}, "is_manual_warmup": False, "already_compiled": False,
    }  # fmt: skip
    if runtime.jit_cache_hook and runtime.jit_cache_hook(**kw):
        return False  # a hook took the compilation over
    t[0] += took
    if runtime.jit_post_compile_hook:
        runtime.jit_post_compile_hook(**kw)
    return True


def test_triton_compiles_are_counted_in_the_timed_steps_only_and_the_hooks_given_back(monkeypatch):
    pytest.importorskip("triton.knobs")
    from triton import knobs

    from mcqflow.benchmark import bench

    clock = [100.0]
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    earlier_posts = []
    monkeypatch.setattr(knobs.runtime, "jit_cache_hook", lambda **kw: kw["fn"].name == "theirs")
    monkeypatch.setattr(knobs.runtime, "jit_post_compile_hook", lambda **kw: earlier_posts.append(kw["key"]))
    before = (knobs.runtime.jit_cache_hook, knobs.runtime.jit_post_compile_hook)
    with bench.TritonCompiles() as compiles:
        assert _compile("rms_norm_fwd", knobs.runtime, t=clock, took=0.5)  # the warm-up step's
        t0 = clock[0] + 1.0
        clock[0] = t0
        assert _compile("lora_dropout_bwd", knobs.runtime, t=clock, took=0.25)
        assert not _compile("theirs", knobs.runtime, t=clock, took=0.0)  # the earlier hook's: not Triton's
        assert _compile("swiglu_fwd", knobs.runtime, t=clock, took=0.125)
    assert (knobs.runtime.jit_cache_hook, knobs.runtime.jit_post_compile_hook) == before
    assert earlier_posts == [("rms_norm_fwd",), ("lora_dropout_bwd",), ("swiglu_fwd",)]  # still chained
    assert [name for name, *_ in compiles.events] == ["rms_norm_fwd", "lora_dropout_bwd", "swiglu_fwd"]
    assert compiles.since(t0) == {"triton_compiles_timed": 2, "triton_compile_s_timed": 0.375}
    assert compiles.since(None) == {}  # the timed steps never began


def test_without_tritons_hooks_nothing_is_claimed(monkeypatch):
    import builtins

    from mcqflow.benchmark.bench import TritonCompiles

    real_import = builtins.__import__

    def no_triton(name, *args, **kwargs):
        if name.startswith("triton"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_triton)
    with TritonCompiles() as compiles:
        pass
    assert compiles.since(0.0) == {}  # not a zero: nothing was there to count with


def test_the_page_names_the_rows_whose_timed_steps_compiled_triton_kernels():
    from mcqflow.benchmark.bench_report import BenchResult, markdown

    step = {"completions_per_step": 128, "micro_batch": 8, "shape": "ragged"}
    rows = [
        {"bench": "grpo", "variant": "fast-ragged", "order": 1, "completions_per_s": 11.0, **step,
         "triton_compiles_timed": 6, "triton_compile_s_timed": 2.4},
        {"bench": "grpo", "variant": "fast-ragged", "order": 2, "completions_per_s": 12.0, **step,
         "triton_compiles_timed": 0, "triton_compile_s_timed": 0.0},
    ]  # fmt: skip
    page = markdown(BenchResult("qwen2.5-7b", "H100", {}, {}, rows=rows))
    line = next(x for x in page.splitlines() if x.startswith("Triton compiled"))
    assert "grpo fast-ragged (place 1: 6, 2.4 s)" in line and "place 2" not in line


@pytest.mark.skipif(not torch.cuda.is_available(), reason="Triton compiles for a CUDA GPU")
def test_a_real_triton_compile_is_counted_once_per_specialization():
    import triton
    import triton.language as tl

    from mcqflow.benchmark.bench import TritonCompiles

    @triton.jit
    def add_one(x_ptr, n, BLOCK: tl.constexpr):
        i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        tl.store(x_ptr + i, tl.load(x_ptr + i, mask=i < n) + 1, mask=i < n)

    x = torch.zeros(37, device="cuda")
    with TritonCompiles() as compiles:
        add_one[(1,)](x, 37, BLOCK=64)
        add_one[(1,)](x, 37, BLOCK=64)  # the same specialization: kept, not compiled again
        add_one[(1,)](x, 32, BLOCK=64)  # 32 is divisible by 16: a new specialization
    torch.cuda.synchronize()
    assert [name.rsplit(".", 1)[-1] for name, *_ in compiles.events] == ["add_one", "add_one"]
    assert compiles.since(0.0)["triton_compiles_timed"] == 2
    assert x[:32].tolist() == [3.0] * 32 and x[32:].tolist() == [2.0] * 5


def test_the_step_split_gives_a_repeated_variants_mean_and_range_per_phase():
    """A, B, B, A: the split table adds, for each variant run twice, each phase's mean and lowest-highest
    run, so that a lever is read from the phase it changes; a variant run once gets no such row."""
    from mcqflow.benchmark.bench_report import BenchResult, markdown

    def row(variant: str, order: int, generation: float, train: float) -> dict:
        split = {"generation": generation, "forward_backward": train, "total": generation + train}
        return {"bench": "grpo", "variant": variant, "profile": "fast", "order": order, "completions_per_s": 10.0,
                "completions_per_step": 128, "micro_batch": 8, "split_s": split}  # fmt: skip

    old = {"bench": "grpo", "variant": "old", "profile": "fast", "completions_per_s": 9.0,
           "completions_per_step": 128, "micro_batch": 8}  # fmt: skip
    rows = [row("fast", 1, 5.0, 4.0), row("fast-x", 2, 5.5, 4.5), row("fast", 3, 5.2, 5.0), old, dict(old)]
    # "old" ran twice without a step split (an older file's rows): no mean row for it
    page = markdown(BenchResult("qwen2.5-7b", "H100", {}, {}, rows=rows))
    means = [line for line in page.splitlines() if ", mean of " in line]
    assert means == [
        "| fast, mean of 2 (lowest–highest) | 5.10 s (5.00–5.20) | 0.00 s (0.00–0.00) | 0.00 s (0.00–0.00) "
        "| 4.50 s (4.00–5.00) | 0.00 s (0.00–0.00) | 9.60 s (9.00–10.20) |"
    ]
