"""bf16 autocast vs fp32 for the demo policy's CPU training, side by side in one run.

1. Step time: the demo's tiny policy (`conf/demo.yaml` `pipeline.policy_sizes`, fresh weights)
   on one pretraining-shaped batch (`pretrain_batch` rows of `pretrain_seq_len` random ids),
   forward + backward + AdamW, alternating fp32 and bf16 steps so drift hits both alike.
2. With `--copy-phase`: the copy phase alone (`pretrain_copy_steps` in its length curriculum,
   no text steps) in fp32 and in bf16, and the copy accuracies `build_tiny_policy` records:
   does the induction head form the same way under bf16 (about 8 minutes of one core each)?

    OMP_NUM_THREADS=1 .venv/bin/python bench/bf16_autocast.py --steps 6 [--copy-phase]
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

from bench.tiny_policy_bench import (  # noqa: E402
    COPY_ACCURACY_KEYS,
    copy_phase_stats,
    demo_sizes,
    fresh_policy,
)
from literesearcher.tiny_models import TinySizes, _lm_step  # noqa: E402

COPY_KEYS = (*COPY_ACCURACY_KEYS, "pretrain_copy_loss")


def step_times(sizes: TinySizes, steps: int, work: Path) -> dict[bool, float]:
    """Mean seconds per training step, fp32 (False) and bf16 autocast (True)."""
    model = AutoModelForCausalLM.from_pretrained(fresh_policy(sizes, work / "policy"))
    vocab = int(model.config.vocab_size)
    rows = torch.randint(0, vocab, (sizes.pretrain_batch, sizes.pretrain_seq_len),
                         generator=torch.Generator().manual_seed(0))  # fmt: skip
    runs = {}
    for bf16 in (False, True):
        m = copy.deepcopy(model)
        params = list(m.parameters())
        opt = torch.optim.AdamW(params, lr=1e-3)
        runs[bf16] = (m, params, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0))
        for _ in range(2):  # warm-up (oneDNN picks its kernels on the first calls)
            _lm_step(*runs[bf16], rows, bf16)
    seconds = dict.fromkeys(runs, 0.0)
    for _ in range(steps):
        for bf16, run in runs.items():
            t0 = time.perf_counter()
            _lm_step(*run, rows, bf16)
            seconds[bf16] += time.perf_counter() - t0
    return {bf16: s / steps for bf16, s in seconds.items()}


def copy_phase(sizes: TinySizes, work: Path) -> dict[bool, dict[str, float]]:
    return {bf16: copy_phase_stats(replace(sizes, pretrain_bf16=int(bf16)),
                                   work / f"copy-{int(bf16)}", COPY_KEYS)
            for bf16 in (False, True)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps of each precision")
    parser.add_argument("--copy-phase", action="store_true", help="also run the copy phase")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    sizes = demo_sizes()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{sizes.pretrain_batch} x {sizes.pretrain_seq_len} tokens per step")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        times = step_times(sizes, args.steps, Path(tmp))
        print(f"step seconds: fp32 {times[False]:.3f}, bf16 autocast {times[True]:.3f} "
              f"({times[False] / times[True]:.2f}x)")  # fmt: skip
        if args.copy_phase:
            for bf16, stats in copy_phase(sizes, Path(tmp)).items():
                name = "bf16" if bf16 else "fp32"
                print(name, " ".join(f"{k}={v:.3f}" for k, v in stats.items()))


if __name__ == "__main__":
    main()
