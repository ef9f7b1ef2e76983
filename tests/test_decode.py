"""The static-cache decoder (GRPO `fast` generation) samples what HF `generate` samples."""

import pytest
import torch
from transformers import GenerationConfig

from conftest import sample_records
from mcqflow.core.prompts import render_prompt
from mcqflow.modeling.models import load_base_model, load_tokenizer
from mcqflow.train.fast.decode import Decoder, end_processor, supports


@pytest.fixture(scope="module")
def lm(tiny_dir):
    torch.manual_seed(0)
    model = load_base_model(tiny_dir).eval()
    with torch.no_grad():  # sharper logits than the init's, so that greedy and sampled paths differ by row
        for name, p in model.named_parameters():
            if "layers" in name and "norm" not in name:
                p.mul_(8)
    tok = load_tokenizer(tiny_dir, padding_side="left")
    # Prompts of different lengths: left padding, and rows whose first positions are all pad.
    prompts = [
        render_prompt(tok, r, m)
        for r, m in zip(sample_records("dev")[:5], ["plain", "reasoning"] * 2 + ["plain"], strict=True)
    ]
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    assert (enc.attention_mask == 0).any()
    return model, tok, enc


def _config(tok, **kw):
    return GenerationConfig(
        max_new_tokens=kw.pop("max_new_tokens", 14),
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        **kw,
    )


def _both(lm, gc, end_at=None, seed=0):
    model, _, enc = lm
    procs = None
    if end_at is not None:
        from transformers import LogitsProcessorList

        procs = LogitsProcessorList([end_processor(end_at, enc.input_ids.shape[1], gc.eos_token_id)])
    torch.manual_seed(seed)
    with torch.no_grad():
        hf = model.generate(**enc, generation_config=gc, logits_processor=procs)
    torch.manual_seed(seed)
    ours = Decoder(model).generate(enc.input_ids, enc.attention_mask, gc, end_at=end_at)
    return hf, ours


@pytest.mark.parametrize(
    "kw",
    [
        {"do_sample": False},
        {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0},  # TRL's GRPO defaults
        {"do_sample": True, "temperature": 0.7, "top_k": 20, "top_p": 0.9},
    ],
    ids=["greedy", "sampled", "warped"],
)
def test_same_tokens_as_generate(lm, kw):
    gc = _config(lm[1], **kw)
    hf, ours = _both(lm, gc)
    assert ours.shape == hf.shape
    assert torch.equal(ours, hf)
    assert len({tuple(r) for r in ours[:, lm[2].input_ids.shape[1] :].tolist()}) > 1


def test_sampling_draws_from_the_seed(lm):
    gc = _config(lm[1], do_sample=True)
    _, a = _both(lm, gc, seed=1)
    _, b = _both(lm, gc, seed=2)
    assert not torch.equal(a, b)


def test_forced_ends_stop_rows_where_asked_and_pad_after(lm):
    """The benchmark's ragged shape: each row ends at its own length, the batch at the longest."""
    model, tok, enc = lm
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    end_at = torch.tensor([3, 9, 1, 6, 9])
    gc = _config(tok, do_sample=True, max_new_tokens=40)
    hf, ours = _both(lm, gc, end_at=end_at)
    assert torch.equal(ours, hf)
    completions = ours[:, enc.input_ids.shape[1] :]
    assert completions.shape[1] == 9  # stopped with the longest row, not at max_new_tokens
    for row, n in zip(completions.tolist(), end_at.tolist(), strict=True):
        assert row[n - 1] == eos and eos not in row[: n - 1]
        assert set(row[n:]) <= {tok.pad_token_id}


def test_a_second_call_reuses_the_buffers_and_gives_the_same_tokens(lm):
    model, tok, enc = lm
    gc = _config(tok, do_sample=True)
    dec = Decoder(model)
    outs = []
    for _ in range(2):
        torch.manual_seed(5)
        outs.append(dec.generate(enc.input_ids, enc.attention_mask, gc))
    assert len(dec.runs) == 1
    assert torch.equal(outs[0], outs[1])
    # A shorter batch of shorter prompts in the same decoder: a run of its own, still equal to generate.
    torch.manual_seed(5)
    short = dec.generate(enc.input_ids[:2, -20:], enc.attention_mask[:2, -20:], gc)
    torch.manual_seed(5)
    with torch.no_grad():
        hf = model.generate(
            input_ids=enc.input_ids[:2, -20:],
            attention_mask=enc.attention_mask[:2, -20:],
            generation_config=gc,
        )
    assert torch.equal(short, hf)


