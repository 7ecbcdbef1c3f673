"""The local backend's own decoding loop (`rl.backends.decoding`) against transformers' on a
tiny grouped-query policy: the same greedy tokens, logprobs and stops as `generate`, the same
logits as sdpa's attention, top-p as transformers' warper, and finished rows dropped without
changing the others' tokens.

The model is the tiny policy's architecture and tokenizer with random weights drawn wide
(`initializer_range` 0.3): the pretrained tiny policy answers every prompt here with newlines,
which would make "the same greedy tokens" an empty check."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rl.backends.base import SamplingParams
from rl.backends.decoding import (
    GQA_DECODE_ATTENTION,
    CachedRow,
    PrefixStore,
    decode,
    register_gqa_decode_attention,
    sample_rows,
)
from rl.backends.decoding import top_p_filter as top_p
from rl.backends.local_hf import LocalHFBackend
from rl.protocol import initial_messages, render_raw

QUESTIONS = [
    "Who?",
    "What is the capital of France, and since when has it been the capital?",
    "x",
    "In which city is Fepade Group headquartered? Give the city as the page names it.",
]


def _prompts() -> list[str]:
    return [render_raw(initial_messages(q, "2026-05-01")) for q in QUESTIONS]


@pytest.fixture(scope="module")
def random_policy(tiny_policy: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoConfig, AutoModelForCausalLM

    out = tmp_path_factory.mktemp("random-policy") / "policy"
    shutil.copytree(tiny_policy, out)
    config = AutoConfig.from_pretrained(tiny_policy)
    config.initializer_range = 0.3
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def backends(random_policy: Path) -> dict[str, LocalHFBackend]:
    return {d: LocalHFBackend(random_policy, device="cpu", decoder=d)
            for d in ("compact", "generate")}  # fmt: skip


def test_unknown_decoder_is_refused(tiny_policy: Path) -> None:
    with pytest.raises(ValueError, match="decoder must be one of"):
        LocalHFBackend(tiny_policy, device="cpu", decoder="beam")


def test_the_tiny_policy_is_grouped_query(backends: dict[str, LocalHFBackend]) -> None:
    """Otherwise the attention test below would not test the grouped path."""
    model = backends["compact"].model
    assert model.config.num_attention_heads > model.config.num_key_value_heads
    assert model.config._attn_implementation == GQA_DECODE_ATTENTION


def test_greedy_tokens_logprobs_and_limits_match_generate(
    backends: dict[str, LocalHFBackend],
) -> None:
    prompts = _prompts()
    params = [SamplingParams(max_tokens=n, temperature=0.0, logprobs=True) for n in (3, 17, 9, 30)]
    ours = backends["compact"].generate_batch_sync(prompts, params)
    theirs = backends["generate"].generate_batch_sync(prompts, params)
    assert [g.token_ids for g in ours] == [g.token_ids for g in theirs]
    assert [g.text for g in ours] == [g.text for g in theirs]
    assert [g.finish_reason for g in ours] == [g.finish_reason for g in theirs]
    assert [g.completion_tokens for g in ours] == [3, 17, 9, 30]
    for a, b in zip(ours, theirs, strict=True):
        assert a.logprobs is not None and b.logprobs is not None
        assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-4)


def test_stop_strings_end_a_row_as_generate_does(backends: dict[str, LocalHFBackend]) -> None:
    prompts = _prompts()
    free = backends["generate"].generate_batch_sync(
        prompts, [SamplingParams(max_tokens=24, temperature=0.0)] * len(prompts)
    )
    # A stop string from inside the second row's greedy text: that row stops there, the
    # others go on unless they also produce it.
    text = free[1].text
    stop = text[len(text) // 2 : len(text) // 2 + 3]
    assert len(stop) == 3 and text.find(stop) > 0
    params = [SamplingParams(max_tokens=24, temperature=0.0, stop=(stop,))] * len(prompts)
    ours = backends["compact"].generate_batch_sync(prompts, params)
    theirs = backends["generate"].generate_batch_sync(prompts, params)
    assert [g.text for g in ours] == [g.text for g in theirs]
    assert [g.token_ids for g in ours] == [g.token_ids for g in theirs]
    assert [g.finish_reason for g in ours] == [g.finish_reason for g in theirs]
    assert ours[1].finish_reason == "stop" and stop not in ours[1].text
    assert len(ours[1].token_ids or []) < len(free[1].token_ids or [])


def _batch(backend: LocalHFBackend, prompts: list[str] | None = None) -> Any:
    """`prompts` (default `_prompts()`) left-padded into one batch, as the backend pads."""
    backend.tokenizer.padding_side = "left"
    return backend.tokenizer(prompts or _prompts(), add_special_tokens=False,
                             return_tensors="pt", padding=True)  # fmt: skip


def test_dropping_finished_rows_leaves_the_others_tokens_alone(
    backends: dict[str, LocalHFBackend],
) -> None:
    backend = backends["compact"]
    enc = _batch(backend)
    limits = [0, 1, 12, 25]
    ids, mask, eos = enc["input_ids"], enc["attention_mask"], backend.eos_ids
    each_step = decode(backend.model, ids, mask, limits, eos_ids=eos, logprobs=True,
                       compact_share=0.01)  # fmt: skip
    never = decode(backend.model, ids, mask, limits, eos_ids=eos, logprobs=True,
                   compact_share=2.0)  # fmt: skip
    assert [r.token_ids for r in each_step] == [r.token_ids for r in never]
    assert [len(r.token_ids) for r in never] == [0, 1, 12, 25]
    assert each_step[0].finish_reason == "length" and each_step[0].logprobs == []
    for a, b in zip(each_step, never, strict=True):
        assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-5)
    alone = decode(backend.model, ids[3:], mask[3:], [25], eos_ids=eos, logprobs=True)
    assert alone[0].token_ids == never[3].token_ids
    # An end-of-turn token ends its row before it (the token itself is not kept).
    end = never[3].token_ids[6]
    ended = decode(backend.model, ids, mask, limits, eos_ids=[end], compact_share=0.01)
    first = never[3].token_ids.index(end)
    assert ended[3].token_ids == never[3].token_ids[:first]
    assert ended[3].finish_reason == "stop"


def test_a_shared_prefix_prefilled_once_changes_no_token(
    backends: dict[str, LocalHFBackend],
) -> None:
    """The prompts share the system prompt (hundreds of tokens); two rows are one prompt twice
    (everything shared but the last token)."""
    backend = backends["compact"]
    prompts = [*_prompts(), _prompts()[1]]
    enc = _batch(backend, prompts)
    ids, mask, limits = enc["input_ids"], enc["attention_mask"], [20] * len(prompts)
    shared = decode(backend.model, ids, mask, limits, eos_ids=[], logprobs=True,
                    min_shared_prefix=1)  # fmt: skip
    apart = decode(backend.model, ids, mask, limits, eos_ids=[], logprobs=True,
                   min_shared_prefix=10**9)  # fmt: skip
    assert [r.token_ids for r in shared] == [r.token_ids for r in apart]
    assert shared[4].token_ids == shared[1].token_ids
    for a, b in zip(shared, apart, strict=True):
        assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-4)


def test_grouped_decode_attention_gives_sdpas_logits(
    random_policy: Path, backends: dict[str, LocalHFBackend]
) -> None:
    from transformers import AutoModelForCausalLM, DynamicCache

    models = {
        name: AutoModelForCausalLM.from_pretrained(random_policy, attn_implementation=name).eval()
        for name in ("sdpa", register_gqa_decode_attention())
    }
    enc = _batch(backends["compact"])
    mask = enc["attention_mask"]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    next_ids = torch.tensor([[5], [17], [250], [1000]])
    logits = {}
    with torch.inference_mode():
        for name, model in models.items():
            cache = DynamicCache()
            model(input_ids=enc["input_ids"], attention_mask=mask, position_ids=positions,
                  past_key_values=cache)  # fmt: skip
            out = []
            step_mask, pos = mask, positions[:, -1:]
            for _ in range(3):  # decoding steps: one query per row, left padding in the mask
                step_mask = torch.cat([step_mask, torch.ones_like(step_mask[:, :1])], dim=-1)
                pos = pos + 1
                out.append(model(input_ids=next_ids, attention_mask=step_mask, position_ids=pos,
                                 past_key_values=cache).logits)  # fmt: skip
            logits[name] = torch.cat(out, dim=1)
    assert torch.allclose(logits["sdpa"], logits[GQA_DECODE_ATTENTION], atol=1e-5)


def test_top_p_keeps_what_transformers_keeps() -> None:
    from transformers.generation.logits_process import TopPLogitsWarper

    logits = torch.randn(6, 50, generator=torch.Generator().manual_seed(0)) * 3
    for p in (0.1, 0.5, 0.9, 1.0):
        expected = TopPLogitsWarper(p)(torch.zeros(6, 1, dtype=torch.long), logits.clone())
        assert torch.equal(top_p(logits.clone(), p).isinf(), expected.isinf())
        assert torch.equal(top_p(logits.clone(), p), expected)


def test_samples_follow_the_temperature_and_top_p(backends: dict[str, LocalHFBackend]) -> None:
    """One token from one short prompt, 4,000 times in a batch: every draw lies in the top-p
    nucleus, and the commonest token's frequency is its probability at that temperature."""
    backend = backends["compact"]
    enc = backend.tokenizer(["The capital of France is"] * 4000, add_special_tokens=False,
                            return_tensors="pt")  # fmt: skip
    with torch.inference_mode():
        logits = backend.model(**{k: v[:1] for k, v in enc.items()}).logits
    last = logits[0, -1].float()
    rows = decode(backend.model, enc["input_ids"], enc["attention_mask"], [1] * 4000,
                  eos_ids=[], temperature=0.8, top_p=0.9,
                  generator=torch.Generator().manual_seed(1))  # fmt: skip
    drawn = torch.tensor([r.token_ids[0] for r in rows])
    nucleus = top_p(last / 0.8, 0.9)
    assert not nucleus[drawn].isinf().any()
    probs = nucleus.softmax(-1)
    top = int(probs.argmax())
    share = float((drawn == top).float().mean())
    sigma = float((probs[top] * (1 - probs[top]) / 4000) ** 0.5)
    assert abs(share - float(probs[top])) < 4 * sigma + 1e-3


