"""params.yaml: loaded and checked whole, then each stage takes its sections as typed objects.

Every section is a dataclass in its own module of this package (`mcqflow.config.sft.SFTParams`, ...): fields,
defaults equal to params.yaml's (a test holds them so), a comment per field. `load_params` checks the whole
file, every section, as `python -m mcqflow.params` does: an unknown or misspelt key is one line naming the
closest valid key (a key renamed to TRL's name is answered with it), a value of the wrong type or outside
its range or a `Literal[...]`'s choices is one line naming key and value (`1e-06`, which `dvc exp run -S`
writes and YAML reads as a string, is a number), and a `trainer:` key may not shadow a key of the section.
Keys that are TRL config fields carry TRL's names (`learning_rate`, `num_train_epochs`, ...). A stage then
reads `section(params, "sft")`, never a raw dict.
"""

from __future__ import annotations

import difflib
import functools
import types
import typing
from dataclasses import fields
from pathlib import Path
from typing import Literal

import yaml

from mcqflow.core.errors import UserError


def load_params(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: not found (run from the project root)")
    text = path.read_text(encoding="utf-8")
    try:
        # YAML aliases are refused: a few KB of nested ones (an "alias bomb") expand to gigabytes in any
        # reader that copies them (DVC's, when it writes params into dvc.lock), and params need none
        if any(isinstance(ev, yaml.AliasEvent) for ev in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise UserError(f"{path}: YAML aliases (*name) are not allowed in params; write the values out")
        params = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise UserError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(params, dict):
        raise UserError(f"{path}: expected a mapping of sections, got {type(params).__name__}")
    seed = params.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"{path}: seed={seed!r}: expected a whole number, 0 or more")
    return check_sections(params, str(path))


def check_sections(params: dict, source: str) -> dict:
    """Every section of `params` against its dataclass, one line for the first mistake; the params with
    their values coerced (`1e-06` a float)."""
    check_keys(params, list(SECTION_NAMES), "", source)
    for name, cls in sections().items():
        if params.get(name) is not None:
            params[name] = check_section(cls, params[name], name, source)
            if hasattr(cls, "from_params"):  # and the choices a section checks beyond its fields' types
                cls.from_params(params[name])
    return params


def sections() -> dict[str, type]:
    """The schema of params.yaml: section -> its dataclass, in params.yaml's order. (Imported here, not at
    the top: each section's module imports this one for `build` and `choose`.)"""
    from mcqflow.config.data import DataParams
    from mcqflow.config.generate import GenerateParams
    from mcqflow.config.grpo import GRPOParams
    from mcqflow.config.llm import LLMParams
    from mcqflow.config.model import ModelParams
    from mcqflow.config.predict import PredictParams
    from mcqflow.config.sft import SFTParams
    from mcqflow.config.split import SplitParams
    from mcqflow.config.tiny import TinyParams
    from mcqflow.config.train import TrainParams
    from mcqflow.config.translate import TranslateParams
    from mcqflow.config.validate import ValidateParams

    return {
        "data": DataParams,
        "model": ModelParams,
        "llm": LLMParams,
        "generate": GenerateParams,
        "translate": TranslateParams,
        "validate": ValidateParams,
        "tiny": TinyParams,
        "train": TrainParams,
        "sft": SFTParams,
        "split": SplitParams,
        "grpo": GRPOParams,
        "predict": PredictParams,
    }


SECTION_NAMES = ("seed", "data", "model", "llm", "generate", "translate", "validate", "tiny", "train", "sft", "split",
                 "grpo", "predict")  # fmt: skip

# Keys of nested dicts that are checked too (the rest of a dict field is free, like sft.trainer).
NESTED = {
    ("sft", "lora"): ("r", "alpha", "dropout", "target_modules"),
    ("grpo", "rewards"): ("correctness", "format", "neutrality", "overlong"),
    ("predict", "inference"): ("plain", "reasoning"),
    ("data", "years"): ("train", "dev", "test"),
}


# Keys that are TRL config fields under TRL's own name: `trainer:` may not set one behind its key.
TRL_KEYS = {
    "sft": (
        "learning_rate", "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps",
        "lr_scheduler_type", "max_length", "warmup_steps", "weight_decay", "logging_steps",
    ),
    "grpo": (
        "learning_rate", "max_steps", "num_generations", "max_completion_length", "temperature", "beta",
        "loss_type", "scale_rewards", "save_steps", "logging_steps",
    ),
}  # fmt: skip
# Earlier short names -> the TRL name that replaced them, answered as such (params.yaml files and
# `dvc exp run -S` lines written before the rename).
RENAMED = {
    "sft": {
        "lr": "learning_rate",
        "epochs": "num_train_epochs",
        "batch_size": "per_device_train_batch_size",
        "grad_accum": "gradient_accumulation_steps",
        "scheduler": "lr_scheduler_type",
    },
    "grpo": {"lr": "learning_rate"},
}


# Where a number makes sense, per key: (low, high), None for open; a low of ABOVE_0 means more than 0
# (learning rates, temperatures, timeouts), any other low means at least that.
ABOVE_0 = "above 0"
RANGES = {
    "llm": {"temperature": (0, 2), "max_tokens": (1, None), "concurrency": (1, 1024), "timeout": (ABOVE_0, None),
            "max_retries": (0, 100), "max_requests": (0, None), "max_total_tokens": (0, None)},
    "generate": {"per_cell": (0, None)},
    "validate": {"min_steps": (0, None), "neutrality_threshold": (0, 1), "max_letter_share": (0, 1),
                 "near_duplicate_threshold": (0, 1), "max_other_script_share": (0, 1),
                 "max_answer_leak_share": (0, 1), "min_pass_rate": (0, 1), "max_chain_length": (1, None)},
    "tiny": dict.fromkeys(("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                           "num_attention_heads", "num_key_value_heads", "max_position_embeddings"), (1, None)),
    "train": {"num_processes": (1, None)},
    "sft": {"learning_rate": (ABOVE_0, None), "num_train_epochs": (ABOVE_0, None),
            "per_device_train_batch_size": (1, None), "gradient_accumulation_steps": (1, None),
            "max_length": (1, None), "warmup_steps": (0, None), "weight_decay": (0, None), "logging_steps": (1, None),
            "max_examples": (0, None)},
    "split": {"fraction": (ABOVE_0, 1)},
    "grpo": {"learning_rate": (ABOVE_0, None), "max_steps": (1, None), "prompts_per_step": (1, None),
             "num_generations": (2, None), "micro_batch": (0, None), "max_completion_length": (1, None),
             "temperature": (ABOVE_0, None), "beta": (0, None), "save_steps": (1, None), "logging_steps": (1, None),
             "overlong_cache": (0, None)},
    "predict": {"batch_size": (1, None), "max_new_tokens": (1, None), "repetition_penalty": (ABOVE_0, None)},
}  # fmt: skip
NESTED_RANGES = {
    ("sft", "lora"): {"r": (1, None), "alpha": (ABOVE_0, None), "dropout": (0, 0.99)},
    ("grpo", "rewards"): dict.fromkeys(("correctness", "format", "neutrality", "overlong"), (0, None)),
}


def check_range(value, bounds, key: str, source: str) -> None:
    """One line when a number lies outside its key's range (RANGES)."""
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{source}: {key}={value!r}: expected a number")
    too_low = value <= 0 if low == ABOVE_0 else low is not None and value < low
    if too_low or (high is not None and value > high):
        lo = ABOVE_0 if low == ABOVE_0 else (f"{low} or more" if low is not None else "")
        hi = f"{high} at most" if high is not None else ""
        raise UserError(f"{source}: {key}={value!r}: expected {' and '.join(x for x in (lo, hi) if x)}")


TRL_CONFIGS = {"sft": "SFTConfig", "grpo": "GRPOConfig"}


@functools.cache
def trl_fields(name: str) -> tuple[str, ...] | None:
    """The fields of TRL's config class for section `name` (SFTConfig, GRPOConfig), or None where TRL is not
    installed (the stage that needs it checks again). TRL is imported only for a non-empty `trainer:`."""
    try:
        import trl
    except ImportError:
        return None
    return tuple(f.name for f in fields(getattr(trl, TRL_CONFIGS[name])))


def check_trainer(trainer, name: str, source: str) -> None:
    """`sft.trainer` / `grpo.trainer`: a mapping whose keys are fields of TRL's config class, or one line
    naming the key (and the closest field)."""
    if trainer is None or name not in TRL_CONFIGS:
        return
    if not isinstance(trainer, dict):
        raise UserError(
            f"{source}: {name}.trainer={trainer!r}: expected a mapping of TRL {TRL_CONFIGS[name]} fields"
        )
    known = trl_fields(name) if trainer else None
    for key in trainer if known else ():
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"; did you mean {name}.trainer.{close[0]}?" if close else ""
            raise UserError(f"{source}: {name}.trainer.{key}: not a field of TRL's {TRL_CONFIGS[name]}{hint}")


def check_section(cls, section, name: str, source: str) -> dict:
    """One params.yaml section against its dataclass: unknown keys (with the closest), Literal choices,
    checked nested keys, scalar types, and `trainer:` keys that would shadow a mapped one. Returns the
    section with its scalars as their fields' types (coerce)."""
    if not isinstance(section, dict):
        raise UserError(f"{source}: {name}: expected a mapping of keys, got {section!r}")
    hints = typing.get_type_hints(cls)
    check_keys(section, [f.name for f in fields(cls)], f"{name}.", source, RENAMED.get(name, {}))
    shadowed = [k for k in (section.get("trainer") or {}) if k in TRL_KEYS.get(name, ())]
    if shadowed:
        k = shadowed[0]
        raise UserError(
            f"{source}: {name}.trainer.{k} would override {name}.{k} behind its back; set {name}.{k} instead"
        )
    check_trainer(section.get("trainer"), name, source)
    out = dict(section)
    for f in fields(cls):
        if f.name not in section:
            continue
        value, hint = section[f.name], hints[f.name]
        if typing.get_origin(hint) is Literal and value not in typing.get_args(hint):
            allowed = " | ".join(str(a) for a in typing.get_args(hint))
            raise UserError(f"{source}: {name}.{f.name}={value!r}: expected one of {allowed}")
        if (name, f.name) in NESTED and isinstance(value, dict):
            check_keys(value, list(NESTED[(name, f.name)]), f"{name}.{f.name}.", source)
        out[f.name] = coerce(value, hint, f"{name}.{f.name}", source)
        if f.name in RANGES.get(name, {}):
            check_range(out[f.name], RANGES[name][f.name], f"{name}.{f.name}", source)
        for k, bounds in NESTED_RANGES.get((name, f.name), {}).items():
            if isinstance(value, dict) and k in value:
                check_range(value[k], bounds, f"{name}.{f.name}.{k}", source)
    return out


_SCALARS = {float: "a number", int: "a whole number", bool: "true or false", str: "a string"}


def coerce(value, hint, key: str, source: str):
    """`value` as the field's scalar type, or one line naming key, value and what is allowed. YAML reads
    `1e-05` (no dot: what `dvc exp run -S grpo.learning_rate=1e-5` writes) as a string, so a string that
    is a number is taken as one for a float field; `three` for an int, or `1.5` for a bool, is refused."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # `float | None` and the like
        if value is None and type(None) in typing.get_args(hint):
            return None
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else hint
    origin = typing.get_origin(hint) or hint
    if origin is tuple:  # a [low, high] pair (validate.question_length)
        ok = isinstance(value, list | tuple) and len(value) == 2
        ok = (
            ok
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            and 0 <= value[0] <= value[1]
        )
        if not ok:
            raise UserError(
                f"{source}: {key}={value!r}: expected [low, high], whole numbers, 0 <= low <= high"
            )
        return value
    if origin is list:  # a list (generate.topics) given as one string would be read letter by letter
        if not isinstance(value, list | tuple) or not all(isinstance(v, str | int | float) for v in value):
            raise UserError(f"{source}: {key}={value!r}: expected a list, e.g. [a, b]")
        return value
    if hint not in _SCALARS:
        return value
    if hint is float and not isinstance(value, bool):
        if isinstance(value, int):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    if not isinstance(value, hint) or (hint is not bool and isinstance(value, bool)):
        raise UserError(f"{source}: {key}={value!r}: expected {_SCALARS[hint]}")
    return value


def check_keys(d: dict, known: list[str], prefix: str, source: str, renamed: dict | None = None) -> None:
    renamed = renamed or {}
    for key in d:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.5)
        if key in renamed:
            hint = f"; renamed to {prefix}{renamed[key]}, TRL's name"
        elif close:
            hint = f"; did you mean {prefix}{close[0]}?"
        else:
            hint = f"; known: {', '.join(known)}"
        raise UserError(f"{source}: unknown key {prefix}{key}{hint}")


def choose(value: str, allowed: tuple[str, ...], key: str) -> str:
    if value not in allowed:
        raise UserError(f"params: {key}={value!r}: expected one of {', '.join(allowed)}")
    return value


def section(params: dict, name: str):
    """Section `name` of params load_params returned, as its typed dataclass (checked again, as a
    section's own `from_params` does, for params built by hand): stages read fields, not dict keys."""
    cls = sections()[name]
    d = params.get(name) or {}
    return cls.from_params(d) if hasattr(cls, "from_params") else build(cls, d, name)


def build(cls, d: dict, section: str):
    """A params dataclass from its params.yaml section: unknown keys, choices and shadowing checked
    (check_section) as one line each, never a TypeError."""
    return cls(**check_section(cls, d or {}, section, "params.yaml"))
