"""Sampling with a static KV cache and the decode step captured as one CUDA graph (GRPO `fast` generation).

Measured on an H100 with the Qwen2.5-7B architecture at batch 128, HF `generate` took 42 ms a token step
(28 ms through its own static-cache `torch.compile` path) for a step whose weights take ~5 ms to read. The
step was GPU-bound: given a mask, transformers' SDPA path copies every key/value head for its query heads
(`repeat_kv`) in every layer. Here a one-token step attends with the query heads of each key/value head as
that head's rows (`decode_attention`, no copy), and everything a step does, from the token's embedding to
the next sampled token, is captured once as a CUDA graph over fixed buffers (a transformers StaticCache, the
input token, positions, an additive attention mask, the output row) and replayed: 11.6 ms a step, one
launch a token, and one host sync every `CHECK_EVERY` steps to see whether every row has ended.

Same samples: a step is HF's own sampling (HF's temperature / top-k / top-p warpers, softmax,
`torch.multinomial`, argmax when greedy), on the same logits up to float rounding, so on a CPU (where the
step runs eagerly) the tokens equal `generate`'s from the same seed (tests/test_decode.py). On a GPU the
graph draws from the same distribution with its own Philox offsets.

Compaction (`compact`, on with the graph): a batch runs to its longest row, and a real policy's rows end
far apart (reasoning-mode chains of the real 0.5B: ~120 tokens on average, the longest ~500). At each check
where the rows still running fit in half the batch or less, they are moved to the front of every buffer
(the KV cache included) and the step goes on over the first rows only, by a graph captured over views of
the same buffers (batch B, B/2, B/4, ... down to `MIN_ROWS`), so finished rows stop costing matmuls and
attention. Greedy tokens are the same either way (a CPU test); sampled rows draw from the same
distribution, but a smaller batch takes different random numbers, so compaction is off where the decoder
must reproduce `generate`'s samples (CPU, by default).

Windows: a one-token step attends only to the first `window` slots of the cache, the window the smallest
multiple of `WINDOW` slots that holds every slot written up to the next check, and a graph is captured for
each (rows, window) used. With a cache of prompt + max_new_tokens slots, every step otherwise reads every
slot's keys and values, written or not (masked, so the result is the same): on the 7B at batch 128 with a
~1,000-slot cache that is ~7 GB a step, and most steps have written far fewer. All of a decoder's graphs
share one memory pool: a step's intermediates live only while it runs, and the steps run one at a time.

Prefill once (`prefill_once`, on with the graph): GRPO samples a group of completions from each prompt, so a
generation batch holds each prompt several times (8 in the benchmark: 128 rows, 16 prompts). The prompt's
forward, run eagerly before the first decode step, runs over the distinct prompts only, and their keys and
values are copied into the rows that hold them; every row then samples its own first token from its
prompt's logits. On the 7B a 160-token prompt's forward over 128 rows is ~20k tokens, a few percent of a
ragged GRPO step. Off on a CPU by default, where the decoder must give `generate`'s samples bit for bit and a
smaller batch may round differently.

`supports()` says which generation configs this covers (TRL's GRPO sampling: temperature, top-k, top-p);
anything else (repetition penalty, min-p, beams, ...) stays with `generate`.
"""

from __future__ import annotations

import copy
import inspect
from collections import OrderedDict
from contextlib import contextmanager

import torch

ATTENTION = "mcqflow_decode"
CHECK_EVERY = 16  # decode steps between checks that every row has ended (each check is one host sync)
GRAPHS_KEPT = 2  # captured (batch, cache length) shapes kept; each holds its own KV cache
MIN_ROWS = 8  # compaction's smallest batch: below it a step costs about the same however few rows run
WINDOW = 128  # cache slots a decode step's attention reads, in multiples of this (see the module's docstring)
_current_window: list[int | None] = [None]  # the window the steps run now read (None: the whole cache)
_NEUTRAL = {  # generation-config fields this decoder leaves out, and the values that mean "off"
    "num_beams": (None, 1),
    "repetition_penalty": (None, 1.0),
    "min_p": (None,),
    "typical_p": (None, 1.0),
    "epsilon_cutoff": (None, 0.0),
    "eta_cutoff": (None, 0.0),
    "no_repeat_ngram_size": (None, 0),
    "encoder_no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,),
    "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "sequence_bias": (None,),
    "min_new_tokens": (None, 0),
    "min_length": (None, 0),
    "guidance_scale": (None, 1.0),
    "renormalize_logits": (None, False),
    "watermarking_config": (None,),
    "top_h": (None,),
}


