"""The local GRPO loop: one process, CPU or one GPU, readable top to bottom.

Per step:
    1. take `prompts_per_step` tasks (B) and run `group_size` (G) rollouts of each through the
       injected async `rollout_fn` (the episode runner with a local HF backend in production);
       with `dynamic_filtering` (OpenRLHF's `--algo.dynamic_filtering_enable`) only groups
       whose mean reward lies strictly inside `dynamic_filtering_range` are kept, and more
       batches of B prompts are drawn until B groups are kept (at most
       `dynamic_filtering_max_rounds` batches), so the update is not diluted by groups that
       carry no advantage; `dynamic_filtering_parallel_rounds` batches are rolled out at once
       (one larger generation batch instead of several small ones in a row), and those past
       the one that completed the B groups are dropped unseen, so the step trains on what
       drawing them one at a time would have given;
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
    # The rollouts' sampling temperature: the loss scores tokens under softmax(logits / T), the
    # policy that sampled them, as OpenRLHF's actor does with `--rollout.temperature`.
    temperature: float = 1.0
    # Keep only groups with 0 < mean reward < 1 (the range's bounds excluded), drawing more
    # prompts until `prompts_per_step` groups are kept or `dynamic_filtering_max_rounds`
    # batches of prompts were drawn in the step.
    dynamic_filtering: bool = False
    dynamic_filtering_range: tuple[float, float] = (0.0, 1.0)
    dynamic_filtering_max_rounds: int = 4
    # Rounds rolled out together (speculatively: a round drawn after the step already had its
    # B groups is dropped, its prompts left for the next step). 1: one round at a time.
    dynamic_filtering_parallel_rounds: int = 1
    max_len: int = 2048
    save_every: int = 10
    keep_last: int = 2
    seed: int = 0
    device: str = "cpu"
    # LM head only on trained positions (see `token_logprobs`); False: full logits everywhere.
    logits_on_trained_only: bool = True
    # Keep the token embeddings (and the LM head: the input embeddings' and output
    # embeddings' parameters) as they are; the updates go to the layers in between.
    freeze_embeddings: bool = False


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
        lo, hi = config.dynamic_filtering_range
        if config.dynamic_filtering and not lo < hi:
            raise ValueError(
                f"dynamic_filtering_range must be (low, high) with low < high: {lo, hi}"
            )
        if config.temperature <= 0:
            raise ValueError(f"temperature must be > 0 (GRPO samples), got {config.temperature}")
        if config.dynamic_filtering_max_rounds < 1:
            raise ValueError("dynamic_filtering_max_rounds must be at least 1")
        if config.dynamic_filtering_parallel_rounds < 1:
            raise ValueError("dynamic_filtering_parallel_rounds must be at least 1")
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
        if config.freeze_embeddings:
            for module in (self.model.get_input_embeddings(), self.model.get_output_embeddings()):
                if module is not None:
                    module.requires_grad_(False)
        self.ref_model: Any = None
        if config.kl_coef > 0:
            self.ref_model = load_causal_lm(model_path, self.device).eval().requires_grad_(False)

    # -------------------------------------------------------------- data order

    def tasks_at(self, start: int, count: int) -> list[Any]:
        """Tasks `start .. start+count-1` of the prompt stream: a fresh seeded shuffle each
        pass over the data, so the order depends only on (seed, position) and a resumed run
        (which restores the position, `cursor`) sees the same tasks."""
        n = len(self.tasks)
        out = []
        for k in range(start, start + count):
            epoch, pos = divmod(k, n)
            order = list(range(n))
            random.Random(self.config.seed * 1_000_003 + epoch).shuffle(order)
            out.append(self.tasks[order[pos]])
        return out

    def default_cursor(self, step: int) -> int:
        """Without dynamic filtering every step draws B prompts."""
        return step * self.config.prompts_per_step

    def keeps_group(self, rewards: list[float]) -> bool:
        """Dynamic filtering's test: the group's mean reward strictly inside the range."""
        lo, hi = self.config.dynamic_filtering_range
        return lo < sum(rewards) / len(rewards) < hi

    async def _rollouts(self, tasks: list[Any], round_idx: int = 0) -> list[list[Trajectory]]:
        g = self.config.group_size
        # Sampling seeds differ per (step, round): the first round's are those of a run
        # without dynamic filtering.
        seed_step = self.step + round_idx * 1_000_003
        flat = await asyncio.gather(
            *(self.rollout_fn(t, i, seed_step) for t in tasks for i in range(g))
        )
        return [list(flat[j * g : (j + 1) * g]) for j in range(len(tasks))]

    async def _wave(
        self, batches: list[list[Any]], first_round: int
    ) -> list[list[list[Trajectory]]]:
        return list(
            await asyncio.gather(
                *(self._rollouts(tasks, first_round + j) for j, tasks in enumerate(batches))
            )
        )

    def _draw_groups(self) -> tuple[list[list[Trajectory]], list[list[Trajectory]], int]:
        """(every group rolled out and used this step, the groups trained on, the number of
        groups rolled out speculatively and dropped)."""
        cfg = self.config
        b = cfg.prompts_per_step
        rounds = cfg.dynamic_filtering_max_rounds if cfg.dynamic_filtering else 1
        at_once = cfg.dynamic_filtering_parallel_rounds if cfg.dynamic_filtering else 1
        drawn: list[list[Trajectory]] = []
        kept: list[list[Trajectory]] = []
        round_idx = 0
        while round_idx < rounds:
            n = min(at_once, rounds - round_idx)
            batches = [self.tasks_at(self.cursor + j * b, b) for j in range(n)]
            waves = asyncio.run(self._wave(batches, round_idx))
            for j, groups in enumerate(waves):
                # The cursor moves past a round only once it is used: a dropped round's
                # prompts are the next step's, as they would be drawing one round at a time.
                self.cursor += len(batches[j])
                drawn += groups
                if not cfg.dynamic_filtering:
                    return drawn, groups, 0
                kept += [g for g in groups if self.keeps_group([t.reward or 0.0 for t in g])]
                if len(kept) >= b:
                    return drawn, kept, sum(len(w) for w in waves[j + 1 :])
            round_idx += n
        return drawn, kept, 0

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
                model,
                _to(batch, self.device),
                self.config.logits_on_trained_only,
                self.config.temperature,
            )
            out.append(logp)
        return out

    def _update(
        self,
        episodes: list[TokenizedEpisode],
        advantages: torch.Tensor,
        total_tokens: int,
        sums: dict[str, float],
    ) -> float:
        """`ppo_epochs` optimizer steps on the episodes; adds the loss statistics to `sums`
        and returns the last gradient norm."""
        cfg = self.config
        old_logp = self._logprobs(self.model, episodes)
        ref_logp = self._logprobs(self.ref_model, episodes) if self.ref_model else None
        self.model.train()
        grad_norm = 0.0
        for _ in range(cfg.ppo_epochs):
            self.optimizer.zero_grad(set_to_none=True)
            for k, idx in enumerate(self._micro_batches(len(episodes))):
                batch = _to(collate([episodes[i] for i in idx], self.pad_id), self.device)
                logp, mask = token_logprobs(
                    self.model, batch, cfg.logits_on_trained_only, cfg.temperature
                )
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
        return grad_norm

    def train_step(self) -> dict[str, float]:
        cfg = self.config
        t0 = time.perf_counter()
        self.model.eval()
        drawn, groups, dropped = self._draw_groups()
        t_rollout = time.perf_counter() - t0
        trajs = [t for group in groups for t in group]
        all_trajs = [t for group in drawn for t in group]
        drawn_rewards = torch.tensor([[t.reward or 0.0 for t in group] for group in drawn])

        episodes = [tokenize_episode(t.messages, self.tokenizer, cfg.max_len) for t in trajs]
        total_tokens = max(1, sum(e.num_trained_tokens for e in episodes))
        sums = {"loss": 0.0, "pg_loss": 0.0, "kl": 0.0, "clip_frac": 0.0}
        grad_norm = 0.0
        if groups:  # dynamic filtering may keep none: then there is no update this step
            rewards = torch.tensor([[t.reward or 0.0 for t in group] for group in groups])
            advantages = group_advantages(rewards).reshape(-1).to(self.device)  # [N]
            grad_norm = self._update(episodes, advantages, total_tokens, sums)
        self.step += 1

        # Rollout statistics over every group drawn (the policy as it is), training ones over
        # the groups trained on.
        correct = [t.correct if t.correct is not None else (t.reward or 0.0) > 0 for t in all_trajs]
        metrics = {
            **sums,
            "reward": float(drawn_rewards.mean()),
            "pass_rate": sum(correct) / len(correct),
            "groups_with_signal": float((drawn_rewards.std(dim=1) > 0).float().mean()),
            "groups_drawn": float(len(drawn)),
            "groups_trained": float(len(groups)),
            "groups_dropped": float(dropped),
            "turns": sum(t.num_turns for t in all_trajs) / len(all_trajs),
            "tool_calls": sum(len(t.tool_calls) for t in all_trajs) / len(all_trajs),
            "trained_tokens": float(total_tokens) / max(1, len(trajs)),
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