def test_sampled_rows_follow_their_distributions_and_skip_impossible_tokens() -> None:
    """`sample_rows` on three rows (one with zeros at both ends and between, one almost all on
    its last token, one uniform), 20,000 draws each: no token of probability 0 is ever
    drawn, and every token's frequency is within 4 sigma of its probability."""
    probs = torch.tensor(
        [[0.0, 0.5, 0.0, 0.3, 0.2, 0.0],
         [1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 0.995],
         [1 / 6] * 6]
    )  # fmt: skip
    n = 20_000
    generator = torch.Generator().manual_seed(0)
    drawn = torch.stack([sample_rows(probs, generator) for _ in range(n)])  # [n, 3]
    assert drawn.shape == (n, 3) and drawn.dtype == torch.long
    for row in range(3):
        counts = torch.bincount(drawn[:, row], minlength=6).double() / n
        p = probs[row].double()
        assert not counts[p == 0].any()
        sigma = (p * (1 - p) / n).sqrt()
        assert ((counts - p).abs() <= 4 * sigma + 1e-4).all(), (row, counts, p)


def _turn_two(backend: LocalHFBackend, prompt: str, reply: list[int]) -> str:
    """An agent's next prompt: the last one, its reply and a tool response."""
    return (prompt + backend.tokenizer.decode(reply) + "<|im_end|>\n<|im_start|>user\n"
            "<tool_response>\nParis is the capital of France.\n</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n")  # fmt: skip


