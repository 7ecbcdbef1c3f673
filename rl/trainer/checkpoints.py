"""HF-format training checkpoints with everything needed to resume exactly.

    <root>/step-000012/
        config.json, model.safetensors, tokenizer files   # loadable by from_pretrained
        optimizer.pt                                      # AdamW state
        rng.pt                                            # torch / python / numpy RNG states
        trainer_state.json                                # TrainerState (step, metrics, config)

A checkpoint is written to a temp dir and renamed into place, so a directory named `step-*`
with a `trainer_state.json` is always complete; a killed save leaves only `.tmp-*` behind.

`CheckpointedLoop` is what both local trainers (GRPO, SFT) share: open a model (or resume
from the newest checkpoint under `<output_dir>/checkpoints`), save, and run to a step count.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, Field

STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"
RNG_FILE = "rng.pt"


class TrainerState(BaseModel):
    step: int
    kind: str  # "grpo" | "sft"
    config: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    # Data items consumed so far (GRPO: prompts drawn, which dynamic filtering makes vary per
    # step; 0 for SFT, whose position follows from the step); None in checkpoints written
    # before it was recorded.
    cursor: int | None = None


def checkpoint_dir(root: Path, step: int) -> Path:
    return root / f"step-{step:06d}"


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete checkpoint under `root`, or None."""
    if not root.is_dir():
        return None
    done = [p for p in root.glob("step-*") if (p / STATE_FILE).is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


def rng_states() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])


def save_checkpoint(
    root: Path,
    state: TrainerState,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    keep_last: int = 2,
) -> Path:
    """Write a checkpoint atomically and prune all but the newest `keep_last`."""
    root.mkdir(parents=True, exist_ok=True)
    final = checkpoint_dir(root, state.step)
    tmp = root / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    torch.save(optimizer.state_dict(), tmp / OPTIMIZER_FILE)
    torch.save(rng_states(), tmp / RNG_FILE)
    (tmp / STATE_FILE).write_text(state.model_dump_json(indent=2), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    older = sorted(
        (p for p in root.glob("step-*") if (p / STATE_FILE).is_file() and p != final),
        key=lambda p: int(p.name.split("-")[1]),
    )
    for stale in older[: max(0, len(older) - (keep_last - 1))]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def load_training_state(path: Path, optimizer: torch.optim.Optimizer) -> TrainerState:
    """Restore optimizer and RNG states from a checkpoint (the model is loaded from `path` by
    the caller with `from_pretrained`)."""
    state = TrainerState.model_validate(json.loads((path / STATE_FILE).read_text("utf-8")))
    optimizer.load_state_dict(torch.load(path / OPTIMIZER_FILE, weights_only=True))
    restore_rng_states(torch.load(path / RNG_FILE, weights_only=False))
    return state


def load_causal_lm(path: str | Path, device: str) -> Any:
    """An HF causal LM in float32 on `device` (fp32 keeps resumed steps bit-comparable)."""
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return model.to(device)


MetricsFn = Callable[[int, dict[str, float]], None]


class CheckpointedLoop:
    """A training loop over HF checkpoints. Subclasses call `open_model` in `__init__`, define
    `train_step` (which advances `self.step`) and `state_config`, and get `save` and `run_to`.
    """

    kind = ""
    ckpt_root: Path
    model: Any
    tokenizer: Any
    optimizer: torch.optim.Optimizer
    step: int
    cursor: int
    resumed_from: Path | None
    pad_id: int
    last_metrics: dict[str, float]
    save_every: int
    keep_last: int

    def open_model(
        self,
        model_path: str | Path,
        output_dir: str | Path,
        *,
        device: str,
        seed: int,
        lr: float,
        weight_decay: float,
        save_every: int,
        keep_last: int,
    ) -> None:
        """Load `model_path`, or the newest checkpoint under `<output_dir>/checkpoints` with
        its optimizer and RNG states, so the next step is the one an unbroken run would take."""
        from transformers import AutoTokenizer

        self.ckpt_root = Path(output_dir) / "checkpoints"
        self.save_every, self.keep_last = save_every, keep_last
        resume_from = latest_checkpoint(self.ckpt_root)
        source = resume_from or Path(model_path)
        if resume_from is None:
            torch.manual_seed(seed)
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.model = load_causal_lm(source, device)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=lr, weight_decay=weight_decay
        )
        self.step = 0
        self.cursor = 0
        self.resumed_from = resume_from
        if resume_from is not None:
            state = load_training_state(resume_from, self.optimizer)
            self.step = state.step
            self.cursor = self.default_cursor(state.step) if state.cursor is None else state.cursor
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.tokenizer.eos_token_id or 0)
        self.last_metrics = {}

    def train_step(self) -> dict[str, float]:
        raise NotImplementedError

    def default_cursor(self, step: int) -> int:
        """The cursor after `step` steps for a checkpoint that did not record one."""
        return 0

    def state_config(self) -> dict[str, Any]:
        """What `trainer_state.json` records as the run's configuration."""
        return {}

    def save(self) -> Path:
        state = TrainerState(
            step=self.step,
            kind=self.kind,
            config=self.state_config(),
            metrics=self.last_metrics,
            cursor=self.cursor,
        )
        return save_checkpoint(
            self.ckpt_root, state, self.model, self.tokenizer, self.optimizer, self.keep_last
        )

    def run_to(self, end: int) -> Path | None:
        """Train until `self.step == end`, saving every `save_every` steps and at the end;
        return the newest checkpoint."""
        saved_at = self.step if self.resumed_from is not None else -1
        while self.step < end:
            self.train_step()
            if self.step % self.save_every == 0:
                self.save()
                saved_at = self.step
        if saved_at != self.step:
            self.save()
        return latest_checkpoint(self.ckpt_root)
