import json
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import ROOT
from mcqflow.core.errors import UserError
from mcqflow.train.grpo import FINGERPRINT, GRPOParams, grpo_config, last_checkpoint


def test_params_map_onto_trl_names():
    p = GRPOParams.from_params(
        {
            "prompts_per_step": 3,
            "num_generations": 4,
            "beta": 0.04,
            "loss_type": "grpo",
            "max_completion_length": 64,
        }
    )
    c = grpo_config(p, "/tmp/x", seed=1, reward_weights=[1.0, 0.2])
    assert (c.per_device_train_batch_size, c.num_generations, c.beta, c.loss_type) == (12, 4, 0.04, "grpo")
    assert c.max_completion_length == 64 and c.reward_weights == [1.0, 0.2] and c.save_total_limit == 2


def test_unknown_grpo_param():
    with pytest.raises(UserError, match="unknown key grpo.lr; renamed to grpo.learning_rate, TRL.s name"):
        GRPOParams.from_params({"lr": 1})
    with pytest.raises(UserError, match="grpo.mode"):
        GRPOParams.from_params({"mode": "chat"})


def _checkpoint(d, step, complete=True):
    c = d / f"checkpoint-{step}"
    c.mkdir(parents=True)
    if complete:
        (c / "trainer_state.json").write_text("{}")


def test_resume_only_from_own_complete_checkpoints(tmp_path):
    d = tmp_path / "ckpt"
    _checkpoint(d, 4)
    _checkpoint(d, 8)
    _checkpoint(d, 12, complete=False)  # cut short by a crash
    (d / FINGERPRINT).write_text(json.dumps({"fingerprint": "abc"}))
    assert last_checkpoint(d, "abc") == str(d / "checkpoint-8")
    assert not (d / "checkpoint-12").exists()
    assert last_checkpoint(d, "other params") is None and not d.exists()
    assert last_checkpoint(tmp_path / "none", "abc") is None


def test_a_finished_run_is_not_resumed(tmp_path):
    d = tmp_path / "ckpt"
    _checkpoint(d, 8)
    (d / FINGERPRINT).write_text(json.dumps({"fingerprint": "abc", "complete": True}))
    assert last_checkpoint(d, "abc") is None and not d.exists()


# --- slow: real GRPO on the tiny model ------------------------------------------------------------

GRPO_FAST = dict(
    mode="plain",
    learning_rate=3e-4,
    prompts_per_step=4,
    num_generations=8,
    max_completion_length=4,
    loss_type="dapo",
    beta=0.0,
    shuffle_options=False,
    rewards={"correctness": 1.0},
    logging_steps=10,
)


@pytest.fixture(scope="module")
def keyword_policy(tmp_path_factory):
    """The keyword task and a deliberately under-trained SFT policy: it answers with a letter most of the
    time but has not learned which one (about chance on dev)."""
    from conftest import make_task
    from mcqflow.modeling.models import build_tiny, tiny_corpus
    from mcqflow.train.training import SFTParams, train_sft

    tmp = tmp_path_factory.mktemp("grpo")
    train, dev = make_task(240, seed=1), make_task(80, seed=2)
    base = str(build_tiny(tiny_corpus(train), tmp / "tiny", seed=0))
    params = SFTParams(
        finetune="full",
        learning_rate=1e-3,
        num_train_epochs=2,
        per_device_train_batch_size=8,
        gradient_accumulation_steps=1,
        max_length=256,
        lr_scheduler_type="linear",
    )
    train_sft(train, "plain", base, tmp / "sft", params, seed=0)
    return train, dev, tmp / "sft"


def dev_accuracy(model_dir, dev):
    from mcqflow.evaluation.metrics import evaluate
    from mcqflow.evaluation.predict import predict_records
    from mcqflow.modeling.models import load_for_inference

    model, tok = load_for_inference(str(model_dir))
    return evaluate(predict_records(dev, model, tok, "generate", "plain", max_new_tokens=4))["accuracy"]


@pytest.mark.slow
def test_grpo_raises_dev_accuracy_by_20_points(keyword_policy, tmp_path):
    """The correctness reward is the only signal; if it did not check the answer, accuracy would not move."""
    from mcqflow.train.grpo import train_grpo

    train, dev, sft = keyword_policy
    before = dev_accuracy(sft, dev)
    result = train_grpo(
        train,
        str(sft),
        tmp_path / "grpo",
        tmp_path / "ckpt",
        GRPOParams(**GRPO_FAST, max_steps=200, save_steps=100),
        seed=0,
    )
    after = dev_accuracy(tmp_path / "grpo", dev)
    assert result["global_step"] == 200 and result["resumed_from"] is None
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == [FINGERPRINT]  # nothing left to resume
    assert before <= 0.35, before
    assert after >= before + 0.20, (before, after)


