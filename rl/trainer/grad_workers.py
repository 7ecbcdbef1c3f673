"""Gradient worker processes for the local SFT loop on CPU (`curriculum.local.train_workers`).

A step's episodes are split by token count between this process and N - 1 spawned workers,
each on one torch thread: every worker is sent the model's current weights (when they changed
since its last share: after every optimizer step) and its episodes, runs their forward and
backward passes, and returns its gradients, which are added to this process's before the
clipping and the optimizer step. The step is the same sum of per-episode losses as in one
process (up to the order of float additions). As with generation (`rl.backends.workers`), a
small model's passes are bound by per-op overhead, which a second torch thread does not share
and a second process does.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

from rl.trainer.sequences import TokenizedEpisode, collate, token_logprobs


def sft_backward(
    model: Any,
    episodes: Sequence[TokenizedEpisode],
    *,
    total_tokens: int,
    pad_id: int,
    micro_batch_size: int,
    device: str,
    bf16_autocast: bool,
) -> float:
    """Accumulate into the parameters' gradients the SFT loss of `episodes`, the summed token
    log-likelihood over `total_tokens` (the whole step's trained tokens); return the loss."""
    loss_sum = 0.0
    for start in range(0, len(episodes), micro_batch_size):
        batch = collate(episodes[start : start + micro_batch_size], pad_id)
        batch.input_ids = batch.input_ids.to(device)
        batch.attention_mask = batch.attention_mask.to(device)
        batch.loss_mask = batch.loss_mask.to(device)
        with torch.autocast(torch.device(device).type, torch.bfloat16, enabled=bf16_autocast):
            logp, mask = token_logprobs(model, batch)
        loss = -(logp * mask).sum() / total_tokens
        loss.backward()
        loss_sum += float(loss.detach())
    return loss_sum


def split_by_tokens(episodes: Sequence[TokenizedEpisode], parts: int) -> list[list[int]]:
    """Indices of `episodes` in `parts` shares of about equal token counts (longest first to
    the lightest share), each share in the original order."""
    shares: list[list[int]] = [[] for _ in range(parts)]
    loads = [0] * parts
    for i in sorted(range(len(episodes)), key=lambda i: -len(episodes[i])):
        lightest = min(range(parts), key=lambda p: (loads[p], p))
        shares[lightest].append(i)
        loads[lightest] += len(episodes[i])
    return [sorted(s) for s in shares]


def _serve(conn: Connection, model_path: str, threads: int) -> None:
    from rl.trainer.checkpoints import load_causal_lm

    torch.set_num_threads(threads)
    model = load_causal_lm(model_path, "cpu")
    model.train()
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the trainer is gone
            return
        if message is None:
            return
        weights, episodes, options = message
        try:
            if weights is not None:
                model.load_state_dict(weights)
            model.zero_grad(set_to_none=True)
            loss = sft_backward(model, episodes, device="cpu", **options)
            grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
            reply: tuple[str, Any] = ("ok", (grads, loss))
        except Exception as exc:
            reply = ("error", f"{type(exc).__name__}: {exc}")
        conn.send(reply)


class GradientWorkers:
    """`count` spawned processes holding a copy of the model of `model_path` (replaced by the
    trainer's weights with their first share)."""

    def __init__(self, model_path: str | Path, count: int, *, threads: int = 1) -> None:
        if count < 1:
            raise ValueError(f"need at least one gradient worker, got {count}")
        context = multiprocessing.get_context("spawn")
        self.count = count
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        for i in range(count):
            parent, child = context.Pipe()
            proc = context.Process(target=_serve, args=(child, str(model_path), threads),
                                   name=f"literesearcher-gradients-{i}", daemon=True)  # fmt: skip
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        self._seen: tuple[int, ...] | None = None
        self._sent_any = False

    def send(
        self, model: Any, shares: Sequence[Sequence[TokenizedEpisode]], options: dict[str, Any]
    ) -> None:
        """Give worker i `shares[i]`, with the model's weights when they changed since the
        last send; `add_gradients` collects the answers."""
        if len(shares) != self.count:
            raise ValueError(f"{len(shares)} shares for {self.count} workers")
        seen = (id(model), *(p._version for p in model.parameters()))
        weights = None
        if seen != self._seen or not self._sent_any:
            weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            self._seen = seen
        for i, (conn, share) in enumerate(zip(self._conns, shares, strict=True)):
            # Every worker gets the weights, even with an empty share, so all hold the same.
            try:
                conn.send((weights, list(share), options))
            except (OSError, ValueError) as exc:
                raise RuntimeError(self._gone(i, exc)) from exc
        self._sent_any = True

    def add_gradients(self, model: Any) -> float:
        """Wait for the workers' gradients, add them to `model`'s; return their loss sum."""
        params = dict(model.named_parameters())
        total = 0.0
        for i, conn in enumerate(self._conns):
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError) as exc:
                raise RuntimeError(self._gone(i, exc)) from exc
            if kind != "ok":
                raise RuntimeError(f"gradient worker {i}: {payload}")
            grads, loss = payload
            for name, grad in grads.items():
                param = params[name]
                if param.grad is None:
                    param.grad = grad.to(param.device)
                else:
                    param.grad.add_(grad.to(param.device))
            total += loss
        return total

    def _gone(self, i: int, exc: BaseException) -> str:
        return f"gradient worker {i} is gone (exit code {self._procs[i].exitcode}): {exc!r}"

    def close(self, timeout_s: float = 10.0) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
            conn.close()
        for proc in self._procs:
            proc.join(timeout_s)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout_s)
        self._conns = []
