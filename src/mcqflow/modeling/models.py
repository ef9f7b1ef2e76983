"""Base models: the embedded tiny default, Hugging Face ids / local directories, and trained outputs.

`model.base: tiny` is a Qwen2-architecture causal LM with seeded random weights and a byte-level BPE
tokenizer trained on the project's own corpus, with a Qwen-style chat template. It lets the whole
pipeline run offline on a CPU; every other path (bf16, NF4 through bitsandbytes, LoRA adapters)
is the same code a 7B/14B model goes through.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import torch

from mcqflow.core.errors import UserError
from mcqflow.core.locate import looks_like_a_path, no_such_folder
from mcqflow.modeling.architectures import ARCHITECTURES, QWEN2_5_COMMON
from mcqflow.modeling.embedded import ensure as embedded_dir
from mcqflow.modeling.embedded import is_embedded

TINY = "tiny"
META_FILE = "mcqflow.json"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen2.5's template minus tool calls: the same <|im_start|>role\n ... <|im_end|>\n framing.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
TINY_DEFAULTS = dict(
    vocab_size=3000,
    hidden_size=128,
    intermediate_size=384,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
)


def train_tokenizer(corpus: Iterable[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on `corpus`, with Qwen's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=CHAT_TEMPLATE
    )


def _save_qwen2(tokenizer, config: dict, out_dir: str | Path, device=None) -> Path:
    """A seeded random-init Qwen2 causal LM with `config`, saved with `tokenizer` to `out_dir`."""
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    eos, pad = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    cfg = Qwen2Config(**config, eos_token_id=eos, pad_token_id=pad, bos_token_id=None)
    if device is None:
        model = Qwen2ForCausalLM(cfg)
    else:
        with torch.device(device):
            model = Qwen2ForCausalLM._from_config(cfg, dtype=torch.bfloat16)
    model.generation_config = GenerationConfig(eos_token_id=[eos, pad], pad_token_id=pad, do_sample=False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_tiny(corpus: Iterable[str], out_dir: str | Path, seed: int = 0, **config) -> Path:
    """Train the tokenizer on `corpus`, initialise a Qwen2 model from `seed`, save both to `out_dir`.

    Deterministic: the same corpus, seed and config give byte-identical files."""
    cfg = {**TINY_DEFAULTS, **config}
    tokenizer = train_tokenizer(corpus, cfg["vocab_size"])
    torch.manual_seed(seed)
    return _save_qwen2(tokenizer, {**cfg, "vocab_size": len(tokenizer), "tie_word_embeddings": True}, out_dir)


def build_random(arch: str, tokenizer, out_dir: str | Path, seed: int = 0, shard_gib: float = 4.0) -> Path:
    """Random-init bf16 weights of a named architecture (ARCHITECTURES), saved with `tokenizer` (whose ids
    all fall inside the model's vocabulary) as sharded safetensors.

    The model is never whole in memory: its shapes come from a meta-device copy, and each tensor is drawn
    (on the GPU when there is one), moved to the host and written shard by shard, so 72B weights (145 GB)
    are built on a machine none of whose cards or RAM could hold them twice. Values follow the config's
    init (normal, std `initializer_range`; norms 1, biases 0); throughput does not depend on them."""
    from safetensors.torch import save_file
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    if arch not in ARCHITECTURES:
        raise UserError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    eos, pad = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    cfg = Qwen2Config(
        **QWEN2_5_COMMON, **ARCHITECTURES[arch], eos_token_id=eos, pad_token_id=pad, bos_token_id=None
    )
    cfg.dtype = torch.bfloat16
    with torch.device("meta"):
        model = Qwen2ForCausalLM(cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = "cuda" if on_gpu() else "cpu"
    gen = torch.Generator(device=device).manual_seed(seed)
    shapes = {n: t.shape for n, t in model.state_dict().items()}
    if cfg.tie_word_embeddings:
        shapes.pop("lm_head.weight")  # the embedding, saved once
    written: list[tuple[Path, list[str], int]] = []
    current: dict[str, torch.Tensor] = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight"):
            t = torch.ones(shape, dtype=torch.bfloat16)
        elif name.endswith(".bias"):
            t = torch.zeros(shape, dtype=torch.bfloat16)
        else:
            t = torch.empty(shape, dtype=torch.bfloat16, device=device)
            t.normal_(0.0, cfg.initializer_range, generator=gen)
            t = t.cpu()
        if current and sum(x.nbytes for x in current.values()) + t.nbytes > shard_gib * 2**30:
            written.append(_write_shard(save_file, current, out, len(written) + 1))  # host memory: one shard
            current = {}
        current[name] = t
    written.append(_write_shard(save_file, current, out, len(written) + 1))
    weight_map, total_size = {}, 0
    for i, (tmp, keys, nbytes) in enumerate(written, 1):
        final = out / f"model-{i:05d}-of-{len(written):05d}.safetensors"
        tmp.rename(final)
        weight_map.update({k: final.name for k in keys})
        total_size += nbytes
    index = {"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    cfg.save_pretrained(out)
    GenerationConfig(eos_token_id=[eos, pad], pad_token_id=pad, do_sample=False).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _write_shard(save_file, tensors: dict, out: Path, number: int) -> tuple[Path, list[str], int]:
    """Write one shard under a temporary name (renamed once the count is known)."""
    tmp = out / f"shard-{number:05d}.tmp.safetensors"
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    return tmp, list(tensors), sum(t.nbytes for t in tensors.values())


def on_gpu() -> bool:
    return torch.cuda.is_available()


def fp8_supported() -> bool:
    """This machine's GPU runs FP8 matmuls natively: compute capability 8.9 or later (Ada, Hopper, ...)."""
    return on_gpu() and hasattr(torch, "_scaled_mm") and torch.cuda.get_device_capability() >= (8, 9)


def synchronize() -> None:
    """Wait for the GPU's queued work (timing boundaries); nothing on a CPU."""
    if on_gpu():
        torch.cuda.synchronize()


def bind_local_gpu() -> None:
    """Under a launcher (LOCAL_RANK set) make this process's GPU the current device, so that `.to("cuda")`
    and NF4's device map put each rank's model on its own card, not every rank's on GPU 0."""
    if on_gpu() and "LOCAL_RANK" in os.environ:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]) % torch.cuda.device_count())