def decode_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """SDPA for the decoder that never copies keys and values per query head.

    transformers' SDPA path, given a mask, repeats each key/value head for its query heads (`repeat_kv`):
    at batch 128 over a 448-slot cache that writes and reads ~0.8 GB a layer, ~40 ms of a decode step on an
    H100 for the 7B architecture. A one-token step does not need it: the query heads sharing a key/value head
    become that head's query rows ([batch, kv heads, group, dim]) and attend to its keys as they are."""
    b, h, q_len, d = query.shape
    groups = h // key.shape[1]
    sdpa = torch.nn.functional.scaled_dot_product_attention
    window = _current_window[0]
    if q_len == 1 and window is not None and window < key.shape[2]:  # slots past it are unwritten, masked
        key, value, attention_mask = key[:, :, :window], value[:, :, :window], attention_mask[..., :window]
    if q_len == 1 and groups > 1:
        q = query.reshape(b, key.shape[1], groups, d)
        out = sdpa(q, key, value, attn_mask=attention_mask, scale=scaling)  # mask [b, 1, 1, slots] broadcasts
        return out.reshape(b, h, 1, d).transpose(1, 2).contiguous(), None
    if groups > 1:  # the prompt, once a generation
        key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    out = sdpa(query, key, value, attn_mask=attention_mask, scale=scaling)
    return out.transpose(1, 2).contiguous(), None


@contextmanager
def _attention(model, name: str):
    """Run `model` with the attention registered as `name`, then put its own back. (The merged copy shares
    its config with the policy being trained, so the switch lasts one generation.)"""
    from transformers import AttentionInterface

    from mcqflow.train.fast.packing import attention

    AttentionInterface.register(name, decode_attention)
    with attention(model, name):
        yield


def supports(generation_config) -> bool:
    """Whether `decode` samples exactly as `generate` would with this config."""
    for name, off in _NEUTRAL.items():
        if getattr(generation_config, name, None) not in off:
            return False
    return generation_config.max_new_tokens is not None


def force_end(scores: torch.Tensor, end_at: torch.Tensor, step, eos: int) -> torch.Tensor:
    """Rows whose completion must end at this step (`end_at == step + 1`, lengths counting the end token)
    get the end token as their only choice. The benchmark's ragged shape: random weights never choose the
    end token, so they are made to stop where a real policy would."""
    hit = (end_at == step + 1).unsqueeze(1)
    only_eos = torch.full_like(scores, float("-inf"))
    only_eos[:, eos] = 0.0
    return torch.where(hit, only_eos, scores)


def end_processor(end_at: torch.Tensor, prompt_length: int, eos: int):
    """`force_end` as a LogitsProcessor for HF `generate` (the same lengths through either path)."""
    from transformers import LogitsProcessor

    class ForceEnd(LogitsProcessor):
        def __call__(self, input_ids, scores):
            return force_end(scores, end_at.to(scores.device), input_ids.shape[1] - prompt_length, eos)

    return ForceEnd()


def _warpers(gc) -> list:
    """HF's sampling warpers for this config, in HF's order (temperature, top-k, top-p)."""
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    if not gc.do_sample:
        return []
    out = []
    if gc.temperature is not None and gc.temperature != 1.0:
        out.append(TemperatureLogitsWarper(gc.temperature))
    if gc.top_k is not None and gc.top_k != 0:
        out.append(TopKLogitsWarper(top_k=gc.top_k, min_tokens_to_keep=1))
    if gc.top_p is not None and gc.top_p < 1.0:
        out.append(TopPLogitsWarper(top_p=gc.top_p, min_tokens_to_keep=1))
    return out


def _eos_ids(gc) -> list[int]:
    eos = gc.eos_token_id
    return [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))


