"""The local GRPO loop end to end: the shared episode runner with the live tiny policy as its
backend, the real env_service as its tools and the judge as its reward."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from env_service.client import EnvClient
from rl.backends.decoding import GQA_DECODE_ATTENTION
from rl.episode import AgentTask, EpisodeConfig
from rl.judge import Judge
from rl.trainer.local_grpo import GRPOConfig, LocalGRPOTrainer
from rl.trainer.rollouts import episode_rollout_fn, live_policy_backend


def test_grpo_step_on_real_episodes(tiny_policy: Path, tmp_path: Path, local_web: Any) -> None:
    tasks = [
        AgentTask(id="hubble", question="When was Edwin Hubble born?", answers=["1889"],
                  mask_urls=[local_web.source]),
        AgentTask(id="curie", question="How many Nobel Prizes did Curie win?", answers=["two"]),
    ]  # fmt: skip
    config = GRPOConfig(prompts_per_step=2, group_size=2, total_steps=1, lr=1e-3, max_len=4096)
    episode = EpisodeConfig(
        max_turns=2, max_tokens_per_turn=12, max_context_tokens=4096, date="2025-03-01",
        temperature=1.0,
    )  # fmt: skip
    seen: list[dict[str, float]] = []
    holder: dict[str, Any] = {}

    async def rollout(task: Any, idx: int, step: int) -> Any:
        # One client per event loop (the trainer runs each step's rollouts in a fresh loop).
        async with EnvClient(local_web.url) as env:
            fn = episode_rollout_fn(holder["backend"], env, episode, holder["count"], Judge())
            traj = await fn(task, idx, step)
        holder.setdefault("trajs", []).append(traj)
        return traj

    trainer = LocalGRPOTrainer(
        tiny_policy, tmp_path, config, tasks, rollout, lambda s, m: seen.append(m)
    )
    backend = live_policy_backend(str(tiny_policy), trainer.model, "cpu")
    assert backend.model is trainer.model
    assert trainer.model.config._attn_implementation == GQA_DECODE_ATTENTION
    holder["backend"], holder["count"] = backend, backend.count_tokens
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()

    trajs = holder["trajs"]
    assert len(trajs) == 4 and {t.task_id for t in trajs} == {"hubble", "curie"}
    for t in trajs:
        assert t.termination and t.turns and t.messages[-1]["role"] in ("assistant", "tool")
        assert t.reward in (0.0, 1.0) and t.judge_method is not None
    assert len(seen) == 1 and seen[0]["turns"] >= 1 and seen[0]["trained_tokens"] > 0
    assert seen[0]["reward"] == sum(t.reward for t in trajs) / 4
    # The random tiny policy rarely earns reward; weights move only where a group has signal.
    params = list(trainer.model.parameters())
    moved = any(not torch.equal(a, b) for a, b in zip(before, params, strict=True))
    assert moved == (seen[0]["groups_with_signal"] > 0)
    # The checkpoint does not name the decoding attention: it loads where none is registered.
    saved = sorted(tmp_path.rglob("config.json"))
    assert saved and not any(GQA_DECODE_ATTENTION in p.read_text() for p in saved)