DTYPES = ("auto", "bfloat16", "float32")


def compute_dtype(dtype: str = "auto") -> torch.dtype:
    """params.yaml `model.dtype`: `auto` is bf16 on a GPU that has it and fp32 elsewhere (the tiny model's
    results stay what they were); `bfloat16` on a CPU with bf16 kernels halves the time of a real model
    (measured on the embedded 0.5B: letter scoring 0.43 against 0.81 s a question)."""
    if dtype not in DTYPES:
        raise UserError(f"params: model.dtype={dtype!r}: expected one of {', '.join(DTYPES)}")
    if dtype == "auto":
        return torch.bfloat16 if on_gpu() and torch.cuda.is_bf16_supported() else torch.float32
    return getattr(torch, dtype)


def resolve_base(name: str, tiny_dir: str | Path = "models/tiny") -> str:
    """`tiny` means the model the tiny_model stage built; `embedded` and anything else (a HF id or a
    directory) are resolved when loaded."""
    if name == TINY:
        if not (Path(tiny_dir) / "config.json").exists():
            raise UserError(
                f"the tiny model is not built yet: run `dvc repro tiny_model` (expected "
                f"{Path(tiny_dir).absolute()}; `tiny` means the project's models/tiny, so run from the project's "
                f"root or give the folder itself)"
            )
        return str(tiny_dir)
    return name


def load_tokenizer(name_or_path: str, padding_side: str = "right", param: str = "model.base"):
    from transformers import AutoTokenizer

    tok = _from_pretrained(AutoTokenizer, name_or_path, param=param)
    tok.padding_side = padding_side
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_base_model(
    name_or_path: str, quantization: str = "none", param: str = "model.base", dtype: str = "auto"
):
    """Load a causal LM in `dtype` (compute_dtype), or in 4-bit NF4 through bitsandbytes. `param` is
    the params.yaml key that named it, for the error line when it is missing."""
    from transformers import AutoModelForCausalLM

    kwargs: dict = {"dtype": compute_dtype(dtype)}
    bind_local_gpu()
    fsdp = under_fsdp()
    if fsdp:
        # The process group first: with the config's fsdp_cpu_ram_efficient_loading, transformers then reads
        # the weights on rank 0 only (the other ranks build on the meta device) and accelerate broadcasts
        # each layer's shards as it wraps it, so no process or card ever holds N copies of the model.
        from accelerate import PartialState

        PartialState()
    if quantization == "nf4":
        if not on_gpu():
            raise UserError("model.quantization=nf4 needs a CUDA GPU and bitsandbytes; use 'none' on a CPU")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise UserError("model.quantization=nf4 needs bitsandbytes: pip install 'mcqflow[gpu]'") from None
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=True,
        )
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    elif quantization != "none":
        raise UserError(f"model.quantization={quantization!r}: expected none or nf4")
    model = _from_pretrained(AutoModelForCausalLM, name_or_path, param=param, **kwargs)
    if on_gpu() and quantization == "none" and not fsdp:  # under FSDP, accelerate places the shards
        model = model.to("cuda")
    return model


