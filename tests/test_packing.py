"""Padding-free SFT (the `fast` profile's `padding_free` lever) trains what padded batches train."""

import contextlib
import dataclasses
import json

import torch

from conftest import sample_records
from mcqflow.train.fast import packing
from mcqflow.train.profiles import PROFILES
from mcqflow.train.training import SFTParams, train_sft


def _ragged_records():
    recs = sample_records("train")[:12]
    # Lengths far apart, so that padded rows hold a lot of padding and a leak across examples would show.
    return [dataclasses.replace(r, question=r.question * (1 + i % 4)) for i, r in enumerate(recs)]


def test_packed_batches_train_the_same_weights_as_padded_ones(tiny_dir, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    calls = []
    real = packing.varlen_attention
    run = ["padded"]
    monkeypatch.setattr(
        packing, "varlen_attention", lambda *a, **k: calls.append((run[0], k)) or real(*a, **k)
    )
    params = SFTParams(
        finetune="full",
        learning_rate=1e-3,
        num_train_epochs=1,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        max_length=512,
        lr_scheduler_type="constant",
    )
    records = _ragged_records()
    # Packed rows padded to a multiple of 64 tokens: the pad tokens are segments of their own, without loss.
    rounded = dataclasses.replace(params, trainer={"pad_to_multiple_of": 64})
    out, metrics = {}, {}
    for name, free, p in (("padded", False, params), ("packed", True, params), ("rounded", True, rounded)):
        profile = dataclasses.replace(PROFILES["cpu"], padding_free=free)
        run[0] = name
        metrics[name] = train_sft(records, "plain", tiny_dir, tmp_path / name, p, profile=profile)
        out[name] = load_file(tmp_path / name / "model.safetensors")
    assert (metrics["padded"]["padding_free"], metrics["packed"]["padding_free"]) == (False, True)
    seen = {name: [k["cu_seq_lens_q"] for n, k in calls if n == name] for name in metrics}
    assert not seen["padded"]
    assert seen["packed"] and all(len(cu) == 5 for cu in seen["packed"])  # 4 examples a row, packed
    assert seen["rounded"] and all(int(cu[-1]) % 64 == 0 for cu in seen["rounded"])
    assert any(len(cu) > 5 for cu in seen["rounded"])  # pad tokens as segments after the 4 examples
    for name in ("packed", "rounded"):
        assert abs(metrics[name]["train_loss"] - metrics["padded"]["train_loss"]) < 1e-5, name
    start = load_file(f"{tiny_dir}/model.safetensors")
    moved = 0.0
    for k, w in out["padded"].items():
        torch.testing.assert_close(out["packed"][k], w, rtol=0, atol=2e-5)
        torch.testing.assert_close(out["rounded"][k], w, rtol=0, atol=2e-5)
        moved = max(moved, (w - start[k]).abs().max().item())
    assert moved > 1e-3
    # The saved model loads with its own attention, not the training-only packed one.
    assert packing.ATTENTION not in json.dumps(json.loads((tmp_path / "packed" / "config.json").read_text()))


def test_examples_do_not_attend_across_their_bounds():
    """Each example's output depends on its own tokens alone: changing the first example leaves the second's
    attention output unchanged (padding-free attention with a leak would not)."""
    torch.manual_seed(0)
    heads, kv_heads, dim = 4, 2, 8
    cu = torch.tensor([0, 5, 12], dtype=torch.int32)

    def run(q, k, v):
        module = torch.nn.Module()
        out, _ = packing.varlen_attention(module, q, k, v, None, cu_seq_lens_q=cu, max_length_q=7)
        return out

    q = torch.randn(1, heads, 12, dim)
    k, v = torch.randn(1, kv_heads, 12, dim), torch.randn(1, kv_heads, 12, dim)
    a = run(q, k, v)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, :5] += 3.0
    v2[:, :, :5] -= 2.0
    b = run(q, k2, v2)
    assert a.shape == (1, 12, heads, dim)
    torch.testing.assert_close(a[:, 5:], b[:, 5:])
    assert not torch.allclose(a[:, :5], b[:, :5])
    # Causal within an example: the second example's first token sees only itself.
    expected = v[0, :, 5].repeat_interleave(heads // kv_heads, dim=0)
    torch.testing.assert_close(a[0, 5], expected)


def _grouped_micro_batch(tok, prompt_width=12, completion_width=9):
    """A GRPO micro-batch as TRL pads it (prompts on the left, completions on the right): prompt A three
    times, B twice, C once, completions of their own lengths, rows of a group not side by side."""
    torch.manual_seed(1)
    prompts = {g: torch.randint(20, 400, (n,)).tolist() for g, n in (("A", 12), ("B", 7), ("C", 1))}
    plan = [("A", 9), ("B", 3), ("A", 1), ("C", 5), ("B", 9), ("A", 6)]
    ids = torch.full((len(plan), prompt_width + completion_width), tok.pad_token_id)
    mask = torch.zeros_like(ids)
    lengths, groups = [], []
    for r, (g, c) in enumerate(plan):
        p = len(prompts[g])
        ids[r, prompt_width - p : prompt_width] = torch.tensor(prompts[g])
        ids[r, prompt_width : prompt_width + c] = torch.randint(20, 400, (c,))
        mask[r, prompt_width - p : prompt_width + c] = 1
        lengths.append([p, c])
        groups.append("ABC".index(g))
    return ids, mask, completion_width, torch.tensor(lengths), torch.tensor(groups)


def _completion_logps(model, rows, index, first, shape, logits_to_keep):
    logits = model(**rows).logits.float()
    labels = rows["input_ids"][0, 1:]
    per_token = logits[0, :-1].log_softmax(-1).gather(1, labels[:, None]).T  # [1, tokens - 1]
    return packing.unpack_rows(per_token, index, first, shape)[:, -logits_to_keep:]


def test_shared_prompts_give_each_row_its_own_log_probs_and_gradients(tiny_dir):
    """`pack_groups`: each group's prompt runs once (23 prompt tokens where the rows hold 51), and every completion
    token's log-probability and the weights' gradients are those of the rows packed one by one."""
    from mcqflow.modeling.models import load_base_model, load_tokenizer

    model = load_base_model(tiny_dir)
    gpu = model.device.type == "cuda"  # flash varlen attention there, which takes bf16, not fp32
    model = model.to(torch.bfloat16 if gpu else torch.float32)
    tok = load_tokenizer(tiny_dir)
    ids, mask, keep, lengths, groups = _grouped_micro_batch(tok)
    ids, mask = ids.to(model.device), mask.to(model.device)
    weights = torch.randn(ids.shape[0], keep, device=model.device)
    out = {}
    with packing.attention(model, packing.register()):
        for shared in (False, True):
            model.zero_grad()
            if shared:
                rows = packing.pack_groups(ids, mask, keep, lengths, groups)
                context = packing.expanded(rows.pop("expand"), rows.pop("back"))
            else:
                rows = packing.pack_rows(ids, mask, keep, lengths)
                context = contextlib.nullcontext()
            index, first = rows.pop("index"), rows.pop("first")
            rows.pop("labels")
            with context:
                logps = _completion_logps(model, rows, index, first, ids.shape, keep)
            (logps * weights * mask[:, -keep:]).sum().backward()
            grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
            out[shared] = (logps * mask[:, -keep:], grads, rows["input_ids"].shape[1])
    (plain, plain_grads, plain_tokens), (mine, mine_grads, mine_tokens) = out[False], out[True]
    assert plain_tokens == int(lengths.sum()) == 84
    # shared: A's 11 + B's 6 prompt tokens once, C's nothing, each row's last prompt token and completion
    assert mine_tokens == 11 + 6 + 0 + sum(1 + c for _, c in lengths.tolist()) == 56
    assert (plain != 0).sum() == int(lengths[:, 1].sum())  # every completion token scored
    assert plain_grads.keys() == mine_grads.keys()
    if not gpu:
        torch.testing.assert_close(mine, plain, atol=2e-5, rtol=1e-4)
        for name, g in plain_grads.items():
            torch.testing.assert_close(mine_grads[name], g, atol=1e-5, rtol=1e-3, msg=name)
        return
    torch.testing.assert_close(mine, plain, atol=5e-2, rtol=2e-2)  # bf16: rounding of other batch shapes
    for name, g in plain_grads.items():
        g, m = g.float(), mine_grads[name].float()
        assert (m - g).norm() <= 0.03 * g.norm() + 1e-6, name


def test_shared_prompt_attention_lays_each_completion_after_its_own_prompt():
    """The expanded layout: each member's segment is its group's shared tokens then its own, and a shared
    token takes its output from the first copy; changing group A's tokens leaves group B's outputs alone."""
    ids = torch.tensor([[0, 5, 6, 7, 1, 2, 0], [0, 5, 6, 7, 3, 0, 0], [8, 9, 9, 9, 4, 4, 4]])
    mask = (ids > 0).long()
    mask[2] = 1
    rows = packing.pack_groups(ids, mask, 3, torch.tensor([[3, 2], [3, 1], [4, 3]]), torch.tensor([0, 0, 1]))
    # packed: A's 5 6 | 7 1 2 | 7 3 | B's 8 9 9 | 9 4 4 4
    assert rows["input_ids"].tolist() == [[5, 6, 7, 1, 2, 7, 3, 8, 9, 9, 9, 4, 4, 4]]
    assert rows["position_ids"].tolist() == [[0, 1, 2, 3, 4, 2, 3, 0, 1, 2, 3, 4, 5, 6]]
    assert rows["labels"].tolist() == [[-100, -100, -100, 1, 2, -100, 3, -100, -100, -100, -100, 4, 4, 4]]
    assert rows["expand"].tolist() == [0, 1, 2, 3, 4, 0, 1, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    assert rows["cu_seq_lens_q"].tolist() == [0, 5, 9, 16] and rows["max_length_q"] == 7
    assert rows["back"].tolist() == [0, 1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    # unpack targets: A's shared tokens in row 0's prompt columns, each segment in its own row
    assert rows["index"].tolist() == [1, 2, 3, 4, 5, 10, 11, 14, 15, 16, 17, 18, 19, 20]
    assert rows["first"].tolist() == [1, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0]


def test_micro_batches_hold_whole_groups_in_the_plain_shuffle_s_order():
    from mcqflow.train.grpo import GROUPS, by_group

    batch = {GROUPS: torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), "x": torch.arange(8), "names": list("abcdefgh")}
    torch.manual_seed(3)
    perm = torch.randperm(8)
    torch.manual_seed(3)
    out = by_group(batch)
    groups = out[GROUPS].tolist()
    assert sorted(out["x"].tolist()) == list(range(8))
    assert all(groups[i] == groups[i + 1] for i in range(0, 8, 2))  # each group side by side
    firsts = list(dict.fromkeys(batch[GROUPS][perm].tolist()))  # groups in the order the shuffle met them
    assert groups[::2] == firsts
    assert out["names"] == [batch["names"][i] for i in out["x"].tolist()]
    assert torch.equal(torch.rand(1), (torch.manual_seed(3), torch.randperm(8), torch.rand(1))[2])
