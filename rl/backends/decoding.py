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


def _prefill(
    model: Any, input_ids: Any, attention_mask: Any, min_shared_prefix: int
) -> tuple[Any, Any, Any, Any]:
    """Prefill a left-padded batch: (cache, attention mask, position ids, last logits [B, V]).

    Where every row opens with the same `min_shared_prefix` tokens or more, that prefix runs
    once, as a batch of one, its cache is repeated for each row, and only the rows' own tails
    run as a batch: `[prefix][padding][tail]`, the padding masked and the positions counting
    real tokens only, so each row sees what it would alone. A row's own tail keeps at least
    its last token (its logits start the decoding)."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache()
    rows = input_ids.shape[0]
    real = [ids[mask.bool()].tolist() for ids, mask in zip(input_ids, attention_mask, strict=True)]
    shared = min(_common_prefix(real), min(len(r) for r in real) - 1)
    if rows > 1 and shared >= max(1, min_shared_prefix):
        model(input_ids=input_ids.new_tensor([real[0][:shared]]), past_key_values=cache,
              position_ids=torch.arange(shared, device=input_ids.device)[None], use_cache=True,
              logits_to_keep=1)  # fmt: skip
        cache.batch_repeat_interleave(rows)
        # Left padding right-aligns the rows, so each row's tail is at the end of the last
        # `width` columns; what lies before it there (padding or prefix tokens) is masked.
        tail_lengths = attention_mask.sum(-1) - shared
        width = int(tail_lengths.max())
        columns = torch.arange(width, device=input_ids.device)
        tail_mask = (columns[None, :] >= width - tail_lengths[:, None]).to(attention_mask.dtype)
        attention_mask = torch.cat([attention_mask.new_ones((rows, shared)), tail_mask], dim=-1)
        input_ids = input_ids[:, -width:]
        positions = (shared + tail_mask.long().cumsum(-1) - 1).clamp(min=shared)
    else:
        positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
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
) -> list[Decoded]:
    """Decode a left-padded batch, each row up to its own `max_new_tokens`.

    A row ends at an `eos_ids` token (not included), when `stopped(its new tokens)` says so (the
    token that completed a stop string included, as `generate` keeps it), or at its limit.
    Finished rows leave the batch once they are at least `compact_share` of it (each removal
    copies the remaining rows' cache once). `temperature` 0 is greedy. Rows that open with the
    same `min_shared_prefix` tokens or more (the system prompt every episode opens with, or k
    samples of one prompt) share that prefix's prefill (`_prefill`)."""
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
    with torch.inference_mode():
        cache, attention_mask, positions, logits = _prefill(
            model, input_ids, attention_mask, min_shared_prefix
        )
        next_pos = positions[:, -1] + 1
        done: set[int] = set()  # batch positions of rows that ended and are still in the batch
        while True:
            if temperature > 0:
                probs = top_p_filter(logits / temperature, top_p).softmax(dim=-1)
                # An exponential race: argmax(p_i / E_i), E_i ~ Exp(1), draws i with probability
                # p_i, at a fraction of `torch.multinomial`'s cost on CPU.
                race = torch.empty_like(probs).exponential_(1.0, generator=generator)
                tokens = probs.div_(race).argmax(dim=-1)
            else:
                tokens = logits.argmax(dim=-1)
            chosen = None
            if logprobs:
                chosen = logits.log_softmax(-1).gather(-1, tokens[:, None]).squeeze(-1).tolist()
            ended = torch.isin(tokens, eos).tolist()
            for pos, (row, tok) in enumerate(zip(active, tokens.tolist(), strict=True)):
                if pos in done:
                    continue
                result = out[row]
                if ended[pos]:
                    result.finish_reason = "stop"
                    done.add(pos)
                    continue
                result.token_ids.append(tok)
                if chosen is not None and result.logprobs is not None:
                    result.logprobs.append(chosen[pos])
                if stopped is not None and stopped(result.token_ids):
                    result.finish_reason = "stop"
                    done.add(pos)
                elif len(result.token_ids) >= limits[row]:
                    done.add(pos)
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
