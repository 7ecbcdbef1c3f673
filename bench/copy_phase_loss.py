"""The copy phase's loss on every position vs on the copied tokens only, side by side in one run.

`pipeline.policy_sizes.pretrain_copy_loss`: "all" trains the copy rows (random ids, one run
written twice) as a language model, on every next token; "copied" only on the run's second
writing, the one part of such a row a model can predict, so the LM head runs on ~1/4 of the
positions.

1. Step time at each length of the demo's copy curriculum (`copy_schedule`), fresh weights,
   forward + backward + AdamW, alternating the two losses so drift hits both alike.
2. With `--copy-phase`: the demo's whole copy phase (no text steps) with each loss, its
   seconds and the copy accuracies `build_tiny_policy` records: does the induction head form
   as well (`copy_phase_accuracy` on held-out copy rows, `uniform_copy_accuracy_*` on random
   runs in text)?

    OMP_NUM_THREADS=2 .venv/bin/python bench/copy_phase_loss.py --steps 5 [--copy-phase]
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
from literesearcher.tiny_models import (  # noqa: E402
    COPY_LOSSES,
    TinySizes,
    _lm_step,
    copy_schedule,
    ordinary_ids,
    random_copy_batch,
)


def step_times(sizes: TinySizes, steps: int, work: Path) -> dict[int, dict[str, float]]:
    """Row length -> loss -> mean seconds per copy-phase step."""
    base = fresh_policy(sizes, work / "policy")
    model = AutoModelForCausalLM.from_pretrained(base)
    from transformers import AutoTokenizer

    vocab = ordinary_ids(AutoTokenizer.from_pretrained(base))
    bf16 = bool(sizes.pretrain_bf16)
    out: dict[int, dict[str, float]] = {}
    for seq_len, _ in copy_schedule(sizes):
        gen = torch.Generator().manual_seed(seq_len)
        rows, copied = random_copy_batch(vocab, sizes.pretrain_copy_tokens // seq_len, seq_len,
                                         gen)  # fmt: skip
        runs = {}
        for loss in COPY_LOSSES:
            m = copy.deepcopy(model)
            params = list(m.parameters())
            opt = torch.optim.AdamW(params, lr=1e-3)
            runs[loss] = (m, params, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0))
        targets = {"all": None, "copied": copied}
        for loss, run in runs.items():  # warm-up (oneDNN picks its kernels on the first calls)
            _lm_step(*run, rows, bf16, targets[loss])
        seconds = dict.fromkeys(runs, 0.0)
        for _ in range(steps):
            for loss, run in runs.items():
                t0 = time.perf_counter()
                _lm_step(*run, rows, bf16, targets[loss])
                seconds[loss] += time.perf_counter() - t0
        out[seq_len] = {loss: s / steps for loss, s in seconds.items()}
    return out


def copy_phase(sizes: TinySizes, work: Path) -> dict[str, dict[str, float]]:
    return {loss: copy_phase_stats(replace(sizes, pretrain_copy_loss=loss), work / f"copy-{loss}",
                                   COPY_ACCURACY_KEYS)
            for loss in COPY_LOSSES}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps of each loss per length")
    parser.add_argument("--copy-phase", action="store_true", help="also run the whole copy phase")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    sizes = demo_sizes().resolved()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{sizes.pretrain_copy_tokens} tokens per step, "
          f"{'bf16 autocast' if sizes.pretrain_bf16 else 'fp32'}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        total = dict.fromkeys(COPY_LOSSES, 0.0)
        print(f"{'row length':>10} {'steps':>6} {'all s/step':>11} {'copied s/step':>14}")
        schedule = dict(copy_schedule(sizes))
        for seq_len, times in step_times(sizes, args.steps, Path(tmp)).items():
            print(f"{seq_len:>10} {schedule[seq_len]:>6} {times['all']:>11.3f} "
                  f"{times['copied']:>14.3f}")  # fmt: skip
            for loss in COPY_LOSSES:
                total[loss] += times[loss] * schedule[seq_len]
        print(f"copy phase, estimated from these: all {total['all']:.0f} s, "
              f"copied {total['copied']:.0f} s ({total['all'] / total['copied']:.2f}x)")  # fmt: skip
        if args.copy_phase:
            for loss, stats in copy_phase(sizes, Path(tmp)).items():
                print(loss, " ".join(f"{k}={v:.3f}" for k, v in stats.items()))


if __name__ == "__main__":
    main()