@pytest.fixture
def compacting(monkeypatch):
    """Compaction at the tests' scale: a check every two steps, down to one row."""
    import mcqflow.train.fast.decode as decode

    monkeypatch.setattr(decode, "CHECK_EVERY", 2)
    monkeypatch.setattr(decode, "MIN_ROWS", 1)


def test_compaction_gives_generate_s_greedy_tokens_over_fewer_rows(lm, compacting):
    """Rows that end leave the batch (5 -> 2 -> 1 rows here); greedy tokens stay generate's, every row in
    its own place, and a second call on the same buffers gives them again."""
    model, tok, enc = lm
    end_at = torch.tensor([3, 12, 1, 6, 20])
    gc = _config(tok, do_sample=False, max_new_tokens=40)
    hf, plain = _both(lm, gc, end_at=end_at)
    assert torch.equal(plain, hf)
    dec = Decoder(model, compact=True)
    for _ in range(2):
        ours = dec.generate(enc.input_ids, enc.attention_mask, gc, end_at=end_at)
        assert torch.equal(ours, hf)
    (run,) = dec.runs.values()
    assert sorted(run.views) == [1, 2]  # the batch went on over 2 rows, then 1
    # Without forced ends nothing finishes early: no view is made
    free = Decoder(model, compact=True)
    assert torch.equal(
        free.generate(enc.input_ids, enc.attention_mask, gc), model.generate(**enc, generation_config=gc)
    )
    assert not next(iter(free.runs.values())).views


def test_compaction_keeps_sampled_rows_whole_and_in_place(lm, compacting):
    """Sampling over fewer rows draws other random numbers than generate, but each row still ends where it
    must, pads after, and no row's tokens land in another's (the prompts differ, so do the rows)."""
    model, tok, enc = lm
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    end_at = torch.tensor([3, 12, 1, 6, 20])
    gc = _config(tok, do_sample=True, max_new_tokens=40)
    torch.manual_seed(0)
    ours = Decoder(model, compact=True).generate(enc.input_ids, enc.attention_mask, gc, end_at=end_at)
    assert torch.equal(ours[:, : enc.input_ids.shape[1]], enc.input_ids)
    completions = ours[:, enc.input_ids.shape[1] :]
    assert completions.shape[1] == 20
    for row, n in zip(completions.tolist(), end_at.tolist(), strict=True):
        assert row[n - 1] == eos and eos not in row[: n - 1]
        assert set(row[n:]) <= {tok.pad_token_id}


def _groups(lm, size=3):
    """GRPO's generation batch: each prompt `size` times, a group's rows side by side."""
    _, _, enc = lm
    return enc.input_ids.repeat_interleave(size, 0), enc.attention_mask.repeat_interleave(size, 0)


def test_prefill_once_runs_each_prompt_once_with_generate_s_greedy_tokens(lm):
    """A prompt its group shares is prefilled once; its keys and values reach every row of the group. The
    first call of a run prefills every row (it allocates the cache), later ones the distinct prompts."""
    model, tok, _ = lm
    ids, mask = _groups(lm)
    gc = _config(tok, do_sample=False)
    with torch.no_grad():
        hf = model.generate(input_ids=ids, attention_mask=mask, generation_config=gc)
    plain, once = Decoder(model), Decoder(model, prefill_once=True)
    want = plain.generate(ids, mask, gc)
    assert torch.equal(want, hf) and plain.prefilled_rows == 15
    for rows in (15, 5):
        assert torch.equal(once.generate(ids, mask, gc), hf)
        assert once.prefilled_rows == rows
    # the prompt's slots: each row as the plain decoder wrote them (to float rounding), a group's bit for bit
    prompt = ids.shape[1]
    for mine, theirs in zip(
        next(iter(once.runs.values())).cache.layers, next(iter(plain.runs.values())).cache.layers, strict=True
    ):
        for got, ref in ((mine.keys, theirs.keys), (mine.values, theirs.values)):
            got, ref = got[:, :, :prompt], ref[:, :, :prompt]
            torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
            assert torch.equal(got[0::3], got[1::3]) and torch.equal(got[0::3], got[2::3])
            assert not torch.equal(got[0], got[3])  # the groups' prompts differ


