"""Generation worker processes for the local backend (`llm.local_workers`).

A small model on CPU decodes in many small torch ops, so its speed is bound by each op's
Python and dispatch overhead, not by arithmetic: a second torch thread adds nothing (session
20), while two processes of one thread generate 1.4-1.8x as fast on long runs of episodes
(docs/BENCHMARKS.md "Session 21"). `GenerationWorkers` runs N spawned processes, each a
single-process `LocalHFBackend` on `threads` torch threads; the parent batches requests per
worker and sends each batch to its worker. A worker is sent the parent model's weights before
its first batch and whenever they have changed since (the GRPO trainer updates the parent's
model in place between steps), so rollouts always follow the policy being trained.

Each worker keeps its own prefix store (an episode's next turn prefills only what it adds), so
`route` sends a prompt to the worker that served a prompt it extends (the episode's previous
turn), and a new episode to the worker with the fewest requests pending.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections import OrderedDict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from rl.backends.base import BackendError, Generation, SamplingParams

# The prompts a worker has served that a later prompt may extend (its episodes' last turns).
HELD_PROMPTS = 256


def _serve(conn: Connection, model_dir: str, threads: int, options: dict[str, Any]) -> None:
    """A worker's loop: (weights | None, prompts, params) in, ("ok", generations) or ("error",
    message) out, until the parent sends None or goes away."""
    import torch

    from rl.backends.local_hf import LocalHFBackend

    torch.set_num_threads(threads)
    backend = LocalHFBackend(model_dir, **options)
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent is gone
            return
        if message is None:
            return
        weights, prompts, params = message
        try:
            if weights is not None:
                # In place: the parameters' version counters move, so the prefix store (of
                # the old weights) is cleared before the next decode.
                backend.model.load_state_dict(weights)
            reply: tuple[str, Any] = ("ok", backend.generate_batch_sync(prompts, params))
        except Exception as exc:  # the parent turns it into a BackendError for the batch
            reply = ("error", f"{type(exc).__name__}: {exc}")
        conn.send(reply)


class GenerationWorkers:
    """`count` worker processes generating with the model of `model_dir` (replaced by the
    parent's weights at each worker's first batch). `options`: `LocalHFBackend` keywords."""

    def __init__(
        self, model_dir: str | Path, count: int, *, threads: int = 1, options: dict[str, Any]
    ) -> None:
        if count < 2:
            raise ValueError(f"worker processes make sense from 2 on, got {count}")
        context = multiprocessing.get_context("spawn")  # no fork of a process holding torch
        self.count = count
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        for i in range(count):
            parent, child = context.Pipe()
            proc = context.Process(
                target=_serve,
                args=(child, str(model_dir), threads, options),
                name=f"literesearcher-generate-{i}",
                daemon=True,
            )
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        self._locks = [threading.Lock() for _ in range(count)]
        self._sent = [-1] * count  # the weights version each worker holds (-1: none sent)
        self._held: list[OrderedDict[str, None]] = [OrderedDict() for _ in range(count)]
        self.pending = [0] * count  # requests routed to a worker and not yet answered
        self.closed = False

    def route(self, prompt: str) -> int:
        """The worker for `prompt`: the one that served the longest prompt it extends, else
        the one with the fewest pending requests. Counts the request as pending there."""
        best, hit = -1, ""
        for i, held in enumerate(self._held):
            for earlier in held:
                if len(earlier) > len(hit) and prompt.startswith(earlier):
                    best, hit = i, earlier
        if best >= 0:
            del self._held[best][hit]  # the episode's turn it extends: not extended again
        else:
            best = min(range(self.count), key=lambda i: (self.pending[i], i))
        held = self._held[best]
        held[prompt] = None
        while len(held) > HELD_PROMPTS:
            held.popitem(last=False)
        self.pending[best] += 1
        return best

    def generate(
        self,
        worker: int,
        prompts: list[str],
        params: list[SamplingParams],
        weights: tuple[int, dict[str, Any]],
    ) -> list[Generation]:
        """One batch on `worker` (blocking: call it from a thread). `weights`: (version, state
        dict) of the parent's model; sent only when the worker holds another version."""
        version, state = weights
        with self._locks[worker]:
            if self.closed:
                raise BackendError("generation workers are closed")
            send = state if self._sent[worker] != version else None
            try:
                self._conns[worker].send((send, prompts, params))
                kind, payload = self._conns[worker].recv()
            except (EOFError, OSError) as exc:
                code = self._procs[worker].exitcode
                raise BackendError(
                    f"generation worker {worker} is gone (exit code {code}): {exc!r}"
                ) from exc
            if send is not None and kind == "ok":  # a failed batch may have failed the load
                self._sent[worker] = version
        if kind != "ok":
            raise BackendError(f"generation worker {worker}: {payload}")
        return list(payload)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop every worker (waiting for a batch in progress), then reap them."""
        if self.closed:
            return
        for lock, conn in zip(self._locks, self._conns, strict=True):
            with lock:
                with contextlib.suppress(OSError, ValueError):  # already gone
                    conn.send(None)
                conn.close()
        self.closed = True
        for proc in self._procs:
            proc.join(timeout_s)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout_s)
