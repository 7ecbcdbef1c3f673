"""The SFT cold start: next-token cross-entropy on the model's own (assistant) tokens of
judge-verified teacher trajectories, the same sequence/loss-mask builder as GRPO.

    loss = -sum_t(m_t * log p(x_{t+1} | x_<=t)) / sum_t(m_t)      # token mean over the batch

Checkpoints are HF format with optimizer and RNG states; a new trainer over the same output
dir resumes from the newest one.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from rl.backends.local_hf import resolve_device, warn_unless_native_bf16
from rl.protocol import Message
from rl.trainer.checkpoints import CheckpointedLoop, MetricsFn
from rl.trainer.sequences import TokenizedEpisode, collate, token_logprobs, tokenize_episode


@dataclass
class SFTLoopConfig:
    epochs: int = 2
    batch_size: int = 8  # sequences per optimizer step
    micro_batch_size: int = 4
    lr: float = 1e-4
    weight_decay: float = 0.0
    max_norm: float = 1.0
    max_len: int = 2048
    save_every: int = 50
    keep_last: int = 2
    seed: int = 0
    device: str = "cpu"
    bf16_autocast: bool = False  # forward passes under bf16 autocast; weights stay fp32


class LocalSFTTrainer(CheckpointedLoop):
    kind = "sft"

    def __init__(
        self,
        model_path: str | Path,
        output_dir: str | Path,
        config: SFTLoopConfig,
        trajectories: Sequence[list[Message]],
        on_metrics: MetricsFn | None = None,
    ) -> None:
        if not trajectories:
            raise ValueError("no trajectories to train on")
        self.config = config
        self.on_metrics = on_metrics
        self.device = resolve_device(config.device)
        if config.bf16_autocast:
            warn_unless_native_bf16(self.device, "curriculum.sft.bf16_autocast")
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
        self.episodes: list[TokenizedEpisode] = [
            tokenize_episode(t, self.tokenizer, config.max_len) for t in trajectories
        ]
        self.steps_per_epoch = math.ceil(len(self.episodes) / config.batch_size)
        self.total_steps = config.epochs * self.steps_per_epoch

    def indices_for_step(self, step: int) -> list[int]:
        """A seeded shuffle per epoch, so the order depends only on (seed, step)."""
        epoch, k = divmod(step, self.steps_per_epoch)
        order = list(range(len(self.episodes)))
        random.Random(self.config.seed * 1_000_003 + epoch).shuffle(order)
        b = self.config.batch_size
        return order[k * b : (k + 1) * b]

    def train_step(self) -> dict[str, float]:
        t0 = time.perf_counter()
        idx = self.indices_for_step(self.step)
        total_tokens = max(1, sum(self.episodes[i].num_trained_tokens for i in idx))
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum = 0.0
        m = self.config.micro_batch_size
        for start in range(0, len(idx), m):
            batch = collate([self.episodes[i] for i in idx[start : start + m]], self.pad_id)
            batch.input_ids = batch.input_ids.to(self.device)
            batch.attention_mask = batch.attention_mask.to(self.device)
            batch.loss_mask = batch.loss_mask.to(self.device)
            with torch.autocast(torch.device(self.device).type, torch.bfloat16,
                                enabled=self.config.bf16_autocast):  # fmt: skip
                logp, mask = token_logprobs(self.model, batch)
            loss = -(logp * mask).sum() / total_tokens
            loss.backward()
            loss_sum += float(loss.detach())
        grad_norm = float(
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_norm)
        )
        self.optimizer.step()
        self.step += 1
        self.last_metrics = {
            "loss": loss_sum,
            "grad_norm": grad_norm,
            "trained_tokens": float(total_tokens),
            "epoch": (self.step - 1) / self.steps_per_epoch,
            "step_s": time.perf_counter() - t0,
        }
        if self.on_metrics is not None:
            self.on_metrics(self.step, self.last_metrics)
        return self.last_metrics

    def state_config(self) -> dict[str, Any]:
        return asdict(self.config)

    def train(self) -> Path | None:
        """Run to the end of the last epoch; return the newest checkpoint."""
        return self.run_to(self.total_steps)