@pytest.mark.slow
def test_killed_grpo_stage_resumes_from_its_checkpoint(keyword_policy, tmp_path):
    train, _, sft = keyword_policy
    (tmp_path / "data/split").mkdir(parents=True)
    (tmp_path / "data/split/zh.jsonl").write_text(
        "".join(r.to_json() + "\n" for r in train), encoding="utf-8"
    )
    shutil.copytree(sft, tmp_path / "models/sft-plain-zh")
    grpo = {**GRPO_FAST, "init": "sft-plain", "max_steps": 60, "save_steps": 8}
    params = {
        "seed": 0,
        "model": {"base": "tiny", "quantization": "none"},
        "sft": {"finetune": "full"},
        "grpo": grpo,
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    cmd = [
        sys.executable,
        str(ROOT / "stages/grpo.py"),
        "--lang",
        "zh",
        "--train",
        "data/split/zh.jsonl",
        "--models",
        "models",
        "--tiny-dir",
        "models/tiny",  # not read: the policy starts from models/sft-plain-zh (grpo.init)
        "--out",
        "models/grpo-zh",
        "--checkpoints",
        "checkpoints/grpo-zh",
        "--live",
        "dvclive/grpo-zh",
    ]

    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = tmp_path / "checkpoints/grpo-zh/checkpoint-16/trainer_state.json"
    deadline = time.time() + 300
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "models/grpo-zh").exists()

    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    resumed = int(r.stdout.split("resumed from checkpoints/grpo-zh/checkpoint-")[1].split()[0])
    assert resumed >= 16
    assert "grpo zh: 60 steps" in r.stdout
    meta = json.loads((tmp_path / "models/grpo-zh/mcqflow.json").read_text())
    assert meta["steps"] == 60 and meta["mode"] == "plain"
    # the Trainer itself began at the checkpoint's step, not at 0
    assert f"checkpoint-{resumed} at step {resumed}" in r.stdout


def test_micro_batches_split_the_step_not_the_generation():
    p = GRPOParams(prompts_per_step=4, num_generations=8, micro_batch=8)
    c = grpo_config(p, "/tmp/x", seed=1, reward_weights=[1.0])
    assert (c.per_device_train_batch_size, c.gradient_accumulation_steps, c.generation_batch_size) == (
        8,
        4,
        32,
    )
    with pytest.raises(UserError, match="must divide"):
        grpo_config(GRPOParams(prompts_per_step=4, num_generations=8, micro_batch=5), "/tmp/x", 1, [1.0])


def test_micro_batched_step_trains_the_same_weights_as_one_batch(tiny_dir, tmp_path):
    """Same completions (one generation call either way), gradients accumulated over micro-batches: the
    weights after two steps agree with the whole-batch run to float rounding."""
    import torch
    from safetensors.torch import load_file

    from conftest import sample_records
    from mcqflow.train.grpo import train_grpo

    recs = sample_records("train")[:8]
    base = dict(
        GRPO_FAST, learning_rate=1e-3, max_steps=2, prompts_per_step=2, num_generations=4, save_steps=100
    )
    base.update(
        max_completion_length=12, rewards={"correctness": 1.0, "neutrality": 1.0}
    )  # rewards that vary
    out = {}
    for micro in (0, 2):
        train_grpo(recs, tiny_dir, tmp_path / f"m{micro}", tmp_path / f"c{micro}",
                   GRPOParams(**base, micro_batch=micro), seed=0)  # fmt: skip
        out[micro] = load_file(tmp_path / f"m{micro}" / "model.safetensors")
    start = load_file(f"{tiny_dir}/model.safetensors")
    moved = max((out[0][k] - start[k]).abs().max().item() for k in start)
    assert moved > 1e-4  # the steps did train
    for k in start:
        torch.testing.assert_close(out[2][k], out[0][k], atol=1e-5, rtol=1e-4)