def test_prefill_once_with_compaction_keeps_each_row_s_tokens(lm, compacting):
    """Both on, as on a GPU: rows end at their own lengths and leave the batch; greedy tokens stay
    generate's, each in its own row, call after call."""
    model, tok, _ = lm
    ids, mask = _groups(lm)
    end_at = torch.tensor([3, 12, 1, 6, 20] * 3)
    gc = _config(tok, do_sample=False, max_new_tokens=40)
    from transformers import LogitsProcessorList

    procs = LogitsProcessorList([end_processor(end_at, ids.shape[1], gc.eos_token_id)])
    with torch.no_grad():
        hf = model.generate(input_ids=ids, attention_mask=mask, generation_config=gc, logits_processor=procs)
    dec = Decoder(model, compact=True, prefill_once=True)
    for rows in (15, 5):
        assert torch.equal(dec.generate(ids, mask, gc, end_at=end_at), hf)
        assert dec.prefilled_rows == rows


def test_prefill_once_leaves_distinct_prompts_alone(lm):
    model, tok, enc = lm
    gc = _config(tok, do_sample=False)
    dec = Decoder(model, prefill_once=True)
    for _ in range(2):
        dec.generate(enc.input_ids, enc.attention_mask, gc)
        assert dec.prefilled_rows == 5
    assert not next(iter(dec.runs.values())).views  # no view of fewer rows was made for it


def test_compaction_buckets_halve_while_the_running_rows_fit():
    from mcqflow.train.fast.decode import MIN_ROWS

    bucket = Decoder._bucket
    assert bucket(100, 128) == 128  # more than half still running: no copy
    assert bucket(64, 128) == 64 and bucket(33, 128) == 64 and bucket(32, 128) == 32
    assert bucket(1, 128) == MIN_ROWS == 8  # never below MIN_ROWS
    assert bucket(3, 8) == 8


def test_configs_it_cannot_sample_exactly_stay_with_generate(lm):
    tok = lm[1]
    assert supports(_config(tok, do_sample=True, top_k=0))
    assert not supports(_config(tok, do_sample=True, repetition_penalty=1.1))
    assert not supports(_config(tok, do_sample=True, min_p=0.05))
    assert not supports(_config(tok, num_beams=2))


