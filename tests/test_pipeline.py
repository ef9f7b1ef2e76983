"""End to end: `dvc repro` of the tiny default in a fresh copy of the repository."""

import csv
import io
import json
import re
import subprocess
import sys

import pytest

from conftest import dvc_in, make_clone

pytestmark = pytest.mark.slow


def dvc(repo, *args):
    return dvc_in(repo[0], repo[1], *args)


def test_repro_builds_every_output(repo):
    out = dvc(repo, "repro")
    root = repo[0]
    assert "Running stage 'predict@sft-reasoning-en'" in out and "Running stage 'predict_base@zh'" in out
    # quiet: no third-party chatter a user cannot act on
    for noise in ("FutureWarning", "Created temporary directory", "' is empty."):
        assert noise not in out, noise
    for lang in ("zh", "en"):
        for split, n in (("train", 180), ("dev", 60), ("test", 62)):
            assert (
                len((root / f"data/prepared/{lang}/{split}.jsonl").read_text(encoding="utf-8").splitlines())
                == n
            )
    rejected = (root / "data/rejected/ingest/zh/dev.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rejected) == 1 and json.loads(rejected[0])["reason"] == "no answer in a labelled split"

    with open(root / "data/sample/test.csv", encoding="utf-8", newline="") as f:
        test_ids = [r[0] for r in list(csv.reader(f))[1:]]
    validated = json.loads((root / "metrics/validate.json").read_text(encoding="utf-8"))
    for lang in ("zh", "en"):
        assert validated[lang]["train"]["pass_rate"] == 1.0 and validated[lang]["train"]["contamination"] == 0
        assert validated[lang]["test"]["duplicates"] == 2  # reported, not dropped
        assert (root / f"data/validated/{lang}/test.jsonl").read_text().count("\n") == 62
    assert validated["zh"]["test"]["script_share"]["hans"] > 0
    assert (root / "reports/validate/index.html").exists()

    manifest = json.loads((root / "data/split/manifest.json").read_text(encoding="utf-8"))
    assert manifest["n_chosen"] == 90 and len(manifest["ids"]) == 90
    for lang in ("zh", "en"):
        split = [json.loads(x)["id"] for x in (root / f"data/split/{lang}.jsonl").read_text().splitlines()]
        assert split == manifest["ids"]  # the same questions in both languages
        grpo_meta = json.loads((root / f"models/grpo-{lang}/mcqflow.json").read_text(encoding="utf-8"))
        assert grpo_meta["steps"] == 8 and grpo_meta["init"] == f"models/sft-reasoning-{lang}"
        rewards = root / f"dvclive/grpo-{lang}/plots/metrics"
        for curve in (
            "rewards/correctness/mean.tsv",
            "reward_std.tsv",
            "frac_reward_zero_std.tsv",
            "completions/mean_length.tsv",
        ):
            assert (rewards / curve).exists(), curve

    for name in ("base", "sft-plain", "sft-reasoning", "grpo"):
        for lang in ("zh", "en"):
            m = json.loads((root / f"metrics/predict/{name}-{lang}.json").read_text(encoding="utf-8"))[lang]
            assert (
                m["n"] == 60 and 0 <= m["accuracy_ci95_low"] <= m["accuracy"] <= m["accuracy_ci95_high"] <= 1
            )
            assert name == "base" or (root / f"models/{name}-{lang}/mcqflow.json").exists()
            with open(root / f"submissions/{name}-{lang}.csv", encoding="utf-8", newline="") as f:
                rows = list(csv.reader(f))
            assert rows[0] == ["ID", "Answer"] and [r[0] for r in rows[1:]] == test_ids
            assert {r[1] for r in rows[1:]} <= set("ABCD")
            details = (root / f"predictions/{name}-{lang}-dev.jsonl").read_text(encoding="utf-8").splitlines()
            assert len(details) == 60 and {"raw", "extracted", "method"} <= json.loads(details[0]).keys()
    loss = (root / "dvclive/sft-plain-zh/plots/metrics/loss.tsv").read_text().splitlines()
    assert loss[0].split("\t") == ["step", "loss"] and len(loss) > 3

    assert "Data and pipelines are up to date" in dvc(repo, "status")
    assert "didn't change, skipping" in dvc(repo, "repro")

    # A quiet lock: every stage run again from scratch on the same machine writes the same dvc.lock, byte
    # for byte (no wall-clock values in tracked outputs; seeded, deterministic CPU training and sampling).
    first = (root / "dvc.lock").read_text(encoding="utf-8")
    dvc(repo, "repro", "-f")
    second = (root / "dvc.lock").read_text(encoding="utf-8")
    changed = [a.strip() for a, b in zip(first.splitlines(), second.splitlines(), strict=False) if a != b]
    assert first == second, f"dvc.lock changed on a re-run: {changed[:6]}"


def test_exp_run_and_show_compare_languages_and_stages(repo):
    from mcqflow.evaluation.exps import accuracy_table, attach, git_records, read
    from mcqflow.evaluation.metrics import HEADLINE

    dvc(repo, "exp", "run", "-n", "lr-high", "-S", "sft.learning_rate=0.002")
    table = json.loads(dvc(repo, "exp", "show", "--json"))
    exps = [e for rev in table for e in (rev.get("experiments") or [])]
    names = [run["name"] for e in exps for run in e["revs"]]
    assert "lr-high" in names
    lr_high = next(run for e in exps for run in e["revs"] if run["name"] == "lr-high")
    data = lr_high["data"]
    assert data["params"]["params.yaml"]["data"]["sft"]["learning_rate"] == 0.002
    # the DVC metrics are the headline: the same few keys for every model and language
    assert sorted(data["metrics"]) == sorted(
        f"metrics/dev/{name}-{lang}.json" for name in ("base", "sft-plain", "sft-reasoning", "grpo") for lang in ("zh", "en")
    )  # fmt: skip
    for path, m in data["metrics"].items():
        assert {"accuracy", "ci95_low", "ci95_high", "n"} <= set(m["data"]) <= set(HEADLINE), path
    # the whole records are committed with the experiment: make compare reads them at its commit
    shown = attach(read(table), git_records(repo[0]))
    lr = next(e for e in shown if e.name == "lr-high")
    for name in ("base", "sft-plain", "sft-reasoning", "grpo"):
        for lang in ("zh", "en"):
            m = lr.records[f"metrics/predict/{name}-{lang}.json"][lang]
            assert m["accuracy"] == data["metrics"][f"metrics/dev/{name}-{lang}.json"]["data"]["accuracy"]
    assert len([r for r in accuracy_table(shown).splitlines() if r.startswith("| lr-high |")]) == 8
    # `dvc metrics show`: a row per model and language, within a 120-column terminal
    lines = dvc(repo, "metrics", "show").splitlines()
    assert len([line for line in lines if line.startswith("metrics/dev/")]) == 8
    assert max(map(len, lines)) <= 120, lines[0]


def test_plots_show_draws_training_loss_and_the_reports_offline(repo):
    out_dir = repo[0] / "plots_out"
    dvc(repo, "plots", "show", "-o", str(out_dir))
    html = (out_dir / "index.html").read_text(encoding="utf-8")
    # the training curves that matter, each stage's four (SFT) or two (GRPO) runs on one chart
    charts = re.findall(r"vegaEmbed\('#([^']+)'", html)
    training = [c for c in charts if not c.startswith("plots_predict_")]
    assert training == [
        "sft-loss", "sft-token-accuracy", "sft-learning-rate", "sft-grad-norm", "grpo-reward", "grpo-correctness",
        "grpo-loss", "grpo-completion-length", "grpo-learning-rate", "grpo-grad-norm",
    ]  # fmt: skip
    for run in ("sft-plain-zh", "sft-plain-en", "sft-reasoning-zh", "sft-reasoning-en"):
        assert f'"filename": "{run}/plots/metrics/loss.tsv"' in html  # DVC drops the common dvclive/
    assert "clip_ratio" not in html and "frac_reward_zero_std" not in html  # the rest stays in dvclive/
    # the reports' plots, drawn with the titles dvc.yaml gives them
    assert "plots_predict_sft-plain-zh-confusion_json" in html and "plots_predict_base-en-topics_json" in html
    assert (
        "sft-plain zh, dev - gold vs predicted letter" in html and "base en, dev - accuracy per topic" in html
    )
    # every confusion map has all letters on both axes: a one-letter model is a filled row, not one block
    assert html.count('"domain": ["A", "B", "C", "D", "none"]') == html.count("gold vs predicted letter") == 8
    # the page carries Vega itself (vendor/vega/): it draws with no network, unlike DVC's CDN default
    assert "<script src=" not in html and "vegaEmbed" in html and "cdn.jsdelivr" not in html
    assert "train/runtime.tsv" not in html and "samples_per_second" not in html  # run-to-run noise left out


def test_validate_quarantines_a_broken_row_and_stops_on_a_skewed_dataset(repo):
    """Changed Chinese rows have no English version yet, so translate asks a model: the loopback one."""
    import yaml

    from conftest import fake_translator
    from llm_server import FakeLLM

    root, env = repo
    train, params_file = root / "data/sample/train.csv", root / "params.yaml"
    original, original_params = train.read_text(encoding="utf-8"), params_file.read_text(encoding="utf-8")
    server = FakeLLM(responder=fake_translator).__enter__()
    params = yaml.safe_load(original_params)
    params["llm"].update(backend="openai", base_url=server.url)
    params_file.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    repo = (root, {**env, "OPENAI_API_KEY": "sk-test"})
    try:
        # a chain whose <output> disagrees with the gold answer: quarantined, the pipeline goes on
        broken = (
            "關於測試的一道題目？,甲,乙,丙,丁,A,<question>q</question><think>t</think>"
            "<reasoning>step 1: a step 2: b</reasoning><reflection>r</reflection><adjustment>a</adjustment>"
            "<output>C</output>,法律制度,基礎,事實性\n"
        )
        train.write_text(original + broken, encoding="utf-8")
        dvc(repo, "repro", "validate")
        quarantined = [
            json.loads(x) for x in (root / "data/rejected/validate/zh/train.jsonl").read_text().splitlines()
        ]
        assert [q["raw"]["id"] for q in quarantined] == ["train-00181"]
        assert "expect_column_pair_values_to_be_equal(chain_output,answer)" in quarantined[0]["reason"]

        # every answer on "A": a dataset-level failure stops the pipeline with a readable message
        rows = list(csv.reader(io.StringIO(original)))
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([rows[0]] + [r[:5] + ["A"] + r[6:] for r in rows[1:]])
        train.write_text(buf.getvalue(), encoding="utf-8")
        r = subprocess.run(
            [sys.executable, "-m", "dvc", "repro", "validate"],
            cwd=root,
            env=repo[1],
            capture_output=True,
            text=True,
        )
        assert r.returncode != 0
        assert "most_common_value_share_to_be_at_most(answer) failed" in r.stderr
        assert "the pipeline stops here" in r.stderr and "Traceback" not in r.stderr
    finally:
        server.__exit__()
        train.write_text(original, encoding="utf-8")
        params_file.write_text(original_params, encoding="utf-8")
        dvc(repo, "repro")


def test_a_failed_experiment_through_make_exp_leaves_params_as_they_were(tmp_path):
    """`dvc exp run -S` writes its values into params.yaml and leaves them there when a stage fails; `make
    exp` puts the file back. In its own clone: the failed stage's outputs are gone after, as DVC leaves them."""
    from conftest import make_clone

    root, env = make_clone(tmp_path)
    before = (root / "params.yaml").read_bytes()
    r = subprocess.run(
        ["make", "--no-print-directory", "exp", "S=llm.backend=nonsense generate.per_cell=2"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode != 0, r.stdout[-2000:]
    assert "llm.backend='nonsense': expected one of openai, replay, transformers" in r.stdout + r.stderr
    assert "make exp: the run failed" in r.stderr and "params.yaml is as it was before it" in r.stderr
    assert (root / "params.yaml").read_bytes() == before


def test_gaokao_runs_every_stage_on_the_tiny_model_and_skips_english(tmp_path):
    """`dvc exp run -S data.source=data/gaokao`: real exam questions through every stage; the en branch
    says it is skipped instead of copying zh. Its own clone: the run leaves the workspace on GAOKAO params,
    which the other end-to-end tests sharing `repo` must not inherit."""
    repo = make_clone(tmp_path)
    root = repo[0]
    out = dvc(repo, "exp", "run", "-S", "data.source=data/gaokao", "-S", "sft.num_train_epochs=1",
              "-S", "grpo.max_steps=2")  # fmt: skip
    assert "ingest: en skipped:" in out and "translate: en skipped:" in out and "grpo: en skipped:" in out
    ingest = json.loads((root / "metrics/ingest/zh.json").read_text(encoding="utf-8"))["zh"]
    assert ingest["source"]["rows"] == 607 == ingest["source"]["kept"] + ingest["source"]["rejected"]
    validated = json.loads((root / "metrics/validate.json").read_text(encoding="utf-8"))
    assert validated["zh"]["dev"]["leakage"]["gold_in_train_answers_share"] == 0.0
    assert "skipped" in validated["en"]
    train = [json.loads(x) for x in (root / "data/validated/zh/train.jsonl").read_text().splitlines()]
    assert train and {r["chain_source"] for r in train} == {"analysis"}
    predicted = json.loads((root / "metrics/predict/sft-reasoning-zh.json").read_text(encoding="utf-8"))["zh"]
    assert predicted["n"] == 125 and predicted["test"]["n"] == 83  # dev and test years, both scored
    assert "skipped" in json.loads((root / "metrics/predict/grpo-en.json").read_text())["en"]
    assert (root / "models/sft-plain-en/skipped.json").is_file()
    for live in ("sft-plain-en", "sft-reasoning-en", "grpo-en"):  # no stale curves, and a file git carries
        assert [p.name for p in (root / "dvclive" / live / "plots/metrics").iterdir()] == ["skipped.json"]
    assert (root / "submissions/grpo-en.csv").read_text() == "ID,Answer\n"
    assert "skipped" in json.loads((root / "metrics/compare/sft-plain-vs-base-en.json").read_text())
    assert "test" in json.loads((root / "metrics/compare/sft-plain-vs-base-zh.json").read_text())
