import json
from pathlib import Path

import pytest
import torch

from conftest import sample_records
from mcqflow.core.errors import UserError
from mcqflow.core.prompts import render_prompt
from mcqflow.evaluation.predict import predict_records
from mcqflow.modeling.models import load_for_inference, load_tokenizer, read_meta
from mcqflow.train.training import SFTParams, build_dataset, sft_config, train_sft


@pytest.mark.parametrize("mode", ["plain", "reasoning"])
def test_loss_on_completion_only_and_same_prompt_as_predict(tiny_dir, tmp_path, mode):
    """TRL's tokenized example = exactly predict's prompt tokens, then the completion, masked apart."""
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    tok = load_tokenizer(tiny_dir)
    recs = sample_records("train")[:2]
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_dir),
        args=sft_config(SFTParams(max_length=2048), str(tmp_path), seed=0),
        train_dataset=build_dataset(recs, mode),
        processing_class=tok,
    )
    for rec, ex in zip(recs, trainer.train_dataset, strict=True):
        prompt_ids = tok(render_prompt(tok, rec, mode), add_special_tokens=False).input_ids
        ids, labels = ex["input_ids"], ex["labels"]
        assert ids[: len(prompt_ids)] == prompt_ids
        assert labels[: len(prompt_ids)] == [-100] * len(prompt_ids)
        assert -100 not in labels[len(prompt_ids) :]
        completion = tok.decode(labels[len(prompt_ids) :])
        target = rec.answer if mode == "plain" else rec.reasoning
        assert completion.startswith(target + "<|im_end|>")


def test_unknown_sft_param():
    with pytest.raises(UserError, match="unknown key sft.lr; renamed to sft.learning_rate, TRL.s name"):
        SFTParams.from_params({"lr": 1})
    with pytest.raises(UserError, match="sft.finetune='half'"):
        SFTParams.from_params({"finetune": "half"})


def test_full_finetune_cannot_quantize(tiny_dir, tmp_path):
    with pytest.raises(UserError, match="cannot train a quantized base"):
        train_sft([], "plain", tiny_dir, tmp_path / "o", SFTParams(finetune="full"), quantization="nf4")


def test_missing_chain_in_reasoning_mode_names_the_row():
    rec = sample_records("dev")[0]
    with pytest.raises(UserError, match="no reasoning chain"):
        build_dataset([rec], "reasoning")


def test_lora_adapter_trains_saves_and_predicts(tiny_dir, tmp_path):
    recs = sample_records("train")[:8]
    params = SFTParams(
        finetune="lora",
        num_train_epochs=1,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        learning_rate=1e-3,
        max_length=256,
    )
    out = tmp_path / "adapter"
    metrics = train_sft(recs, "plain", tiny_dir, out, params, live_dir=tmp_path / "live")
    assert metrics["train_loss"] > 0
    assert (out / "adapter_config.json").exists() and not (out / "model.safetensors").exists()
    assert read_meta(out) == {"base": tiny_dir, "finetune": "lora", "quantization": "none", "mode": "plain"}
    assert (tmp_path / "live" / "metrics.json").exists()
    assert list(Path(tmp_path / "live" / "plots" / "metrics").rglob("loss.tsv"))
    model, tok = load_for_inference(str(out))
    preds = predict_records(recs[:2], model, tok, "letter", "plain")
    assert all(p.answer in "ABCD" for p in preds)


def test_max_examples_draws_a_seeded_subset_in_order():
    from mcqflow.train.training import subset

    recs = sample_records("train")
    a, b = subset(recs, 20, seed=1), subset(recs, 20, seed=1)
    assert [r.id for r in a] == [r.id for r in b] and len(a) == 20
    assert [r.id for r in a] == [r.id for r in recs if r.id in {x.id for x in a}]  # original order
    assert [r.id for r in subset(recs, 20, seed=2)] != [r.id for r in a]
    assert subset(recs, 0, seed=1) is recs and subset(recs, 10_000, seed=1) is recs
    with pytest.raises(UserError, match="sft.max_examples=-1"):
        SFTParams.from_params({"max_examples": -1})