def test_grpo_with_graph_decoding_trains_the_same_adapter_and_splits_its_steps(
    tiny_dir, tmp_path, monkeypatch
):
    """The lever changes how samples are drawn, not which: two LoRA GRPO steps from one seed end with the
    same adapter weights either way. The benchmark's hooks work on the way: forced completion lengths, and
    a per-step split of the time."""
    import dataclasses

    from safetensors.torch import load_file

    from mcqflow.train.grpo import GRPOParams, StepSplit, train_grpo
    from mcqflow.train.profiles import PROFILES
    from mcqflow.train.training import SFTParams, lora_config

    recs = sample_records("train")[:8]
    params = GRPOParams(
        mode="plain", learning_rate=1e-2, max_steps=2, prompts_per_step=2, num_generations=4, max_completion_length=10,
        shuffle_options=False, save_steps=100, rewards={"correctness": 1.0, "neutrality": 1.0},
    )  # fmt: skip
    seen: list[int] = []

    def lengths(n):
        got = torch.tensor([1 + (i * 3) % 10 for i in range(n)])
        seen.extend(got.tolist())
        return got

    calls = []
    real = Decoder.generate
    monkeypatch.setattr(Decoder, "generate", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    out, splits = {}, {}
    for graph in (False, True):
        profile = dataclasses.replace(PROFILES["cpu"], merged_generation=True, graph_decode=graph)
        splits[graph] = StepSplit()
        train_grpo(recs, tiny_dir, tmp_path / f"m{graph}", tmp_path / f"c{graph}", params, seed=0,
                   finetune="lora", lora_config=lora_config(SFTParams(finetune="lora")), profile=profile,
                   step_split=splits[graph], end_lengths=lengths)  # fmt: skip
        out[graph] = load_file(tmp_path / f"m{graph}" / "adapter_model.safetensors")
    assert len(calls) == 2  # the second run sampled through the decoder, once a step
    assert out[True].keys() == out[False].keys()
    moved = [k for k in out[True] if "lora_B" in k and out[True][k].abs().max() > 0]
    assert moved  # B starts at zero: the steps did train
    for k in out[True]:
        torch.testing.assert_close(out[True][k], out[False][k])
    assert seen[:8] == seen[16:24]  # both runs asked for the same lengths, one batch of 8 a step
    for split in splits.values():
        assert len(split.steps) == 2
        step = split.steps[-1]
        assert set(step) == {*StepSplit.PARTS, "total"}
        assert step["generation"] > 0 and step["forward_backward"] > 0
        assert abs(sum(step[p] for p in StepSplit.PARTS) - step["total"]) < 1e-3


def test_windows_give_generate_s_tokens_reading_only_the_slots_written(lm, compacting, monkeypatch):
    """Each step attends to the smallest multiple of WINDOW slots that holds every slot written by the next
    check: the same tokens as generate (greedy and from one seed), while the steps read windows that grow
    with the completion instead of the whole cache; with compaction too."""
    import mcqflow.train.fast.decode as decode

    model, tok, enc = lm
    monkeypatch.setattr(decode, "WINDOW", 4)
    prompt = enc.input_ids.shape[1]
    widths: list[int] = []
    attend = decode.decode_attention

    def watched(module, query, key, *args, **kwargs):
        if query.shape[2] == 1 and decode._current_window[0] is not None:
            widths.append(min(decode._current_window[0], key.shape[2]))
        return attend(module, query, key, *args, **kwargs)

    monkeypatch.setattr(decode, "decode_attention", watched)
    end_at = torch.tensor([3, 12, 1, 6, 20])
    # sampled: on a CPU only, where the steps run eagerly and draw generate's numbers (a graph draws its own)
    for kw in [{"do_sample": False}, *([{"do_sample": True}] if model.device.type == "cpu" else [])]:
        gc = _config(tok, max_new_tokens=40, **kw)
        hf, ours = _both(lm, gc)
        assert torch.equal(ours, hf)
        length = -(-(prompt + 40) // 64) * 64
        assert widths and min(widths) == -(-(prompt + 1 + decode.CHECK_EVERY) // 4) * 4 < length
        assert widths == sorted(widths)  # windows only grow within a generation
        widths.clear()
    gc = _config(tok, do_sample=False, max_new_tokens=40)
    hf, _ = _both(lm, gc)
    widths.clear()
    assert torch.equal(Decoder(model, windows=False).generate(enc.input_ids, enc.attention_mask, gc), hf)
    assert set(widths) == {length}  # without windows every step reads the whole cache
    hf, _ = _both(lm, gc, end_at=end_at)
    assert torch.equal(
        Decoder(model, compact=True).generate(enc.input_ids, enc.attention_mask, gc, end_at=end_at), hf
    )


def test_window_grows_by_whole_windows_and_never_past_the_cache():
    import mcqflow.train.fast.decode as decode

    w, every = decode.WINDOW, decode.CHECK_EVERY
    assert Decoder._window(100, 1, 1024) == -(-(101 + every) // w) * w
    assert Decoder._window(100, 1, 1024) % w == 0
    assert Decoder._window(1000, 500, 1536) == 1536  # the cache's own length at most
    # every slot the next CHECK_EVERY steps write is inside
    for prompt, done in [(17, 1), (17, 33), (250, 111)]:
        assert Decoder._window(prompt, done, 4096) >= prompt + done - 1 + every