def _two_lora_steps_each_way(tiny_dir, tmp_path, lever: str, after_run, **both) -> dict:
    """Two plain-mode LoRA GRPO steps from one seed (4 micro-batches of 2 a step, LoRA dropout off, since its
    masks draw as many numbers as a micro-batch has elements, so the two runs draw alike), once with the
    profile lever `lever` off and once on; `after_run(on)` is called after each. Returns the two adapters by
    the lever's value, after checking that the steps trained and that both runs end with the same adapter.
    `both`: levers on in both runs."""
    import dataclasses

    import torch
    from safetensors.torch import load_file

    from conftest import sample_records
    from mcqflow.train.grpo import train_grpo
    from mcqflow.train.profiles import PROFILES
    from mcqflow.train.training import SFTParams, lora_config

    params = GRPOParams(
        mode="plain", learning_rate=1e-2, max_steps=2, prompts_per_step=2, num_generations=4, micro_batch=2,
        max_completion_length=12, shuffle_options=False, save_steps=100,
        rewards={"correctness": 1.0, "neutrality": 1.0},
    )  # fmt: skip
    lora = lora_config(SFTParams(finetune="lora", lora={**SFTParams().lora, "dropout": 0.0}))
    out = {}
    for on in (False, True):
        profile = dataclasses.replace(
            PROFILES["cpu"], merged_generation=True, graph_decode=True, **both, **{lever: on}
        )
        train_grpo(sample_records("train")[:8], tiny_dir, tmp_path / f"m{on}", tmp_path / f"c{on}", params,
                   seed=0, finetune="lora", lora_config=lora, profile=profile,
                   end_lengths=lambda n: torch.tensor([1 + (i * 5) % 12 for i in range(n)]))  # fmt: skip
        out[on] = load_file(tmp_path / f"m{on}" / "adapter_model.safetensors")
        after_run(on)
    moved = [k for k in out[True] if "lora_B" in k and out[True][k].abs().max() > 0]
    assert moved
    for k in out[True]:
        torch.testing.assert_close(out[True][k], out[False][k], atol=1e-5, rtol=1e-4)
    return out


def test_length_batches_train_the_same_adapter_on_shorter_micro_batches(tiny_dir, tmp_path, monkeypatch):
    """`length_batches`: each micro-batch holds completions of like length and is cut to its own longest
    row. The dapo loss normalises over the whole step, so two LoRA steps from one seed end with the same
    adapter either way (the shuffle's random numbers are drawn as before), while the micro-batches that
    reach the model are narrower and ordered longest first."""
    from trl import GRPOTrainer

    widths: list[int] = []
    real = GRPOTrainer._compute_loss
    monkeypatch.setattr(
        GRPOTrainer,
        "_compute_loss",
        lambda self, model, inputs: (
            widths.append(inputs["completion_ids"].shape[1]) or real(self, model, inputs)
        ),
    )
    monkeypatch.setattr("mcqflow.train.grpo.TRIM_BUCKET", 4)  # 64 columns would hide the cut at these widths
    seen = {}

    def keep_widths(grouped):
        seen[grouped] = list(widths)
        widths.clear()

    _two_lora_steps_each_way(tiny_dir, tmp_path, "length_batches", keep_widths)
    assert seen[False] == [12] * 8  # every micro-batch padded to the step's longest completion
    assert len(seen[True]) == 8 and max(seen[True]) == 12 and sum(seen[True]) < sum(seen[False])
    assert all(w % 4 == 0 for w in seen[True])  # each cut width rounded up to the bucket
    assert seen[True][:4] == sorted(seen[True][:4], reverse=True)  # one step's micro-batches, longest first


@pytest.mark.parametrize("lever", ["fused_swiglu", "fused_qkv"])
def test_fused_mlp_and_attention_projections_train_grpo_s_policy_through_them(
    lever, tiny_dir, tmp_path, monkeypatch
):
    """`fused_swiglu` and `fused_qkv` (over the fused LoRA layers): GRPO's training forward goes through the
    fused MLP (the attention's q/k/v as one function), and two steps end with the adapter they end with
    without it."""
    from mcqflow.train.fast.lora_qkv import _LoraQKV
    from mcqflow.train.fast.lora_swiglu import _LoraSwiGLU

    fn = {"fused_swiglu": _LoraSwiGLU, "fused_qkv": _LoraQKV}[lever]
    calls, seen = [], {}
    apply = fn.apply
    monkeypatch.setattr(fn, "apply", lambda *a: calls.append(1) or apply(*a))

    def count(on):
        seen[on] = len(calls)
        calls.clear()

    _two_lora_steps_each_way(tiny_dir, tmp_path, lever, count, fused_lora=True)
    assert seen[False] == 0 and seen[True] > 0


