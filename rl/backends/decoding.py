"""Batched sampling for the local backend that drops finished rows as it goes.

`transformers`' `generate` keeps every row of a batch until the last one ends: a finished row
goes on being decoded (its new tokens are padding) and its key/value cache is still read,
copied and attended over at every step. An agent's turns end at very different lengths (the
demo's: median 59 tokens, one in six at the 160-token cap), so in a batch of 32 most decoding
steps were spent on finished rows. `decode` runs the same model forward passes (left-padded
prefill, then one token per row per step with the cache) and removes the finished rows from
the batch and the cache (`DynamicCache.batch_select_indices`) once enough of them have
ended. Rows that open alike (every episode's system prompt, the k samples of one task) prefill
their shared prefix once. Greedy decoding picks the same tokens as `generate`; sampling applies
temperature then top-p as `generate`'s warpers do (`TemperatureLogitsWarper`,
`TopPLogitsWarper`) and draws from the result.

`GQA_DECODE_ATTENTION` is an attention function for grouped-query models: at a decoding step
(one query per row) it attends each group of query heads to its key/value head directly,
where `sdpa_attention_forward` first copies every cached key and value once per query head
(`repeat_kv`) whenever there is a padding mask, i.e. at every step of a left-padded batch.
Everything else (prefill, training) goes to `sdpa_attention_forward` unchanged.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

GQA_DECODE_ATTENTION = "sdpa_gqa_decode"


@dataclass
class Decoded:
    """One row's new tokens (the end-of-turn token excluded), the raw-logit logprob of each
    (before temperature; None unless asked), and why it ended: "stop" (an end-of-turn token or
    a stop string) or "length"."""

    token_ids: list[int]
    logprobs: list[float] | None
    finish_reason: str


def gqa_decode_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """`sdpa_attention_forward`, except at decoding steps of a grouped-query model: there the
    query heads of one key/value head become that head's queries ([B, H, 1, D] -> [B, KV,
    H/KV, D]; head h reads kv head h // (H/KV), as `repeat_kv` pairs them), so the cache is
    read in place and the row's padding mask [B, 1, 1, S] broadcasts over the group."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1 and query.shape[2] == 1 and not module.training:
        batch, heads, _, dim = query.shape
        grouped = query.reshape(batch, heads // groups, groups, dim)
        out = torch.nn.functional.scaled_dot_product_attention(
            grouped, key, value, attn_mask=attention_mask, scale=scaling
        )
        return out.reshape(batch, 1, heads, dim), None  # [B, q_len, H, D], as sdpa's
    return sdpa_attention_forward(
        module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
        is_causal=is_causal, **kwargs,
    )  # fmt: skip


def register_gqa_decode_attention() -> str:
    """Register `gqa_decode_attention` (and sdpa's mask for it) with transformers; returns its
    name for `attn_implementation`."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(GQA_DECODE_ATTENTION, gqa_decode_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(GQA_DECODE_ATTENTION, sdpa_mask)
    return GQA_DECODE_ATTENTION


def growing_cache() -> Any:
    """A key/value cache for `decode`: transformers' `DynamicCache` appends each step's keys
    and values with `torch.cat`, copying the whole cache (every layer, keys and values) at
    every decoding step; this one's layers write into buffers with room to grow (doubled when
    full), so a step copies one token's states (the copies were ~1/4 of a decoding step of the
    tiny policy at batch 8, ~1,000 tokens of context)."""
    from transformers import Cache

    return Cache(layer_class_to_replicate=_growing_layer_class())


_GROWING_LAYER: Any = None


def _growing_layer_class() -> Any:
    """`GrowingLayer`, defined on first use (transformers is imported lazily here)."""
    global _GROWING_LAYER
    if _GROWING_LAYER is not None:
        return _GROWING_LAYER
    import torch
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        """A `DynamicLayer` whose `keys` / `values` are views of the first `length` positions
        of buffers [B, heads, capacity, D]."""

        length = 0
        key_buffer: Any = None
        value_buffer: Any = None

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> Any:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            new = key_states.shape[-2]
            end = self.length + new
            if self.key_buffer is None or end > self.key_buffer.shape[-2]:
                self._reserve(2 * end, key_states)
            self.key_buffer[:, :, self.length : end] = key_states
            self.value_buffer[:, :, self.length : end] = value_states
            self.length = end
            self._expose()
            return self.keys, self.values

        def _reserve(self, capacity: int, like: Any) -> None:
            shape = (*like.shape[:2], capacity, like.shape[-1])
            keys = like.new_empty(shape)
            values = like.new_empty(shape)
            if self.length:
                keys[:, :, : self.length] = self.keys
                values[:, :, : self.length] = self.values
            self.key_buffer, self.value_buffer = keys, values

        def _expose(self) -> None:
            self.keys = self.key_buffer[:, :, : self.length]
            self.values = self.value_buffer[:, :, : self.length]

        def batch_repeat_interleave(self, repeats: int) -> None:
            if self.length:
                self.key_buffer = self.key_buffer.repeat_interleave(repeats, dim=0)
                self.value_buffer = self.value_buffer.repeat_interleave(repeats, dim=0)
                self._expose()

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            if self.length:
                self.key_buffer = self.key_buffer[indices]
                self.value_buffer = self.value_buffer[indices]
                self._expose()

    _GROWING_LAYER = GrowingLayer
    return GrowingLayer


@dataclass
class CachedRow:
    """One decoded row's keys and values, layer by layer ([kv heads, n, head dim]), for its
    first n tokens `token_ids` (its prompt and what it generated and fed back)."""

    token_ids: Any  # numpy int64 [n]
    keys: list[Any]
    values: list[Any]


class PrefixStore:
    """The keys and values of recently decoded rows, so `decode` prefills only what a new
    prompt adds to the longest of them it starts with: an agent's next turn is its previous
    prompt, its reply and a tool response, and without the store every turn prefilled the
    whole episode again (26% of the generation time of 48 demo episodes). vLLM's automatic
    prefix caching does the same with hashed blocks on a GPU; this is its small-batch CPU form.

    Least recently used rows go first once more than `max_tokens` tokens are held; a row is
    only used for `min_tokens` shared tokens or more. The entries belong to one set of
    weights: whoever updates the model clears the store (`LocalHFBackend` does when a
    parameter's version counter moves, i.e. after an optimizer step)."""

    def __init__(self, max_tokens: int = 65536, min_tokens: int = 32) -> None:
        if max_tokens < 1 or min_tokens < 1:
            raise ValueError("max_tokens and min_tokens must be at least 1")
        self.max_tokens = max_tokens
        self.min_tokens = min_tokens
        self.tokens = 0
        self.reused_tokens = 0
        self._rows: OrderedDict[int, CachedRow] = OrderedDict()
        self._next = 0

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        self._rows.clear()
        self.tokens = 0

    def lookup(self, token_ids: Sequence[int]) -> tuple[int | None, int]:
        """(key of the row sharing the longest prefix with `token_ids`, that length), or
        (None, 0) where none shares `min_tokens`."""
        import numpy as np

        ids = np.asarray(token_ids, dtype=np.int64)
        best, best_len = None, self.min_tokens - 1
        for key, row in self._rows.items():
            m = min(len(ids), len(row.token_ids))
            if m <= best_len:
                continue
            differ = np.flatnonzero(row.token_ids[:m] != ids[:m])
            common = int(differ[0]) if differ.size else m
            if common > best_len:
                best, best_len = key, common
        if best is None:
            return None, 0
        self._rows.move_to_end(best)
        return best, best_len

    def __getitem__(self, key: int) -> CachedRow:
        return self._rows[key]

    def add(self, row: CachedRow, replaces: int | None = None) -> None:
        """Hold `row` (dropping `replaces`, a row it extends, if given and still held), then
        drop the least recently used rows beyond `max_tokens`."""
        if replaces is not None and replaces in self._rows:
            self.tokens -= len(self._rows.pop(replaces).token_ids)
        if len(row.token_ids) > self.max_tokens:
            return
        self._rows[self._next] = row
        self._next += 1
        self.tokens += len(row.token_ids)
        while self.tokens > self.max_tokens:
            _, old = self._rows.popitem(last=False)
            self.tokens -= len(old.token_ids)


def _held_prefixes(
    real: list[list[int]], hits: list[tuple[int | None, int]], store: PrefixStore
) -> tuple[Any, list[int]]:
    """A cache of each row's held prefix (its first c tokens of the held row `hits` names, at
    most all but its last token), as it was computed, right-aligned in max(c) columns; and
    each row's c."""
    reused = [
        min(n, len(r) - 1) if key is not None else 0 for (key, n), r in zip(hits, real, strict=True)
    ]
    width = max(reused)
    first = store[next(key for key, _ in hits if key is not None)]
    cache = growing_cache()
    for layer in range(len(first.keys)):
        like = first.keys[layer]
        shape = (len(real), like.shape[0], width, like.shape[-1])
        keys, values = like.new_zeros(shape), like.new_zeros(shape)
        for b, ((key, _), c) in enumerate(zip(hits, reused, strict=True)):
            if c:
                held = store[key]  # type: ignore[index]
                keys[b, :, width - c :] = held.keys[layer][:, :c]
                values[b, :, width - c :] = held.values[layer][:, :c]
        cache.update(keys, values, layer)
    store.reused_tokens += sum(reused)
    return cache, reused


def _prefill(
    model: Any,
    input_ids: Any,
    attention_mask: Any,
    min_shared_prefix: int,
    real: list[list[int]],
    store: PrefixStore | None = None,
    hits: list[tuple[int | None, int]] | None = None,
) -> tuple[Any, Any, Any, Any]:
    """Prefill a left-padded batch (`real`: each row's tokens without its padding): (cache,
    attention mask, position ids, last logits [B, V]).

    Rows that start with rows held in `store` (`hits`: each row's held row and shared length,
    from `PrefixStore.lookup`) take those rows' keys and values as they were computed
    (`_held_prefixes`). Otherwise, where every row opens with the same `min_shared_prefix`
    tokens or more, that prefix runs once, as a batch of one, and its cache is repeated for
    each row. Either way only the rows' own tails then run as a batch: `[padding][prefix]
    [padding][tail]`, the padding masked and the positions counting real tokens only, so each
    row sees what it would alone. A row's own tail keeps at least its last token (its logits
    start the decoding)."""
    import torch

    cache = growing_cache()
    rows = input_ids.shape[0]
    device = input_ids.device
    prefixes = None
    if store is not None and hits and any(key is not None for key, _ in hits):
        cache, prefixes = _held_prefixes(real, hits, store)
    else:
        shared = min(_common_prefix(real), min(len(r) for r in real) - 1)
        if rows > 1 and shared >= max(1, min_shared_prefix):
            model(input_ids=input_ids.new_tensor([real[0][:shared]]), past_key_values=cache,
                  position_ids=torch.arange(shared, device=device)[None], use_cache=True,
                  logits_to_keep=1)  # fmt: skip
            cache.batch_repeat_interleave(rows)
            prefixes = [shared] * rows
    if prefixes is None:
        positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    else:
        # Left padding right-aligns the rows, so each row's tail is at the end of the last
        # `width` columns; what lies before it there (padding or prefix tokens) is masked.
        counts = torch.tensor(prefixes, dtype=torch.long, device=device)
        prefix_columns = torch.arange(max(prefixes), device=device)
        prefix_mask = (prefix_columns[None, :] >= max(prefixes) - counts[:, None]).to(
            attention_mask.dtype
        )
        tail_lengths = attention_mask.sum(-1) - counts
        width = int(tail_lengths.max())
        columns = torch.arange(width, device=device)
        tail_mask = (columns[None, :] >= width - tail_lengths[:, None]).to(attention_mask.dtype)
        attention_mask = torch.cat([prefix_mask, tail_mask], dim=-1)
        input_ids = input_ids[:, -width:]
        positions = torch.maximum(
            counts[:, None] + tail_mask.long().cumsum(-1) - 1, counts[:, None]
        )
    logits = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
        past_key_values=cache, use_cache=True, logits_to_keep=1,
    ).logits[:, -1, :].float()  # fmt: skip
    return cache, attention_mask, positions, logits