def test_a_next_turn_prefilled_from_held_rows_changes_no_token(
    backends: dict[str, LocalHFBackend],
) -> None:
    """Turn one holds each row (prompt and fed-back tokens) as it ends; turn two (those
    prompts, their replies and a tool response, plus one prompt that shares nothing) decodes
    the same tokens and logprobs with the held rows' keys and values as without them."""
    backend = backends["compact"]
    store = PrefixStore(min_tokens=8)
    prompts = _prompts()
    enc = _batch(backend, prompts)
    limits = [5, 12, 8, 12]
    first = decode(backend.model, enc["input_ids"], enc["attention_mask"], limits, eos_ids=[],
                   store=store)  # fmt: skip
    assert len(store) == 4 and store.reused_tokens == 0
    lengths = sorted(len(store[k].token_ids) for k in range(4))
    prompt_lengths = enc["attention_mask"].sum(-1).tolist()
    # Ended at their limits: the last token was sampled, never fed back.
    assert lengths == sorted(n + limit - 1 for n, limit in zip(prompt_lengths, limits, strict=True))
    held = store[1]
    config = backend.model.config
    assert held.keys[0].shape == (config.num_key_value_heads, len(held.token_ids), config.head_dim)
    second = [_turn_two(backend, p, r.token_ids) for p, r in zip(prompts, first, strict=True)]
    second.append("Who wrote it?")
    enc2 = _batch(backend, second)
    ids, mask = enc2["input_ids"], enc2["attention_mask"]
    with_store = decode(backend.model, ids, mask, [16] * 5, eos_ids=[], logprobs=True,
                        store=store)  # fmt: skip
    apart = decode(backend.model, ids, mask, [16] * 5, eos_ids=[], logprobs=True)
    assert store.reused_tokens >= sum(prompt_lengths)
    assert [r.token_ids for r in with_store] == [r.token_ids for r in apart]
    for a, b in zip(with_store, apart, strict=True):
        assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-4)