def test_trim_padding_drops_only_columns_that_are_padding_in_every_row():
    import torch

    from mcqflow.train.grpo import by_length, trim_padding

    inputs = {
        "prompt_ids": torch.tensor([[0, 0, 5, 6], [0, 0, 0, 7]]),
        "prompt_mask": torch.tensor([[0, 0, 1, 1], [0, 0, 0, 1]]),
        "completion_ids": torch.tensor([[8, 9, 0, 0, 0], [8, 0, 0, 0, 0]]),
        "completion_mask": torch.tensor([[1, 1, 0, 0, 0], [1, 0, 0, 0, 0]]),
        "old_per_token_logps": torch.zeros(2, 5),
        "advantages": torch.tensor([1.0, -1.0]),
        "num_items_in_batch": torch.tensor(3),
    }
    out = trim_padding(inputs)
    assert out["prompt_ids"].tolist() == [[5, 6], [0, 7]] and out["prompt_mask"].tolist() == [[1, 1], [0, 1]]
    assert out["completion_ids"].tolist() == [[8, 9], [8, 0]] and out["old_per_token_logps"].shape == (2, 2)
    assert (
        out["advantages"] is inputs["advantages"]
        and out["num_items_in_batch"] is inputs["num_items_in_batch"]
    )
    bucketed = trim_padding(inputs, bucket=3)  # widths rounded up to 3, within the padded widths
    assert bucketed["prompt_ids"].tolist() == [[0, 5, 6], [0, 0, 7]]
    assert bucketed["completion_ids"].tolist() == [[8, 9, 0], [8, 0, 0]]
    assert trim_padding(inputs, bucket=8)["completion_ids"].shape == (2, 5)
    torch.manual_seed(0)
    ordered = by_length({**inputs, "labels": ["a", "b"]})
    assert ordered["completion_mask"].sum(1).tolist() == [2, 1] and ordered["labels"] == ["a", "b"]
    assert ordered["num_items_in_batch"] is inputs["num_items_in_batch"]


@pytest.mark.parametrize("on_host", [False, True])
def test_pack_rows_keeps_each_rows_tokens_and_scores_only_completions(on_host):
    """The same packing worked out from the mask on the device or from the rows' lengths on the host."""
    import torch

    from mcqflow.train.fast.packing import pack_rows, unpack_rows

    ids = torch.tensor([[0, 0, 5, 6, 8, 9, 0], [0, 4, 5, 6, 8, 0, 0]])  # 4 prompt columns, 3 completion
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 0], [0, 1, 1, 1, 1, 0, 0]])
    lengths = torch.tensor([[2, 2], [3, 1]]) if on_host else None  # (prompt, completion) tokens a row
    rows = pack_rows(ids, mask, logits_to_keep=3, lengths=lengths)
    assert rows["input_ids"].tolist() == [[5, 6, 8, 9, 4, 5, 6, 8]]
    assert rows["labels"].tolist() == [[-100, -100, 8, 9, -100, -100, -100, 8]]
    assert rows["position_ids"].tolist() == [[0, 1, 2, 3, 0, 1, 2, 3]]
    assert rows["cu_seq_lens_q"].tolist() == [0, 4, 8] and rows["max_length_q"] == 4
    # a causal LM's shifted output: the value at i belongs to token i + 1
    shifted = torch.arange(2.0, 9.0).unsqueeze(0)  # tokens 1..7 of the packed row carry 2..8
    back = unpack_rows(shifted, rows["index"], rows["first"], ids.shape)
    assert back.tolist() == [[0, 0, 2, 3, 4, 0], [0, 6, 7, 8, 0, 0]]  # [rows, width - 1], as padded
    assert back[:, -3:].tolist() == [[3, 4, 0], [8, 0, 0]]  # the completion columns TRL keeps


