import re
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from mcqflow.config.schema import load_params
from mcqflow.core.errors import UserError
from mcqflow.params import check_params, defaults


def test_the_dataclass_defaults_are_params_yaml():
    """One set of defaults: what a library user gets from SFTParams() is what params.yaml says."""
    params = load_params(ROOT / "params.yaml")
    for section, values in defaults().items():
        assert set(params[section]) == set(values), section
        for key, default in values.items():
            got = params[section][key]
            assert (list(default) if isinstance(default, tuple) else default) == got, f"{section}.{key}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sft": {"gradient_acumulation_steps": 1}}, "did you mean sft.gradient_accumulation_steps?"),
        ({"sft": {"lr": 1e-4}}, "unknown key sft.lr; renamed to sft.learning_rate, TRL's name"),
        ({"sft": {"lerning_rate": 1e-4}}, "unknown key sft.lerning_rate; did you mean sft.learning_rate?"),
        ({"sft": {"trainer": {"num_train_epochs": 2}}}, "sft.trainer.num_train_epochs would override sft.num_train_epochs"),
        ({"grpo": {"rewards": {"corectness": 1.0}}}, "unknown key grpo.rewards.corectness; did you mean "
                                                      "grpo.rewards.correctness?"),
        ({"modle": {}}, "unknown key modle; did you mean model?"),
        ({"model": {"quantization": "int4"}}, "model.quantization='int4': expected one of none | nf4"),
        ({"predict": {"csv_formulas": "yes"}}, "expected one of refuse | escape | raw"),
    ],
)  # fmt: skip
def test_a_wrong_key_or_choice_is_one_line_naming_the_right_one(change, message):
    params = load_params(ROOT / "params.yaml")
    for section, values in change.items():
        params.setdefault(section, {}).update(values)
    with pytest.raises(UserError, match=message.replace("?", r"\?").replace("|", r"\|")):
        check_params(params)