def test_tracked_curves_leave_out_what_varies_run_to_run(tmp_path):
    """Wall-clock rates and counters would change dvc.lock on every run; the curves that matter stay."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from mcqflow.train.training import live_callback

    cb = live_callback(tmp_path / "live")
    args = TrainingArguments(output_dir=str(tmp_path / "o"), report_to="none", use_cpu=True)
    state = TrainerState()
    state.is_world_process_zero = True
    for step, logs in enumerate(
        [
            {"loss": 2.0, "learning_rate": 1e-3, "grad_norm": 1.5, "epoch": 0.5, "num_tokens": 900.0,
             "step_time": 0.31, "completions/min_length": 3.0, "completions/mean_length": 7.0},
            {"train_runtime": 12.3, "train_samples_per_second": 40.1, "train_steps_per_second": 5.2,
             "total_flos": 2.4e11, "train_loss": 1.7},
        ],
        1,
    ):  # fmt: skip
        state.global_step = step
        cb.on_log(args, state, TrainerControl(), logs=logs)
    cb.live.end()
    saved = json.loads((tmp_path / "live" / "metrics.json").read_text())
    flat = json.dumps(saved)
    assert saved["loss"] == 2.0 and saved["train"]["loss"] == 1.7 and "mean_length" in flat
    for gone in ("runtime", "samples_per_second", "steps_per_second", "total_flos", "epoch", "num_tokens",
                 "step_time", "min_length"):  # fmt: skip
        assert gone not in flat, gone


def test_curves_are_indexed_by_optimizer_step_and_not_written_twice(tmp_path):
    """Logged every 10 steps, a curve's x is 10, 20 (not the call count 0, 1); the closing summary, which
    repeats the last log's values at the same step, adds only what is new (train/loss)."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from mcqflow.train.training import live_callback

    cb = live_callback(tmp_path / "live")
    args = TrainingArguments(output_dir=str(tmp_path / "o"), report_to="none", use_cpu=True)
    state = TrainerState()
    state.is_world_process_zero = True
    for step, logs in [
        (10, {"loss": 2.0, "entropy": 0.5}),
        (20, {"loss": 1.5, "entropy": 0.4}),
        (20, {"train_runtime": 3.0, "train_loss": 1.7, "entropy": 0.4}),
    ]:
        state.global_step = step
        cb.on_log(args, state, TrainerControl(), logs=logs)
    cb.live.end()

    def steps(name):
        header, *rows = (tmp_path / "live/plots/metrics" / name).read_text().splitlines()
        return [int(r.split("\t")[header.split("\t").index("step")]) for r in rows]

    assert steps("loss.tsv") == [10, 20] and steps("entropy.tsv") == [10, 20]
    assert steps("train/loss.tsv") == [20]


def test_sft_and_grpo_set_their_shared_trainer_arguments_alike(tmp_path):
    """Seeds, precision, device, checkpointing, DDP and reporting come from one place for both trainers;
    each step's own params (lr, logging) reach TRL under TRL's names."""
    import warnings

    from mcqflow.train.grpo import GRPOParams, grpo_config
    from mcqflow.train.training import SFTParams, sft_config

    with warnings.catch_warnings():  # no deprecated argument names (a FutureWarning a user cannot act on)
        warnings.simplefilter("error", FutureWarning)
        sft = sft_config(
            SFTParams(learning_rate=3e-4, logging_steps=7), str(tmp_path / "s"), seed=11, dtype="float32"
        )
        grpo = grpo_config(
            GRPOParams(learning_rate=2e-6, logging_steps=3), str(tmp_path / "g"), 11, [1.0], dtype="float32"
        )
    shared = ["seed", "data_seed", "bf16", "use_cpu", "gradient_checkpointing", "ddp_find_unused_parameters"]
    assert {k: getattr(sft, k) for k in shared} == {k: getattr(grpo, k) for k in shared}
    assert (sft.seed, sft.use_cpu, sft.bf16, sft.report_to) == (11, True, False, grpo.report_to)
    assert (sft.learning_rate, sft.logging_steps, grpo.learning_rate, grpo.logging_steps) == (
        3e-4,
        7,
        2e-6,
        3,
    )


def test_parameters_are_counted_once_and_the_flos_are_transformers_own():
    """The Trainer's `total_flos` statistic without walking the model at every micro-batch."""
    from types import SimpleNamespace

    from transformers import Trainer

    from mcqflow.train.training import count_parameters_once

    calls = []

    class Model(torch.nn.Module):
        main_input_name = "input_ids"

        def num_parameters(self, exclude_embeddings=False):
            calls.append(exclude_embeddings)
            return 1000

    trainer = SimpleNamespace(model=Model())
    batch = {"input_ids": torch.zeros(4, 7, dtype=torch.long)}
    want = Trainer.floating_point_ops(trainer, batch)  # transformers' own, counting again
    calls.clear()
    count_parameters_once(trainer)
    assert [trainer.floating_point_ops(batch) for _ in range(3)] == [want] * 3 == [6 * 28 * 1000] * 3
    assert calls == [True]  # one walk, embeddings left out as transformers leaves them out
    assert trainer.floating_point_ops({"pixel_values": torch.zeros(2)}) == 0
