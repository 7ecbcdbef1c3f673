"""Multi-turn episode -> `input_ids` + `loss_mask`, byte-for-byte what the policy saw.

The conversation is rendered with the protocol's raw chat rendering (`rl.protocol`), the same
text the rollout backends generate from. Each message becomes pieces tokenized on their own:

    <|im_start|>system\\n{system}<|im_end|>\\n                 mask 0
    <|im_start|>user\\n{question}<|im_end|>\\n                 mask 0
    <|im_start|>assistant\\n                                   mask 0   (generation prompt)
    {assistant text}<|im_end|>                                 mask 1   (the model's own tokens)
    \\n<|im_start|>user\\n<tool_response>...<|im_end|>\\n      mask 0   (tool feedback)
    ...

Piece boundaries sit next to special tokens, so tokenizing piece by piece gives the same ids
as tokenizing the whole text (`check_matches_full_render` asserts it in tests). Text after the
last assistant turn (a tool result nobody read) is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from rl.protocol import GENERATION_PROMPT, Message, render_message_raw

END_OF_TURN = "<|im_end|>"


class Tokenizer(Protocol):
    """The slice of a HF tokenizer used here."""

    pad_token_id: int | None
    eos_token_id: int | None

    def __call__(self, text: str, add_special_tokens: bool = ...) -> Any: ...


@dataclass
class TokenizedEpisode:
    input_ids: list[int]
    loss_mask: list[int]  # 1 on tokens the policy generated, 0 elsewhere

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def num_trained_tokens(self) -> int:
        return sum(self.loss_mask)


def render_pieces(messages: Sequence[Message]) -> list[tuple[str, bool]]:
    """(text, trained) pieces whose concatenation is `render_raw(messages, False)` cut after the
    last assistant turn."""
    last_assistant = max(
        (i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1
    )
    if last_assistant < 0:
        raise ValueError("the episode has no assistant turn: nothing to train on")
    pieces: list[tuple[str, bool]] = []
    for i, message in enumerate(messages[: last_assistant + 1]):
        if message["role"] == "assistant":
            pieces.append((GENERATION_PROMPT, False))
            pieces.append((message["content"] + END_OF_TURN, True))
            if i < last_assistant:
                pieces.append(("\n", False))
        else:
            pieces.append((render_message_raw(message), False))
    return _merge_untrained(pieces)


def _merge_untrained(pieces: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    # Adjacent untrained pieces are tokenized together, as the backend saw them in one prompt.
    merged: list[tuple[str, bool]] = []
    for text, trained in pieces:
        if merged and not trained and not merged[-1][1]:
            merged[-1] = (merged[-1][0] + text, False)
        else:
            merged.append((text, trained))
    return merged


def _encode(tokenizer: Tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def tokenize_episode(
    messages: Sequence[Message], tokenizer: Tokenizer, max_len: int | None = None
) -> TokenizedEpisode:
    """Token ids and loss mask of one episode; `max_len` truncates from the right."""
    ids: list[int] = []
    mask: list[int] = []
    for text, trained in render_pieces(messages):
        piece = _encode(tokenizer, text)
        ids.extend(piece)
        mask.extend([int(trained)] * len(piece))
    if max_len is not None:
        ids, mask = ids[:max_len], mask[:max_len]
    return TokenizedEpisode(input_ids=ids, loss_mask=mask)


def check_matches_full_render(
    messages: Sequence[Message], tokenizer: Tokenizer, episode: TokenizedEpisode
) -> None:
    """Raise if piecewise tokenization differs from tokenizing the whole rendered text."""
    full = "".join(text for text, _ in render_pieces(messages))
    expected = _encode(tokenizer, full)
    if expected != episode.input_ids:
        raise AssertionError("piecewise tokenization differs from the full render")


@dataclass
class Batch:
    """Right-padded tensors, all [N, T]."""

    input_ids: Tensor
    attention_mask: Tensor
    loss_mask: Tensor


def collate(episodes: Sequence[TokenizedEpisode], pad_id: int) -> Batch:
    width = max(len(e) for e in episodes)
    n = len(episodes)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    loss_mask = torch.zeros((n, width), dtype=torch.float32)
    for row, ep in enumerate(episodes):
        t = len(ep)
        input_ids[row, :t] = torch.tensor(ep.input_ids, dtype=torch.long)
        attention[row, :t] = 1
        loss_mask[row, :t] = torch.tensor(ep.loss_mask, dtype=torch.float32)
    return Batch(input_ids=input_ids, attention_mask=attention, loss_mask=loss_mask)


def token_logprobs(
    model: torch.nn.Module, batch: Batch, trained_only: bool = True, temperature: float = 1.0
) -> tuple[Tensor, Tensor]:
    """Log-probability of each next token and its mask, both [N, T-1]: position t scores
    token t+1 given tokens 0..t.

    `temperature`: the log-probabilities of softmax(logits / temperature), the distribution
    the tokens were sampled from (OpenRLHF's actor divides its logits by the rollout
    temperature the same way), so a policy-gradient step moves the policy that sampled.

    `trained_only`: run the LM head and softmax only where the mask is 1 (the rest are 0 and
    carry no gradient). Agent episodes are mostly prompt and tool text, so this skips most of
    the [N, T, vocab] logits. Needs a decoder + output-embedding model (any HF causal LM whose
    head is a plain projection, as Qwen3's is)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 (a sampling temperature), got {temperature}")
    mask = batch.loss_mask[:, 1:]
    targets = batch.input_ids[:, 1:]
    if not trained_only:
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        logp_all = torch.log_softmax(logits[:, :-1].float() / temperature, dim=-1)
        return logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1), mask
    decoder: Any = model.get_decoder()  # type: ignore[operator]
    head: Any = model.get_output_embeddings()  # type: ignore[operator]
    hidden = decoder(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask
    ).last_hidden_state[:, :-1]  # [N, T-1, H]
    keep = mask.bool()
    logp_kept = torch.log_softmax(head(hidden[keep]).float() / temperature, dim=-1)  # [K, vocab]
    logp = torch.zeros(mask.shape, dtype=logp_kept.dtype, device=logp_kept.device)
    logp[keep] = logp_kept.gather(-1, targets[keep].unsqueeze(-1)).squeeze(-1)
    return logp, mask