def _row(ids: list[int]) -> CachedRow:
    return CachedRow(token_ids=np.asarray(ids), keys=[torch.zeros(1, len(ids), 2)],
                     values=[torch.zeros(1, len(ids), 2)])  # fmt: skip


def test_the_prefix_store_finds_the_longest_match_and_drops_the_oldest_rows() -> None:
    store = PrefixStore(max_tokens=250, min_tokens=10)
    store.add(_row(list(range(100))))  # key 0
    store.add(_row(list(range(50)) + [999] * 50))  # key 1
    assert store.lookup([*range(60), 7]) == (0, 60)
    assert store.lookup([*range(50), 999, 5]) == (1, 51)
    assert store.lookup([0, 1, 2, 3, 5]) == (None, 0)  # under min_tokens
    assert store.lookup(list(range(60))) == (0, 60)  # key 1 is the least recently used now
    store.add(_row(list(range(1000, 1100))))  # key 2: 300 tokens, so key 1 goes
    assert len(store) == 2 and store.tokens == 200
    assert store.lookup([*range(50), 999]) == (0, 50)
    store.add(_row(list(range(120))), replaces=0)  # key 3 extends key 0
    assert len(store) == 2 and store.lookup(list(range(120))) == (3, 120)
    store.add(_row(list(range(300))))  # longer than the store: not held
    assert len(store) == 2
    store.clear()
    assert len(store) == 0 and store.tokens == 0
    with pytest.raises(ValueError, match="at least 1"):
        PrefixStore(max_tokens=0)


def test_the_backend_forgets_held_rows_when_the_weights_change(random_policy: Path) -> None:
    """The GRPO trainer updates the backend's model in place between steps: held keys and
    values of the old weights must not be reused."""
    backend = LocalHFBackend(random_policy, device="cpu")
    store = backend.prefix_store
    assert store is not None
    params = SamplingParams(max_tokens=4, temperature=0.0)
    prompt = _prompts()[1]
    backend.generate_sync(prompt, params)
    backend.generate_sync(prompt + " Since when?", params)
    reused = store.reused_tokens
    assert reused > 0 and len(store) == 2
    with torch.no_grad():
        next(backend.model.parameters()).mul_(1.0)  # an in-place update, values unchanged
    backend.generate_sync(prompt + " Since when?", params)
    assert store.reused_tokens == reused and len(store) == 1
    assert LocalHFBackend(random_policy, device="cpu", prefix_cache_tokens=0).prefix_store is None