def _common_prefix(rows: list[list[int]]) -> int:
    """How many leading tokens all `rows` share."""
    length = 0
    for column in zip(*rows, strict=False):
        if len(set(column)) > 1:
            break
        length += 1
    return length


def top_p_filter(logits: Any, top_p: float) -> Any:
    """`TopPLogitsWarper`: drop the least likely tokens whose cumulative probability is at most
    1 - top_p (the most likely token always stays)."""
    import torch

    if top_p >= 1.0:
        return logits
    sorted_logits, sorted_idx = torch.sort(logits, descending=False, dim=-1)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)
    remove[..., -1:] = False
    return logits.masked_fill(remove.scatter(-1, sorted_idx, remove), float("-inf"))


def sample_rows(probs: Any, generator: Any = None) -> Any:
    """One token per row of `probs` [B, V] (each row sums to 1), drawn by inverting the row's
    cumulative distribution at one uniform number: B random numbers a step instead of B x V
    (an exponential race, argmax(p / E) with E ~ Exp(1), took 2.6 ms of a ~10 ms decoding step
    at batch 16 on a 4,160-token vocabulary; `torch.multinomial` 1.7 ms; this 0.08 ms). The
    sums run in float64, and the draw is scaled by the row's own total, so rounding never
    picks a token of probability 0 (`right=True`: the first token whose cumulative sum
    exceeds the draw)."""
    import torch

    cdf = probs.double().cumsum(dim=-1)
    draw = torch.rand(
        (probs.shape[0], 1), dtype=torch.float64, device=probs.device, generator=generator
    )
    tokens = torch.searchsorted(cdf, draw * cdf[:, -1:], right=True)
    return tokens.squeeze(-1).clamp_(max=probs.shape[-1] - 1)


