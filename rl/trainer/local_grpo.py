"""The local GRPO loop: one process, CPU or one GPU, readable top to bottom.

Per step:
    1. take `prompts_per_step` tasks (B) and run `group_size` (G) rollouts of each through the
       injected async `rollout_fn` (the episode runner with a local HF backend in production);
    2. rewards [B, G] -> group-normalized advantages [B*G];
    3. episodes -> input_ids + loss_mask (the model's own tokens only), old logprobs [N, T-1];
    4. `ppo_epochs` x (forward, clip-higher surrogate, backward over micro-batches, grad clip,
       AdamW step);
    5. metrics to `on_metrics`, an HF checkpoint every `save_every` steps and at the end.

A new trainer over an output dir that holds checkpoints resumes from the newest one: weights,
optimizer and RNG states are restored, so the next step is the one the first run would have
taken.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from rl.backends.local_hf import resolve_device
from rl.trainer.checkpoints import CheckpointedLoop, MetricsFn, load_causal_lm
from rl.trainer.grpo import group_advantages, policy_loss
from rl.trainer.sequences import TokenizedEpisode, collate, token_logprobs, tokenize_episode
from rl.trajectory import Trajectory

# (task, sample_idx, step) -> one finished, scored episode. `step` (0-based) lets a rollout
# seed its sampling per (step, task, sample), so a resumed run samples what the first would have.
RolloutFn = Callable[[Any, int, int], Awaitable[Trajectory]]
__all__ = ["GRPOConfig", "LocalGRPOTrainer", "MetricsFn", "RolloutFn"]


@dataclass
class GRPOConfig:
    prompts_per_step: int = 4  # B
    group_size: int = 4  # G
    total_steps: int = 20
    ppo_epochs: int = 1
    micro_batch_size: int = 8
    lr: float = 1e-5
    weight_decay: float = 0.0
    max_norm: float = 1.0
    eps_low: float = 0.2
    eps_high: float = 0.4
    kl_coef: float = 0.0
    max_len: int = 2048
    save_every: int = 10
    keep_last: int = 2
    seed: int = 0
    device: str = "cpu"
    # LM head only on trained positions (see `token_logprobs`); False: full logits everywhere.
    logits_on_trained_only: bool = True


class LocalGRPOTrainer(CheckpointedLoop):
    kind = "grpo"

    def __init__(
        self,
        model_path: str | Path,
        output_dir: str | Path,
        config: GRPOConfig,
        tasks: Sequence[Any],
        rollout_fn: RolloutFn,
        on_metrics: MetricsFn | None = None,
    ) -> None:
        if not tasks:
            raise ValueError("no tasks to train on")
        self.config = config
        self.tasks = list(tasks)
        self.rollout_fn = rollout_fn
        self.on_metrics = on_metrics
        self.output_dir = Path(output_dir)
        self.device = resolve_device(config.device)
        self.init_model_path = str(model_path)
        self.open_model(
            model_path,
            output_dir,
            device=self.device,
            seed=config.seed,
            lr=config.lr,
            weight_decay=config.weight_decay,
            save_every=config.save_every,
            keep_last=config.keep_last,
        )
        self.ref_model: Any = None
        if config.kl_coef > 0:
            self.ref_model = load_causal_lm(model_path, self.device).eval().requires_grad_(False)

    # -------------------------------------------------------------- data order

    def tasks_for_step(self, step: int) -> list[Any]:
        """The B tasks of a (0-based) step: a fresh seeded shuffle each pass over the data, so
        the order depends only on (seed, step) and a resumed run sees the same tasks."""
        b, n = self.config.prompts_per_step, len(self.tasks)
        out = []
        for k in range(step * b, step * b + b):
            epoch, pos = divmod(k, n)
            order = list(range(n))
            random.Random(self.config.seed * 1_000_003 + epoch).shuffle(order)
            out.append(self.tasks[order[pos]])
        return out

    async def _rollouts(self, tasks: list[Any]) -> list[list[Trajectory]]:
        g = self.config.group_size
        step = self.step
        flat = await asyncio.gather(*(self.rollout_fn(t, i, step) for t in tasks for i in range(g)))
        return [list(flat[j * g : (j + 1) * g]) for j in range(len(tasks))]

    # ------------------------------------------------------------------ a step

    def _micro_batches(self, n: int) -> list[list[int]]:
        m = self.config.micro_batch_size
        return [list(range(i, min(i + m, n))) for i in range(0, n, m)]

    @torch.no_grad()
    def _logprobs(self, model: torch.nn.Module, episodes: list[TokenizedEpisode]) -> list[Any]:
        out = []
        for idx in self._micro_batches(len(episodes)):
            batch = collate([episodes[i] for i in idx], self.pad_id)
            logp, _ = token_logprobs(
                model, _to(batch, self.device), self.config.logits_on_trained_only
            )
            out.append(logp)
        return out

    def train_step(self) -> dict[str, float]:
        cfg = self.config
        t0 = time.perf_counter()
        self.model.eval()
        groups = asyncio.run(self._rollouts(self.tasks_for_step(self.step)))
        t_rollout = time.perf_counter() - t0
        trajs = [t for group in groups for t in group]

        rewards = torch.tensor([[t.reward or 0.0 for t in group] for group in groups])  # [B, G]
        advantages = group_advantages(rewards).reshape(-1).to(self.device)  # [N]
        episodes = [tokenize_episode(t.messages, self.tokenizer, cfg.max_len) for t in trajs]
        old_logp = self._logprobs(self.model, episodes)
        ref_logp = self._logprobs(self.ref_model, episodes) if self.ref_model else None
        total_tokens = max(1, sum(e.num_trained_tokens for e in episodes))

        self.model.train()
        sums = {"loss": 0.0, "pg_loss": 0.0, "kl": 0.0, "clip_frac": 0.0}
        grad_norm = 0.0
        for _ in range(cfg.ppo_epochs):
            self.optimizer.zero_grad(set_to_none=True)
            for k, idx in enumerate(self._micro_batches(len(episodes))):
                batch = _to(collate([episodes[i] for i in idx], self.pad_id), self.device)
                logp, mask = token_logprobs(self.model, batch, cfg.logits_on_trained_only)
                loss, stats = policy_loss(
                    logp,
                    old_logp[k],
                    advantages[idx],
                    mask,
                    cfg.eps_low,
                    cfg.eps_high,
                    ref_logprobs=None if ref_logp is None else ref_logp[k],
                    kl_coef=cfg.kl_coef,
                )
                # Token-level mean over the whole batch, not a mean of micro-batch means.
                share = float(mask.sum()) / total_tokens
                (loss * share).backward()
                for key in sums:
                    sums[key] += getattr(stats, key) * share / cfg.ppo_epochs
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_norm))
            self.optimizer.step()
        self.step += 1

        correct = [t.correct if t.correct is not None else (t.reward or 0.0) > 0 for t in trajs]
        metrics = {
            **sums,
            "reward": float(rewards.mean()),
            "pass_rate": sum(correct) / len(correct),
            "groups_with_signal": float((rewards.std(dim=1) > 0).float().mean()),
            "turns": sum(t.num_turns for t in trajs) / len(trajs),
            "tool_calls": sum(len(t.tool_calls) for t in trajs) / len(trajs),
            "trained_tokens": float(total_tokens) / len(trajs),
            "grad_norm": grad_norm,
            "rollout_s": t_rollout,
            "step_s": time.perf_counter() - t0,
        }
        if self.on_metrics is not None:
            self.on_metrics(self.step, metrics)
        self.last_metrics = metrics
        return metrics

    # --------------------------------------------------------------- the loop

    def state_config(self) -> dict[str, Any]:
        return asdict(self.config) | {"init_model_path": self.init_model_path}

    def train(self, steps: int | None = None) -> Path | None:
        """Run up to `total_steps` (or `steps` more); return the newest checkpoint."""
        return self.run_to(self.config.total_steps if steps is None else self.step + steps)


def _to(batch: Any, device: str) -> Any:
    batch.input_ids = batch.input_ids.to(device)
    batch.attention_mask = batch.attention_mask.to(device)
    batch.loss_mask = batch.loss_mask.to(device)
    return batch