def test_packed_grpo_trains_the_same_adapter_as_the_padded_step(tiny_dir, tmp_path, monkeypatch):
    """`packed_grpo`: the micro-batch's rows run end to end in one packed row (position ids restarting,
    attention kept inside each row), and the per-token log-probabilities go back into TRL's padded layout.
    Two LoRA steps end with the same adapter as the padded forward's, while the model never sees a pad."""
    import torch
    from transformers.models.qwen2.modeling_qwen2 import Qwen2Model

    shapes: list[tuple] = []
    forward = Qwen2Model.forward

    def watched(self, *args, **kwargs):  # the backbone's calls with gradients: the training forwards
        if torch.is_grad_enabled():
            shapes.append((tuple(kwargs["input_ids"].shape), "cu_seq_lens_q" in kwargs))
        return forward(self, *args, **kwargs)

    def check_rows(packed):
        # 8 training forwards (2 steps x 4 micro-batches): one packed row with its bounds each, or the
        # micro-batch's two padded rows without
        rows = 1 if packed else 2
        assert len(shapes) == 8 and all(shape[0] == rows and bounds == packed for shape, bounds in shapes), (
            shapes
        )
        shapes.clear()

    from mcqflow.train.fast import packing

    packed_with, pack = [], packing.pack_rows

    def pack_rows(*args, **kwargs):  # training packs from the host's lengths, never from the device's mask
        packed_with.append(args[3] if len(args) > 3 else kwargs.get("lengths"))
        return pack(*args, **kwargs)

    monkeypatch.setattr(Qwen2Model, "forward", watched)
    monkeypatch.setattr(packing, "pack_rows", pack_rows)
    _two_lora_steps_each_way(tiny_dir, tmp_path, "packed_grpo", check_rows)
    assert len(packed_with) == 8 and all(
        isinstance(v, torch.Tensor) and v.shape == (2, 2) for v in packed_with
    )


def test_shared_prompts_train_the_same_adapter_with_each_prompt_once_a_micro_batch(
    tiny_dir, tmp_path, monkeypatch
):
    """`shared_prompts`: micro-batches hold whole groups (the shuffle moves a prompt's rows together; the
    dapo loss normalises over the whole step) and each packs its prompt once (`pack_groups`). Two LoRA steps
    from one seed end with the same adapter either way."""
    from mcqflow.train.fast import packing

    calls: dict[str, list] = {"groups": [], "rows": []}
    pack_groups, pack_rows = packing.pack_groups, packing.pack_rows

    def grouped(*args, **kwargs):
        calls["groups"].append(args[4].tolist())
        return pack_groups(*args, **kwargs)

    def one_by_one(*args, **kwargs):
        calls["rows"].append(args[0].shape[0])
        return pack_rows(*args, **kwargs)

    def check(shared):
        # 8 training forwards (2 steps x 4 micro-batches of 2): both rows of one prompt in each when shared
        if shared:
            assert len(calls["groups"]) == 8 and not calls["rows"], calls
            assert all(len(set(g)) == 1 for g in calls["groups"]), calls
        else:
            assert not calls["groups"] and len(calls["rows"]) == 8, calls
        calls["groups"].clear()
        calls["rows"].clear()

    monkeypatch.setattr(packing, "pack_groups", grouped)
    monkeypatch.setattr(packing, "pack_rows", one_by_one)
    _two_lora_steps_each_way(tiny_dir, tmp_path, "shared_prompts", check, packed_grpo=True)


def test_fp8_sampling_reaches_the_merged_copy_only_where_the_card_has_fp8(tiny_dir, tmp_path, monkeypatch):
    """`fp8_sampling` reaches the merged copy only where the card has FP8 matmuls, and `train.fp8: false`
    turns it off with the FP8 base."""
    import dataclasses

    from conftest import sample_records
    from mcqflow.train import profiles
    from mcqflow.train.fast import merged
    from mcqflow.train.grpo import train_grpo
    from mcqflow.train.training import SFTParams, lora_config

    built = []
    real = merged.MergedCopy.__init__
    monkeypatch.setattr(
        merged.MergedCopy, "__init__", lambda self, m, **kw: built.append(kw["fp8"]) or real(self, m, **kw)
    )
    params = GRPOParams(**dict(GRPO_FAST, max_steps=1, prompts_per_step=2, num_generations=2, save_steps=100))
    profile = dataclasses.replace(profiles.PROFILES["cpu"], merged_generation=True, fp8_sampling=True)
    for card_has_fp8 in (False, True):
        monkeypatch.setattr(profiles, "fp8_supported", lambda on=card_has_fp8: on)
        train_grpo(sample_records("train")[:4], tiny_dir, tmp_path / f"m{card_has_fp8}",
                   tmp_path / f"c{card_has_fp8}", params, seed=0, finetune="lora",
                   lora_config=lora_config(SFTParams(finetune="lora")), profile=profile)  # fmt: skip
    assert built == [False, True]
    fast = dataclasses.replace(profiles.PROFILES["fast"], fp8_sampling=True)
    monkeypatch.setitem(profiles.PROFILES, "fast", fast)
    assert profiles.profile_from_params({"train": {"profile": "fast"}}).fp8_sampling
    off = profiles.profile_from_params({"train": {"profile": "fast", "fp8": False}})
    assert not off.fp8_sampling and not off.fp8_base