def decode(
    model: Any,
    input_ids: Any,
    attention_mask: Any,
    max_new_tokens: Sequence[int],
    *,
    eos_ids: Sequence[int],
    temperature: float = 0.0,
    top_p: float = 1.0,
    stopped: Callable[[list[int]], bool] | None = None,
    logprobs: bool = False,
    generator: Any = None,
    compact_share: float = 0.125,
    min_shared_prefix: int = 32,
    store: PrefixStore | None = None,
) -> list[Decoded]:
    """Decode a left-padded batch, each row up to its own `max_new_tokens`.

    A row ends at an `eos_ids` token (not included), when `stopped(its new tokens)` says so (the
    token that completed a stop string included, as `generate` keeps it), or at its limit.
    Finished rows leave the batch once they are at least `compact_share` of it (each removal
    copies the remaining rows' cache once). `temperature` 0 is greedy. Rows that open with the
    same `min_shared_prefix` tokens or more (the system prompt every episode opens with, or k
    samples of one prompt) share that prefix's prefill (`_prefill`). With a `store`, rows
    prefill only what they add to the held rows they start with, and each row's keys and
    values (its prompt and the tokens it fed back) are held there once it ends."""
    import numpy as np
    import torch

    rows = input_ids.shape[0]
    if len(max_new_tokens) != rows:
        raise ValueError(f"{len(max_new_tokens)} limits for {rows} rows")
    eos = torch.tensor(sorted(set(eos_ids)), dtype=torch.long, device=input_ids.device)
    out = [Decoded([], [] if logprobs else None, "length") for _ in range(rows)]
    limits = list(max_new_tokens)
    active = [r for r in range(rows) if limits[r] > 0]  # batch position -> row
    if not active:
        return out
    if len(active) < rows:
        input_ids, attention_mask = input_ids[active], attention_mask[active]
    real = [ids[mask.bool()].tolist() for ids, mask in zip(input_ids, attention_mask, strict=True)]
    hits = [store.lookup(r) for r in real] if store is not None else []
    # Each row's position at the start, and the held row it uses whole, if any.
    start = {row: i for i, row in enumerate(active)}
    extended = [
        key if key is not None and n == len(store[key].token_ids) else None  # type: ignore[index]
        for key, n in hits
    ]
    with torch.inference_mode():
        cache, attention_mask, positions, logits = _prefill(
            model, input_ids, attention_mask, min_shared_prefix, real, store, hits
        )
        next_pos = positions[:, -1] + 1
        done: set[int] = set()  # batch positions of rows that ended and are still in the batch

        def hold(pos: int) -> None:
            """Put the row at batch position `pos`, which just ended, into the store (it
            replaces the held row it extends): its cache's real columns are its prompt and
            every token it fed back."""
            assert store is not None
            row = active[pos]
            columns = attention_mask[pos].nonzero().squeeze(-1)
            fed = (real[start[row]] + out[row].token_ids)[: columns.numel()]
            store.add(
                CachedRow(
                    token_ids=np.asarray(fed, dtype=np.int64),
                    keys=[layer.keys[pos].index_select(-2, columns) for layer in cache.layers],
                    values=[layer.values[pos].index_select(-2, columns) for layer in cache.layers],
                ),
                replaces=extended[start[row]],
            )

        while True:
            if temperature > 0:
                probs = top_p_filter(logits / temperature, top_p).softmax(dim=-1)
                tokens = sample_rows(probs, generator)
            else:
                tokens = logits.argmax(dim=-1)
            chosen = None
            if logprobs:
                chosen = logits.log_softmax(-1).gather(-1, tokens[:, None]).squeeze(-1).tolist()
            ended = torch.isin(tokens, eos).tolist()
            finished: list[int] = []  # the rows that end at this step, in batch order
            for pos, (row, tok) in enumerate(zip(active, tokens.tolist(), strict=True)):
                if pos in done:
                    continue
                result = out[row]
                if ended[pos]:
                    result.finish_reason = "stop"
                    finished.append(pos)
                    continue
                result.token_ids.append(tok)
                if chosen is not None and result.logprobs is not None:
                    result.logprobs.append(chosen[pos])
                if stopped is not None and stopped(result.token_ids):
                    result.finish_reason = "stop"
                    finished.append(pos)
                elif len(result.token_ids) >= limits[row]:
                    finished.append(pos)
            done.update(finished)
            if store is not None:
                for pos in finished:
                    hold(pos)
            if len(done) == len(active):
                return out
            if len(done) >= max(1, compact_share * len(active)):
                keep = [pos for pos in range(len(active)) if pos not in done]
                index = torch.tensor(keep, dtype=torch.long, device=tokens.device)
                cache.batch_select_indices(index)
                attention_mask, tokens, next_pos = (
                    attention_mask[index],
                    tokens[index],
                    next_pos[index],
                )
                active = [active[pos] for pos in keep]
                done = set()
            attention_mask = torch.cat(
                [attention_mask, attention_mask.new_ones((attention_mask.shape[0], 1))], dim=-1
            )
            logits = model(
                input_ids=tokens[:, None], attention_mask=attention_mask,
                position_ids=next_pos[:, None], past_key_values=cache, use_cache=True,
            ).logits[:, -1, :].float()  # fmt: skip
            next_pos = next_pos + 1
