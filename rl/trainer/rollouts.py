"""Rollouts for the local GRPO loop: the shared episode runner (`rl.episode.run_episode`), with
the policy being trained as its backend, the local web as its environment and the judge as its
reward. The same runner serves difficulty filtering and evaluation, so training sees exactly the
protocol those use.
"""

from __future__ import annotations

from typing import Any

from rl.backends.decoding import register_gqa_decode_attention
from rl.backends.local_hf import LocalHFBackend
from rl.episode import AgentTask, EpisodeConfig, ToolEnvironment, run_episode
from rl.judge import Judge
from rl.rollout import episode_seed
from rl.tokens import TokenCounter
from rl.trainer.local_grpo import RolloutFn
from rl.trajectory import Trajectory


def live_policy_backend(
    model_path: str,
    model: Any,
    device: str,
    max_batch: int = 8,
    prefix_cache_tokens: int = 65536,
    workers: int = 1,
) -> LocalHFBackend:
    """A local backend that generates with `model` (the trainer's live module) instead of a
    copy frozen at load time. The module gets the backend's decoding attention
    (`gqa_decode_attention`: sdpa itself in training and prefill, and not saved with it). Its
    prefix store is cleared whenever the trainer's optimizer has changed the weights; with
    `workers` > 1 the worker processes get the new weights before their next batch."""
    backend = LocalHFBackend(
        model_path,
        device=device,
        max_batch=max_batch,
        prefix_cache_tokens=prefix_cache_tokens,
        workers=workers,
    )
    if backend.decoder == "compact":
        model.set_attn_implementation(register_gqa_decode_attention())
    backend.model = model  # the loaded copy is dropped; rollouts follow every update
    return backend


def episode_rollout_fn(
    backend: Any,
    env: ToolEnvironment,
    config: EpisodeConfig,
    count_tokens: TokenCounter,
    judge: Judge,
    seed: int = 0,
) -> RolloutFn:
    """A `RolloutFn` for `LocalGRPOTrainer`: one judged episode per (task, sample, step), its
    sampling seeded by all three so a resumed run replays the same episodes."""

    async def rollout(task: Any, sample_idx: int, step: int) -> Trajectory:
        agent_task = task if isinstance(task, AgentTask) else AgentTask.model_validate(task)
        return await run_episode(
            agent_task,
            backend,
            env,
            config,
            count_tokens,
            judge=judge,
            sample_idx=sample_idx,
            seed=episode_seed(seed * 1_000_003 + step, agent_task.id, sample_idx),
        )

    return rollout
