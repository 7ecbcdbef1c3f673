"""One curriculum stage on the local trainer: settings + stage config + tasks -> HF checkpoint.

The body of the curriculum flow's stage task for the `local` profile: GRPO with the shared
episode runner against the env_service at `env_service.url`, the configured judge as reward
(`run_local_stage`), or the SFT cold start on teacher trajectories (`run_local_sft`).
Re-running either over the same output dir resumes from the newest checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conf import Settings
from conf.settings import LocalTrainerConfig, SFTConfig, StageConfig
from env_service.client import EnvClient
from rl.episode import AgentTask, EpisodeConfig
from rl.judge import judge_from_settings
from rl.protocol import Message
from rl.trainer.local_grpo import GRPOConfig, LocalGRPOTrainer, MetricsFn
from rl.trainer.rollouts import episode_rollout_fn, live_policy_backend
from rl.trainer.sft import LocalSFTTrainer, SFTLoopConfig
from rl.trajectory import Trajectory


def grpo_config(stage: StageConfig, local: LocalTrainerConfig, seed: int = 0) -> GRPOConfig:
    """The stage's batch shape and algorithm, the local loop's schedule and device."""
    return GRPOConfig(
        prompts_per_step=stage.rollout_batch_size,
        group_size=stage.n_samples_per_prompt,
        total_steps=local.total_steps,
        ppo_epochs=local.ppo_epochs,
        micro_batch_size=local.micro_batch_size,
        lr=stage.lr,
        weight_decay=local.weight_decay,
        max_norm=stage.max_norm,
        eps_low=stage.eps_clip_low,
        eps_high=stage.eps_clip_high,
        kl_coef=stage.kl_coef,
        temperature=stage.temperature,
        dynamic_filtering=stage.dynamic_filtering,
        dynamic_filtering_range=stage.dynamic_filtering_range,
        dynamic_filtering_max_rounds=local.dynamic_filtering_max_rounds,
        dynamic_filtering_parallel_rounds=local.dynamic_filtering_parallel_rounds,
        freeze_embeddings=local.freeze_embeddings,
        max_len=stage.max_len,
        save_every=local.save_every,
        keep_last=local.keep_last,
        seed=seed,
        device=local.device,
    )


def sft_loop_config(sft: SFTConfig, local: LocalTrainerConfig) -> SFTLoopConfig:
    """The SFT section's data/optimizer values, the local loop's device and checkpointing."""
    return SFTLoopConfig(
        epochs=sft.epochs,
        batch_size=sft.batch_size,
        micro_batch_size=sft.micro_batch_size,
        lr=sft.lr,
        weight_decay=local.weight_decay,
        max_norm=sft.max_norm,
        max_len=sft.max_len,
        save_every=local.save_every,
        keep_last=local.keep_last,
        seed=sft.seed,
        device=local.device,
        bf16_autocast=sft.bf16_autocast,
    )


def episode_config(settings: Settings, stage: StageConfig) -> EpisodeConfig:
    return EpisodeConfig.from_settings(
        settings,
        max_turns=stage.max_turns,
        max_tokens_per_turn=stage.max_tokens_per_turn,
        max_context_tokens=stage.max_len,
        temperature=stage.temperature,
        top_p=stage.top_p,
    )


def run_local_stage(
    settings: Settings,
    stage: StageConfig,
    tasks: Sequence[AgentTask],
    model_path: str | Path,
    output_dir: str | Path,
    on_metrics: MetricsFn | None = None,
) -> Path:
    """Train one stage (resuming if `output_dir` holds checkpoints); return its last
    checkpoint, an HF model directory the next stage starts from."""
    local = settings.curriculum.local
    config = grpo_config(stage, local, seed=settings.seed)
    episodes = episode_config(settings, stage)
    judge = judge_from_settings(settings)
    state: dict[str, Any] = {}

    async def rollout(task: Any, sample_idx: int, step: int) -> Trajectory:
        # A client per episode: the trainer runs each step's rollouts in a fresh event loop,
        # and an httpx client must not outlive its loop.
        async with EnvClient.from_settings(settings) as env:
            fn = episode_rollout_fn(
                state["backend"], env, episodes, state["count"], judge, settings.seed
            )
            return await fn(task, sample_idx, step)

    trainer = LocalGRPOTrainer(model_path, output_dir, config, list(tasks), rollout, on_metrics)
    backend = live_policy_backend(
        str(model_path),
        trainer.model,
        trainer.device,
        settings.llm.local_max_batch,
        settings.llm.local_prefix_cache_tokens,
        settings.llm.local_workers,
    )
    state["backend"], state["count"] = backend, backend.count_tokens
    try:
        last = trainer.train()
    finally:
        backend.close()
    if last is None:  # pragma: no cover - train() always leaves a checkpoint
        raise RuntimeError(f"stage {stage.name} produced no checkpoint")
    return last


def run_local_sft(
    settings: Settings,
    trajectories: Sequence[list[Message]],
    model_path: str | Path,
    output_dir: str | Path,
    on_metrics: MetricsFn | None = None,
) -> tuple[Path, int]:
    """The SFT cold start (resuming if `output_dir` holds checkpoints); return its last
    checkpoint and the step count."""
    config = sft_loop_config(settings.curriculum.sft, settings.curriculum.local)
    trainer = LocalSFTTrainer(model_path, output_dir, config, trajectories, on_metrics)
    last = trainer.train()
    if last is None:  # pragma: no cover - train() always leaves a checkpoint
        raise RuntimeError("the SFT stage produced no checkpoint")
    return last, trainer.step