class _Run:
    """The fixed buffers of one (batch, cache length) shape, and the captured step over them."""

    def __init__(self, model, batch: int, length: int, cache_arg: str):
        from transformers import StaticCache

        device = model.device
        self.model, self.cache_arg, self.length = model, cache_arg, length
        self.cache = StaticCache(config=model.config, max_cache_len=length)
        self.token = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.position = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.slot = torch.zeros(1, dtype=torch.long, device=device)  # the cache slot this step writes
        self.step = torch.zeros(1, dtype=torch.long, device=device)  # the index of the token it samples
        self.mask = torch.zeros(batch, 1, 1, length, dtype=model.dtype, device=device)
        self.out = torch.zeros(batch, length, dtype=torch.long, device=device)
        self.finished = torch.zeros(batch, dtype=torch.bool, device=device)
        self.end_at = torch.zeros(batch, dtype=torch.long, device=device)
        self.eos = torch.zeros(0, dtype=torch.long, device=device)
        self.sampling = False
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}  # the captured step, by attention window
        self.signature = None  # what the captured steps baked in: warpers, ends, pad, forced ends
        self.rows = batch
        self.views: dict[int, _Run] = {}  # compaction: this run's first rows, by their number

    ROW_BUFFERS = ("token", "position", "mask", "out", "finished", "end_at")

    def first(self, rows: int) -> _Run:
        """This run over its first `rows` rows: views of the same buffers and KV cache (no copy), with its
        own captured step. The step counters, the cache's write positions and the end tokens are shared."""
        if rows == self.rows:
            return self
        if rows not in self.views:
            view = copy.copy(self)
            for name in self.ROW_BUFFERS:
                setattr(view, name, getattr(self, name)[:rows])
            view.cache = copy.copy(self.cache)
            view.cache.layers = []
            for layer in self.cache.layers:
                part = copy.copy(layer)  # every attribute shared (cumulative_length too) but the tensors
                part.keys, part.values = layer.keys[:rows], layer.values[:rows]
                if hasattr(part, "batch_size"):
                    part.batch_size = rows
                view.cache.layers.append(part)
            view.rows, view.views, view.graphs, view.signature = rows, {}, {}, None
            self.views[rows] = view
        return self.views[rows]

    def move_to_front(self, keep: torch.Tensor) -> None:
        """Rows `keep` (indices, ascending) become rows 0..len(keep)-1 of every buffer and of the cache."""
        n = keep.numel()
        for name in self.ROW_BUFFERS:
            buf = getattr(self, name)
            buf[:n] = buf.index_select(0, keep)
        for layer in self.cache.layers:
            layer.keys[:n] = layer.keys.index_select(0, keep)
            layer.values[:n] = layer.values.index_select(0, keep)

    def forward(self, input_ids, position_ids, mask):
        kwargs = {self.cache_arg: self.cache}
        out = self.model(
            input_ids=input_ids,
            position_ids=position_ids,
            attention_mask=mask,
            use_cache=True,
            logits_to_keep=1,
            **kwargs,
        )
        return out.logits[:, -1].float()

    def choose(self, logits, warpers, eos, pad, forced):
        scores = logits
        for w in warpers:
            scores = w(None, scores)
        if forced:
            scores = force_end(scores, self.end_at, self.step, eos[0])
        if self.sampling:
            token = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        else:
            token = scores.argmax(dim=-1)
        return torch.where(self.finished, torch.full_like(token, pad), token)

    def decode_step(self, warpers, eos, pad, forced):
        """One token for every row: write the last token's keys and values, sample the next."""
        self.mask.index_fill_(-1, self.slot, 0.0)  # the slot written now becomes visible
        logits = self.forward(self.token, self.position, self.mask)
        self.take(self.choose(logits, warpers, eos, pad, forced))

    def take(self, token):
        """Record the sampled token as the next input, and move position, slot and step on by one."""
        self.out.index_copy_(1, self.step, token.unsqueeze(1))
        self.finished |= torch.isin(token, self.eos)
        self.token.copy_(token.unsqueeze(1))
        self.position.add_(1)
        self.slot.add_(1)
        self.step.add_(1)