def test_the_check_runs_alone_as_one_line(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["sft"]["num_train_epoch"] = 2
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "mcqflow.params", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert (
        r.stderr.strip()
        == f"mcqflow: error: {bad}: unknown key sft.num_train_epoch; did you mean sft.num_train_epochs?"
    )


def test_the_section_names_load_params_knows_are_the_schema():
    from mcqflow.config.schema import SECTION_NAMES, sections

    assert list(SECTION_NAMES) == ["seed", *sections()]


def test_a_section_checks_itself_with_the_same_one_line_messages():
    """load_params checks every section (config/*); a section's own dataclass, built by hand or by
    `section()`, checks its keys the same way, one line each."""
    from mcqflow.train.training import SFTParams

    with pytest.raises(UserError, match=r"unknown key sft.warmup_step; did you mean sft.warmup_steps\?"):
        SFTParams.from_params({"warmup_step": 2})
    with pytest.raises(
        UserError, match="sft.finetune='qlora': expected one of full | lora".replace("|", r"\|")
    ):
        SFTParams.from_params({"finetune": "qlora"})


def test_numbers_dvc_writes_as_strings_are_numbers_and_wrong_types_are_one_line():
    """`dvc exp run -S grpo.learning_rate=1e-5` writes `1e-05`, which YAML reads as a string: GRPO died
    in AdamW after the SFT stages had run (the GPU run of 2026-12-03). Now it is a float; a word where a
    number belongs is one line naming the key."""
    from mcqflow.train.grpo import GRPOParams
    from mcqflow.train.training import SFTParams

    assert GRPOParams.from_params({"learning_rate": "1e-05"}).learning_rate == 1e-5
    assert SFTParams.from_params({"num_train_epochs": 2}).num_train_epochs == 2
    for section, bad, expected in (
        (GRPOParams, {"max_steps": "three"}, "grpo.max_steps='three': expected a whole number"),
        (GRPOParams, {"learning_rate": "fast"}, "grpo.learning_rate='fast': expected a number"),
        (GRPOParams, {"shuffle_options": 1.5}, "grpo.shuffle_options=1.5: expected true or false"),
    ):
        with pytest.raises(UserError, match=re.escape(expected)):
            section.from_params(bad)


ABSURD = [  # (section, key, value, what the one line says): a fault run's values that all passed the checker
    ("sft", "learning_rate", -1e-4, "sft.learning_rate=-0.0001: expected above 0"),
    ("sft", "learning_rate", "fast", "sft.learning_rate='fast': expected a number"),
    ("sft", "per_device_train_batch_size", 0, "sft.per_device_train_batch_size=0: expected 1 or more"),
    ("sft", "num_train_epochs", -1, "sft.num_train_epochs=-1.0: expected above 0"),
    ("sft", "num_train_epochs", "three", "sft.num_train_epochs='three': expected a number"),
    ("sft", "lora", {"r": 0, "alpha": 32, "dropout": 0.05}, "sft.lora.r=0: expected 1 or more"),
    ("llm", "concurrency", 0, "llm.concurrency=0: expected 1 or more and 1024 at most"),
    ("llm", "concurrency", -1, "llm.concurrency=-1: expected 1 or more"),
    ("llm", "max_retries", -1, "llm.max_retries=-1: expected 0 or more"),
    ("llm", "timeout", "abc", "llm.timeout='abc': expected a number"),
    ("llm", "timeout", 0, "llm.timeout=0.0: expected above 0"),
    ("llm", "backend", "opena1", "llm.backend='opena1': expected one of openai, replay, transformers"),
    ("split", "fraction", 0, "split.fraction=0.0: expected above 0 and 1 at most"),
    ("split", "fraction", 1.5, "split.fraction=1.5: expected above 0 and 1 at most"),
    ("grpo", "num_generations", 1, "grpo.num_generations=1: expected 2 or more"),
    ("grpo", "learning_rate", "1e-06", None),  # what `dvc exp run -S grpo.learning_rate=1e-6` writes: fine
    ("grpo", "init", "sft", "grpo.init='sft': expected one of sft-reasoning, sft-plain, base"),
    ("grpo", "temperature", 0, "grpo.temperature=0.0: expected above 0"),
    ("generate", "topics", "科技", "generate.topics='科技': expected a list"),
    ("validate", "question_length", [10, 4], "validate.question_length=[10, 4]: expected [low, high]"),
    ("validate", "min_pass_rate", 1.5, "validate.min_pass_rate=1.5: expected 0 or more and 1 at most"),
    ("predict", "batch_size", 0, "predict.batch_size=0: expected 1 or more"),
    ("train", "profile", "fastest", "train.profile='fastest': expected one of auto, vanilla, memory, fast"),
    # `trainer:` passes fields through to TRL's config: an unknown one is one line at check time, not a
    # TypeError in the stage after the stages before it ran
    (
        "sft",
        "trainer",
        {"gradient_checkpointin": True},
        "sft.trainer.gradient_checkpointin: not a field of "
        "TRL's SFTConfig; did you mean sft.trainer.gradient_checkpointing?",
    ),
    ("grpo", "trainer", {"nosuch_field": 1}, "grpo.trainer.nosuch_field: not a field of TRL's GRPOConfig"),
    ("grpo", "trainer", "fast", "grpo.trainer='fast': expected a mapping of TRL GRPOConfig fields"),
    ("sft", "trainer", {"gradient_checkpointing": True}, None),
]


@pytest.mark.parametrize(("section", "key", "value", "says"), ABSURD, ids=lambda v: str(v)[:24])
def test_absurd_values_are_one_line_naming_key_value_and_what_is_allowed(tmp_path, section, key, value, says):
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params[section][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "mcqflow.params", str(path)], capture_output=True, text=True)
    if says is None:
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize(
    ("section", "key", "value", "says"),
    [
        ("grpo", "learning_rate", "fast", "grpo.learning_rate='fast': expected a number"),
        ("llm", "backend", "opena1", "llm.backend='opena1': expected one of"),
        ("split", "fraction", 1.5, "split.fraction=1.5"),
        ("sft", "num_train_epochs", "three", "sft.num_train_epochs='three'"),
    ],
    ids=["grpo-lr", "llm-backend", "split-fraction", "sft-epochs"],
)
def test_every_stage_refuses_a_bad_value_in_any_section_at_load(tmp_path, section, key, value, says):
    """load_params, which every stage calls first, checks the whole file: ingest refuses a bad GRPO
    learning rate before anything runs, not GRPO after the SFT stages have."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params[section][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    with pytest.raises(UserError, match=re.escape(says)):
        load_params(path)
    assert load_params(ROOT / "params.yaml")["grpo"]["learning_rate"] == 1e-5  # the file as committed


def test_a_seed_that_is_no_whole_number_and_yaml_aliases_are_refused(tmp_path):
    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("seed: 42", "seed: abc"), encoding="utf-8")
    with pytest.raises(UserError, match="seed='abc': expected a whole number, 0 or more"):
        load_params(path)
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    path.write_text(text + bomb, encoding="utf-8")
    with pytest.raises(UserError, match=r"YAML aliases \(\*name\) are not allowed"):
        load_params(path)


def test_train_profile_choices_are_the_profiles():
    from mcqflow.train.launch import TrainParams
    from mcqflow.train.profiles import PROFILE_NAMES

    for name in PROFILE_NAMES:
        TrainParams.from_params({"profile": name})
    with pytest.raises(UserError):
        TrainParams.from_params({"profile": "turbo"})


def test_a_value_trl_refuses_is_one_line_at_the_stage():
    from mcqflow.train.grpo import GRPOParams, grpo_config
    from mcqflow.train.training import SFTParams, sft_config

    with pytest.raises(
        UserError, match=r"^params.yaml: TRL's SFTConfig refused .*sft.trainer.*optim.*nosuch"
    ):
        sft_config(SFTParams(trainer={"optim": "nosuch"}), "/tmp/unused", 0)
    with pytest.raises(UserError, match=r"^params.yaml: TRL's GRPOConfig refused .*sometimes") as e:
        grpo_config(GRPOParams(trainer={"eval_strategy": "sometimes"}), "/tmp/unused", 0, [1.0])
    assert "\n" not in str(e.value)
