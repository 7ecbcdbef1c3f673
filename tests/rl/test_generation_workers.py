"""The local backend's generation worker processes (`llm.local_workers`), with the tiny HF
policy in real spawned processes: the same tokens as the parent's own decoding, weights that
follow in-place updates and a swapped model, episodes kept on one worker, clear failures."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from rl.backends.base import BackendError, SamplingParams
from rl.backends.local_hf import LocalHFBackend
from rl.protocol import initial_messages, render_raw

QUESTIONS = ["Who?", "What is the capital of France, and since when?", "x", "Name a river."]
GREEDY = SamplingParams(max_tokens=6, temperature=0.0, logprobs=True)


def _prompts() -> list[str]:
    return [render_raw(initial_messages(q, "2026-05-01")) for q in QUESTIONS]


@pytest.fixture(scope="module")
def pooled(tiny_policy: Path) -> Iterator[LocalHFBackend]:
    # One row a batch: the parent's single-row decode is then exactly the workers' computation.
    backend = LocalHFBackend(tiny_policy, device="cpu", max_batch=1, workers=2)
    yield backend
    backend.close()


async def _all(backend: LocalHFBackend, prompts: list[str], params: SamplingParams) -> list:
    return list(await asyncio.gather(*(backend.complete(p, params) for p in prompts)))


def test_workers_give_the_parents_tokens_and_share_the_load(pooled: LocalHFBackend) -> None:
    prompts = _prompts()
    here = [pooled.generate_sync(p, GREEDY) for p in prompts]
    there = asyncio.run(_all(pooled, prompts, GREEDY))
    assert [g.token_ids for g in there] == [g.token_ids for g in here]
    assert [g.text for g in there] == [g.text for g in here]
    for a, b in zip(there, here, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)
    assert {g.extra["worker"] for g in there} == {0, 1}  # four new episodes, two workers
    assert pooled.workers is not None and pooled.workers.pending == [0, 0]


def test_a_next_turn_goes_to_the_worker_that_served_its_prefix(pooled: LocalHFBackend) -> None:
    workers = pooled.workers
    assert workers is not None
    first = [f"episode {i}: question" for i in range(4)]
    lanes = [workers.route(p) for p in first]
    assert sorted(lanes) == [0, 0, 1, 1]  # balanced while nothing is pending elsewhere
    # Each next turn extends its episode's prompt, whatever the other workers have pending.
    later = [workers.route(p + " | reply | tool response") for p in first]
    assert later == lanes
    workers.pending = [0, 0]


def test_workers_follow_weight_updates_and_a_swapped_model(
    pooled: LocalHFBackend, tiny_policy: Path
) -> None:
    prompts = _prompts()
    before = asyncio.run(_all(pooled, prompts, GREEDY))
    original = {k: v.clone() for k, v in pooled.model.state_dict().items()}
    try:
        with torch.no_grad():  # in place, as an optimizer step changes the trainer's model
            for i, param in enumerate(pooled.model.parameters()):
                param.add_(torch.randn(param.shape, generator=torch.Generator().manual_seed(i)))
        updated = asyncio.run(_all(pooled, prompts, GREEDY))
        assert [g.token_ids for g in updated] == [
            pooled.generate_sync(p, GREEDY).token_ids for p in prompts
        ]
        assert [g.token_ids for g in updated] != [g.token_ids for g in before]
        # A model assigned to the backend (the trainer's live module) replaces the weights too.
        swapped = LocalHFBackend(tiny_policy, device="cpu").model
        pooled.model = swapped
        again = asyncio.run(_all(pooled, prompts, GREEDY))
        assert [g.token_ids for g in again] == [g.token_ids for g in before]
    finally:
        pooled.model.load_state_dict(original)


def test_a_dead_worker_and_a_closed_pool_fail_with_backend_errors(tiny_policy: Path) -> None:
    backend = LocalHFBackend(tiny_policy, device="cpu", workers=2)
    assert backend.workers is not None
    try:
        assert asyncio.run(_all(backend, _prompts()[:1], GREEDY))[0].extra["worker"] == 0
        victim = backend.workers._procs[0]
        victim.kill()
        victim.join(10)
        with pytest.raises(BackendError, match="generation worker 0 is gone"):
            asyncio.run(_all(backend, _prompts()[:1], GREEDY))
    finally:
        backend.close()
    assert not any(p.is_alive() for p in backend.workers._procs)
    with pytest.raises(BackendError, match="closed"):
        asyncio.run(_all(backend, _prompts()[1:2], GREEDY))


def test_settings_choose_worker_processes_for_cpu_only(
    tiny_policy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from conf import load_settings
    from rl.factory import policy_backend

    settings = load_settings(
        "local", [f"llm.local_policy_path={tiny_policy}", "llm.device=cpu", "llm.local_workers=2"]
    )
    backend, _ = policy_backend(settings)
    assert isinstance(backend, LocalHFBackend) and backend.workers is not None
    assert backend.workers.count == 2
    asyncio.run(backend.aclose())
    assert backend.workers.closed
    # Elsewhere one process generates, with a warning (the demo profile on a GPU machine).
    with caplog.at_level("WARNING"):
        try:
            gpu = LocalHFBackend(tiny_policy, device="cuda", workers=2)
        except Exception as exc:  # no CUDA on this machine: the model load fails after it
            assert "worker" not in str(exc)
        else:
            assert gpu.workers is None
    assert "2 workers ignored on cuda" in caplog.text