class Decoder:
    """`generate(input_ids, attention_mask, generation_config)` through a static cache, its decode step a
    CUDA graph on a GPU. Built once per model; the model's weights may change in place between calls
    (the merged GRPO policy is rewritten before each generation): the graph reads them where they are."""

    def __init__(
        self,
        model,
        use_graph: bool | None = None,
        compact: bool | None = None,
        windows: bool = True,
        prefill_once: bool | None = None,
    ):
        self.model = model
        self.windows = windows  # attention over the slots written only (see the module's docstring)
        self.use_graph = model.device.type == "cuda" if use_graph is None else use_graph
        self.compact = self.use_graph if compact is None else compact  # see the module's docstring
        self.prefill_once = self.use_graph if prefill_once is None else prefill_once  # (the docstring too)
        self.prefilled_rows: int | None = None  # the rows the last generation's prefill ran
        params = inspect.signature(model.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"  # transformers >= 5.2x: cache
        self.runs: OrderedDict[tuple[int, int], _Run] = OrderedDict()
        self.pool = torch.cuda.graph_pool_handle() if self.use_graph else None  # shared by all its graphs

    def supports(self, generation_config) -> bool:
        return supports(self.resolve(generation_config))

    def resolve(self, generation_config):
        """The config `generate` would sample with: unset fields from the model's generation config, then
        transformers' global defaults (top_k 50, ...), by transformers' own resolution."""
        return self.model._prepare_generation_config(generation_config)[0]

    def _run(self, batch: int, length: int) -> _Run:
        key = (batch, length)
        if key in self.runs:
            self.runs.move_to_end(key)
            return self.runs[key]
        while len(self.runs) >= GRAPHS_KEPT:
            self.runs.popitem(last=False)
            if self.use_graph:
                torch.cuda.empty_cache()
        self.runs[key] = _Run(self.model, batch, length, self.cache_arg)
        return self.runs[key]

    @torch.no_grad()
    def generate(self, input_ids, attention_mask, generation_config, end_at: torch.Tensor | None = None):
        """Prompt + completion ids, [batch, prompt + new tokens], as `generate` returns them: rows that ended
        are padded after their end token, and the width is that of the longest row (or max_new_tokens)."""
        with _attention(self.model, ATTENTION):
            try:
                return self._generate(input_ids, attention_mask, generation_config, end_at)
            finally:
                _current_window[0] = None

    def _generate(self, input_ids, attention_mask, generation_config, end_at):
        gc = self.resolve(generation_config)
        batch, prompt = input_ids.shape
        new = gc.max_new_tokens
        eos = _eos_ids(gc)
        pad = gc.pad_token_id if gc.pad_token_id is not None else (eos[0] if eos else 0)
        # Cache lengths in buckets of 64: later prompts of about the same length reuse the captured graph.
        length = -(-(prompt + new) // 64) * 64
        run = self._run(batch, length)
        run.sampling = bool(gc.do_sample)
        eos_ids = torch.tensor(eos, dtype=torch.long, device=input_ids.device)
        if not torch.equal(run.eos, eos_ids):  # (a captured graph reads the old tensor: recaptured below)
            run.eos = eos_ids
        warpers = _warpers(gc)
        forced = end_at is not None
        if forced and not eos:
            raise ValueError("decode: end_at needs an end token")
        if forced:
            run.end_at.copy_(end_at.to(run.end_at.device))

        # Prefill, eagerly: the prompt's keys and values into slots [0, prompt), the first token sampled.
        run.cache.reset()
        mask2d = attention_mask.bool()
        position_ids = (attention_mask.long().cumsum(-1) - 1).masked_fill(~mask2d, 1)
        logits = self._prefill(run, input_ids, attention_mask, length)

        neg = torch.finfo(run.mask.dtype).min
        run.mask.fill_(neg)
        run.mask[:, 0, 0, :prompt].masked_fill_(mask2d, 0.0)
        run.out.zero_()
        run.finished.zero_()
        run.step.zero_()
        run.position.copy_(position_ids[:, -1:])
        run.slot.fill_(prompt - 1)  # take() moves these on to the first decode step's
        run.take(run.choose(logits, warpers, eos, pad, forced))

        signature = (
            tuple(f"{type(w).__name__}{vars(w)}" for w in warpers),
            tuple(eos),
            pad,
            forced,
            run.sampling,
        )
        window = self._window(prompt, 1, length) if self.windows else length
        self._graph(run, window, signature, warpers, eos, pad, forced)
        # Compaction's bookkeeping: which batch row each buffer row holds, how many buffer rows are real (the
        # rest of a view fills its bucket, marked finished), and the finished rows' completions, set aside
        where = torch.arange(batch, device=input_ids.device)
        real, cur = batch, run
        completed = torch.full((batch, run.out.shape[1]), pad, dtype=run.out.dtype, device=run.out.device)
        done = 1
        while done < new:
            _current_window[0] = window
            if window in cur.graphs:
                cur.graphs[window].replay()
            else:
                cur.decode_step(warpers, eos, pad, forced)
            done += 1
            if done % CHECK_EVERY:
                continue
            running = ~cur.finished[:real]
            live = int(running.sum())  # the check's one host sync
            if live == 0:
                break
            rows = self._bucket(live, cur.rows) if self.compact else cur.rows
            if rows < cur.rows:
                ended = (~running).nonzero().squeeze(1)
                completed[where[ended], :done] = cur.out[ended, :done]
                keep = running.nonzero().squeeze(1)
                run.move_to_front(keep)
                where[:live] = where[keep]
                real, cur = live, run.first(rows)
                cur.finished[live:] = True  # filler rows: pad out, never counted as running
            window = self._window(prompt, done, length) if self.windows else length
            self._graph(cur, window, signature, warpers, eos, pad, forced)  # (captured once a shape)
        completed[where[:real], :done] = cur.out[:real, :done]
        out = completed[:, :done]
        ended = torch.isin(out, run.eos)
        if eos and bool(ended.any(1).all()):  # generate stops at the step where the last row ended
            out = out[:, : int(ended.int().argmax(1).max()) + 1]
        return torch.cat([input_ids, out], dim=1)

    def _prefill(self, run: _Run, input_ids, attention_mask, length: int) -> torch.Tensor:
        """Write the prompt's keys and values into slots [0, prompt) of every row; each row's next-token
        logits. With `prefill_once`, a prompt that several rows hold (GRPO samples a group of completions
        from each) runs once, and its keys and values are copied into the other rows: the group's rows get
        the same keys, values and logits, bit for bit, as one row run alone (once the run's cache exists:
        its first call prefills every row, which allocates the cache at the whole batch)."""
        index = None
        if self.prefill_once and run.cache.layers[0].is_initialized:
            from mcqflow.train.fast.packing import distinct_prompts

            ids, mask, index = distinct_prompts(input_ids, attention_mask)
            if len(ids) < len(input_ids):  # (one host sync)
                input_ids, attention_mask = ids, mask
            else:
                index = None
        rows = run if index is None else run.first(input_ids.shape[0])
        logits = rows.forward(input_ids, *self._prefill_inputs(attention_mask, length, run.mask.dtype))
        self.prefilled_rows = len(input_ids)
        if index is None:
            return logits
        prompt = input_ids.shape[1]
        for layer in run.cache.layers:  # each distinct prompt's slots into every row that holds it
            layer.keys[:, :, :prompt] = layer.keys[: len(input_ids), :, :prompt].index_select(0, index)
            layer.values[:, :, :prompt] = layer.values[: len(input_ids), :, :prompt].index_select(0, index)
        return logits.index_select(0, index)

    @staticmethod
    def _prefill_inputs(attention_mask, length: int, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions and the additive causal mask of a left-padded prompt batch over a cache of `length`."""
        prompt = attention_mask.shape[1]
        mask2d = attention_mask.bool()
        position_ids = (attention_mask.long().cumsum(-1) - 1).masked_fill(~mask2d, 1)
        causal = torch.ones(prompt, length, dtype=torch.bool, device=attention_mask.device).tril()
        allowed = causal[None] & torch.nn.functional.pad(mask2d, (0, length - prompt))[:, None, :]
        # Pad rows see themselves (no row all masked); no real row ever sees a pad.
        allowed |= torch.eye(prompt, length, dtype=torch.bool, device=attention_mask.device)
        prefill_mask = torch.zeros(allowed.shape, dtype=dtype, device=attention_mask.device)
        prefill_mask.masked_fill_(~allowed, torch.finfo(dtype).min)
        return position_ids, prefill_mask[:, None]

    @staticmethod
    def _window(prompt: int, done: int, length: int) -> int:
        """The slots the next `CHECK_EVERY` steps may attend to (after `done` sampled tokens, the next step
        writes slot prompt + done - 1), rounded up to a multiple of `WINDOW`, at most the whole cache."""
        return min(length, -(-(prompt + done + CHECK_EVERY) // WINDOW) * WINDOW)

    @staticmethod
    def _bucket(live: int, rows: int) -> int:
        """The batch to go on with: the smallest of rows/2, rows/4, ... (not under MIN_ROWS) that holds the
        rows still running, or `rows` when half of it does not."""
        best = rows
        while best // 2 >= max(live, MIN_ROWS):
            best //= 2
        return best

    def _graph(self, run: _Run, window: int, signature, warpers, eos, pad, forced) -> None:
        """Capture `run`'s step over `window` slots (on a GPU) unless a graph of it bakes in `signature`."""
        if not self.use_graph:
            return
        if run.signature != signature:
            run.graphs.clear()
            run.signature = signature
        if window not in run.graphs:
            _current_window[0] = window
            run.graphs[window] = self._capture(run, warpers, eos, pad, forced)

    def _capture(self, run: _Run, warpers, eos, pad, forced) -> torch.cuda.CUDAGraph:
        """Capture `decode_step` (over the window set now) after warm-up steps on a side stream, leaving every
        buffer (and the cache's write position) as it was before the warm-up."""
        saved = [t.clone() for t in self._state(run)]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                run.decode_step(warpers, eos, pad, forced)
        torch.cuda.current_stream().wait_stream(stream)
        for t, s in zip(self._state(run), saved, strict=True):
            t.copy_(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            run.decode_step(warpers, eos, pad, forced)
        return graph

    @staticmethod
    def _state(run: _Run) -> list[torch.Tensor]:
        lengths = [layer.cumulative_length for layer in run.cache.layers]
        return [run.token, run.position, run.slot, run.step, run.mask, run.out, run.finished, *lengths]
