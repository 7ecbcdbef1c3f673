"""Episode -> input_ids + loss_mask: exact w.r.t. the rendered prompts, trained on the model's
own tokens only."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rl.protocol import Message, initial_messages, render_raw
from rl.trainer.grpo import policy_loss
from rl.trainer.sequences import (
    check_matches_full_render,
    collate,
    token_logprobs,
    tokenize_episode,
)

TOOL_TEXT = "A Google search for 'capital of france' found 1 results:\n\n## Web Results\n1. Paris"
ANSWER_TEXT = "<think>the page says paris</think>\n<answer>Paris</answer>"


def _episode() -> list[Message]:
    msgs = initial_messages("What is the capital of France?", "2025-01-01")
    msgs.append(
        {
            "role": "assistant",
            "content": '<think>search it</think>\n<tool_call>{"name": "search", "arguments": '
            '{"query": ["capital of france"]}}</tool_call>',
        }
    )
    msgs.append({"role": "tool", "content": TOOL_TEXT})
    msgs.append({"role": "assistant", "content": ANSWER_TEXT})
    return msgs


@pytest.fixture(scope="module")
def tokenizer(tiny_policy: Path):
    return AutoTokenizer.from_pretrained(tiny_policy)


def test_loss_mask_covers_exactly_the_assistant_turns_and_their_end_token(tokenizer) -> None:
    msgs = _episode()
    ep = tokenize_episode(msgs, tokenizer)
    assert len(ep.input_ids) == len(ep.loss_mask)
    trained = [t for t, m in zip(ep.input_ids, ep.loss_mask, strict=True) if m]
    expected = "".join(m["content"] + "<|im_end|>" for m in msgs if m["role"] == "assistant")
    assert tokenizer.decode(trained) == expected
    untrained = tokenizer.decode(
        [t for t, m in zip(ep.input_ids, ep.loss_mask, strict=True) if not m]
    )
    assert TOOL_TEXT in untrained and "<tool_response>" in untrained
    assert "What is the capital of France?" in untrained


def test_each_turn_prefix_is_the_prompt_the_model_was_given(tokenizer) -> None:
    msgs = _episode()
    ep = tokenize_episode(msgs, tokenizer)
    check_matches_full_render(msgs, tokenizer, ep)
    for i, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        prompt = tokenizer(render_raw(msgs[:i]), add_special_tokens=False)["input_ids"]
        assert ep.input_ids[: len(prompt)] == prompt
        assert ep.loss_mask[len(prompt) - 1] == 0 and ep.loss_mask[len(prompt)] == 1


def test_text_after_the_last_assistant_turn_is_dropped_and_max_len_truncates(tokenizer) -> None:
    msgs = [*_episode(), {"role": "tool", "content": "a result nobody read"}]
    ep = tokenize_episode(msgs, tokenizer)
    assert tokenizer.decode(ep.input_ids).endswith(ANSWER_TEXT + "<|im_end|>")
    short = tokenize_episode(msgs, tokenizer, max_len=10)
    assert short.input_ids == ep.input_ids[:10] and short.loss_mask == ep.loss_mask[:10]


def test_episode_without_assistant_turn_is_rejected(tokenizer) -> None:
    with pytest.raises(ValueError, match="no assistant turn"):
        tokenize_episode(initial_messages("q?", "2025-01-01"), tokenizer)


def test_tool_response_tokens_get_no_gradient_through_the_real_model(
    tiny_policy: Path, tokenizer
) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_policy, dtype=torch.float32)
    msgs = _episode()
    episodes = [
        tokenize_episode(msgs, tokenizer),
        tokenize_episode(msgs[:2] + msgs[4:5], tokenizer),
    ]
    batch = collate(episodes, tokenizer.pad_token_id)
    logp, mask = token_logprobs(model, batch)
    logp.retain_grad()
    loss, _ = policy_loss(logp, logp.detach(), torch.tensor([1.0, -1.0]), mask)
    loss.backward()
    assert logp.grad is not None
    # Position t scores token t+1: find the targets that belong to the tool response.
    ids0 = episodes[0].input_ids
    text = tokenizer.decode(ids0)
    start = text.index("<tool_response>")
    prefix_len = len(tokenizer(text[:start], add_special_tokens=False)["input_ids"])
    tool_len = len(
        tokenizer("<tool_response>\n" + TOOL_TEXT, add_special_tokens=False)["input_ids"]
    )
    tool_targets = range(prefix_len - 1, prefix_len - 1 + tool_len)
    assert all(logp.grad[0, t] == 0 for t in tool_targets)
    assert torch.all(logp.grad[mask == 0] == 0)
    assert torch.all(logp.grad[mask == 1] != 0)
    # Padding of the shorter row carries no gradient either.
    assert torch.all(logp.grad[1, len(episodes[1]) - 1 :] == 0)
    # And the weights do get a gradient from the trained tokens.
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_trained_only_logprobs_match_full_logits_values_and_gradients(
    tiny_policy: Path, tokenizer
) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_policy, dtype=torch.float32)
    msgs = _episode()
    batch = collate(
        [tokenize_episode(msgs, tokenizer), tokenize_episode(msgs[:2] + msgs[4:5], tokenizer)],
        tokenizer.pad_token_id,
    )
    grads = []
    for trained_only in (True, False):
        model.zero_grad()
        logp, mask = token_logprobs(model, batch, trained_only=trained_only)
        loss, _ = policy_loss(logp, logp.detach(), torch.tensor([1.0, -2.0]), mask)
        loss.backward()
        grads.append([p.grad.clone() for p in model.parameters()])
        if trained_only:
            fast, fast_mask = logp.detach(), mask
        else:
            full = logp.detach()
    assert torch.allclose(fast[fast_mask == 1], full[fast_mask == 1], atol=1e-5)
    assert torch.all(fast[fast_mask == 0] == 0)
    for g_fast, g_full in zip(*grads, strict=True):
        assert torch.allclose(g_fast, g_full, atol=1e-6)


@pytest.mark.parametrize("trained_only", [True, False])
def test_logprobs_at_a_sampling_temperature_are_those_of_the_tempered_softmax(
    tiny_policy: Path, tokenizer, trained_only: bool
) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_policy, dtype=torch.float32)
    batch = collate([tokenize_episode(_episode(), tokenizer)], tokenizer.pad_token_id)
    with torch.no_grad():
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        plain, mask = token_logprobs(model, batch, trained_only=trained_only)
        tempered, _ = token_logprobs(model, batch, trained_only=trained_only, temperature=0.7)
    targets = batch.input_ids[:, 1:].unsqueeze(-1)
    expected = torch.log_softmax(logits[:, :-1].float() / 0.7, dim=-1).gather(-1, targets)
    on = mask == 1
    assert torch.allclose(tempered[on], expected.squeeze(-1)[on], atol=1e-5)
    assert not torch.allclose(tempered[on], plain[on], atol=1e-3)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        token_logprobs(model, batch, trained_only=trained_only, temperature=0.0)
