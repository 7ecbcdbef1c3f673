"""What the tiny-policy training benches share (`bf16_autocast.py`, `copy_phase_loss.py`): the
demo profile's policy sizes, a policy with no pretraining, and one run of the copy phase alone
with the copy accuracies `build_tiny_policy` records."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from conf import load_settings
from literesearcher.tiny_models import TinySizes, build_tiny_policy

COPY_ACCURACY_KEYS = ("copy_phase_accuracy", "uniform_copy_accuracy_after_copy_phase",
                      "random_copy_accuracy_after_copy_phase")  # fmt: skip


def demo_sizes() -> TinySizes:
    """`conf/demo.yaml`'s `pipeline.policy_sizes` (not resolved for this CPU)."""
    settings = load_settings("demo", [f"data_root={tempfile.gettempdir()}/tiny-policy-bench"])
    return TinySizes.from_overrides(settings.pipeline.policy_sizes)


def fresh_policy(sizes: TinySizes, out_dir: Path) -> Path:
    """The policy of `sizes` with no pretraining at all (its initial weights)."""
    return build_tiny_policy(out_dir, seed=0,
                             sizes=replace(sizes, pretrain_steps=0, pretrain_copy_steps=0))  # fmt: skip


def copy_phase_stats(sizes: TinySizes, out_dir: Path, keys: tuple[str, ...]) -> dict[str, float]:
    """Seed 0's copy phase alone (`sizes` with no text steps): the recorded `keys` of
    `tiny_model.json`'s pretraining stats, and the build's `seconds`."""
    t0 = time.perf_counter()
    path = build_tiny_policy(out_dir, seed=0, sizes=replace(sizes, pretrain_steps=0))
    info = json.loads((path / "tiny_model.json").read_text())["pretrain"]
    return {k: info[k] for k in keys} | {"seconds": time.perf_counter() - t0}