def under_fsdp() -> bool:
    """True in a process that accelerate launched with an FSDP config (on a GPU; a CPU runs it as DDP)."""
    return on_gpu() and os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true")


def _from_pretrained(cls, name_or_path: str, param: str = "model.base", **kwargs):
    """Local files first; the hub only when allowed. A missing model is one line that says what to do.

    `embedded` (mcqflow.modeling.embedded) is resolved here, at load time, so that the name saved in metadata
    stays `embedded` and a trained adapter loads on any machine with the extra installed."""
    if is_embedded(name_or_path):
        name_or_path = embedded_dir()
    # Weights come from a folder or the Hugging Face cache; asking the hub is opt-in (MCQFLOW_DOWNLOAD=1), so
    # a model that is not here is one line at once, not a minute of retries on a machine without network.
    download = os.environ.get("MCQFLOW_DOWNLOAD") == "1" and os.environ.get("HF_HUB_OFFLINE") != "1"
    if os.path.isdir(name_or_path) or not download:
        attempts = [{"local_files_only": True}]
    else:
        attempts = [{"local_files_only": True}, {}]
    for extra in attempts:
        try:
            return cls.from_pretrained(name_or_path, **kwargs, **extra)
        except (OSError, ValueError) as e:
            err = e
    if os.path.isdir(name_or_path):
        raise UserError(f"{name_or_path}: not a loadable model directory ({str(err).splitlines()[0]})")
    if looks_like_a_path(name_or_path):
        raise no_such_folder(name_or_path, param)
    where = f"give {param} that directory" if param.startswith("-") else f"set {param} to that directory"
    raise UserError(
        f"{param} {name_or_path!r}: not available on this machine: download it where there is internet "
        f"(`hf download {name_or_path} --local-dir models/{name_or_path.split('/')[-1]}`), copy it here and "
        f"{where} (or let transformers fetch it: MCQFLOW_DOWNLOAD=1)"
    )


def write_meta(out_dir: str | Path, **meta) -> None:
    Path(out_dir, META_FILE).write_text(
        json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def read_meta(model_dir: str | Path) -> dict:
    p = Path(model_dir, META_FILE)
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}


def load_for_inference(
    model: str, adapter: str | None = None, quantization: str | None = None, dtype: str = "auto",
    param: str = "model.base",
):  # fmt: skip
    """Return (model, tokenizer) ready for batched inference with left padding.

    `model` is `tiny`, a HF id, a local base directory, or a directory trained by `mcqflow` (a full model,
    or a LoRA adapter whose base is recorded in its metadata). `adapter` adds a LoRA adapter on top.
    `param` is what the user set `model` with (a params key, or a flag such as --model), for the errors."""
    model_dir = resolve_base(model)
    meta = read_meta(model_dir)
    if adapter is None and Path(model_dir, "adapter_config.json").exists():
        adapter, model_dir = model_dir, meta.get("base") or _adapter_base(model_dir)
    quant = quantization or meta.get("quantization", "none")
    tokenizer = load_tokenizer(adapter or model_dir, padding_side="left", param=param)
    base = load_base_model(model_dir, quant, dtype=dtype, param=param)
    if adapter:
        from peft import PeftModel

        base = PeftModel.from_pretrained(base, adapter)
        if quant == "none":
            base = base.merge_and_unload()  # plain matmuls at inference: no adapter overhead
    base.eval()
    return base, tokenizer


def _adapter_base(adapter_dir: str) -> str:
    cfg = json.loads(Path(adapter_dir, "adapter_config.json").read_text(encoding="utf-8"))
    return cfg["base_model_name_or_path"]


def tiny_corpus(records) -> list[str]:
    """What the tiny tokenizer learns from: the data itself plus every fixed string of the prompts."""
    from mcqflow.core.prompts import INSTRUCTION, QUESTION_LABEL, SYSTEM

    texts = [*SYSTEM.values(), *INSTRUCTION.values(), *QUESTION_LABEL.values()]
    for r in records:
        texts.append(r.question)
        texts.extend(r.options.values())
        if r.reasoning:
            texts.append(r.reasoning)
    return texts
