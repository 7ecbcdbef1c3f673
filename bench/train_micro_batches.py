"""Padded micro-batches vs one episode per forward pass, for the local SFT/GRPO loops' steps.

A step's loss is a sum over its micro-batches (`rl.trainer.sft`, `rl.trainer.local_grpo`), so
the micro-batch size changes no gradient, only the work: `collate` right-pads a micro-batch to
its longest episode and passes the padding as an attention mask, while a single episode needs
no mask and runs plain causal attention.

Side by side on the same episodes (the teacher trajectories of a finished demo's newest
`sft_data` version, the demo's policy from its `tiny_models`), alternating the variants so
drift hits all alike: forward + backward of `token_logprobs` (the SFT loss) per step of
`--batch` episodes, (a) one padded micro-batch, (b) one episode at a time; and the summed
gradients' largest difference, to show the two compute the same step.

    OMP_NUM_THREADS=2 .venv/bin/python bench/train_micro_batches.py --data-root .literesearcher
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from data_catalog import Catalog  # noqa: E402
from literesearcher.tiny_models import POLICY_DIR  # noqa: E402
from rl.teacher import read_sft_messages  # noqa: E402
from rl.trainer.sequences import TokenizedEpisode, collate, token_logprobs, tokenize_episode  # noqa: E402


def step(model: torch.nn.Module, episodes: list[TokenizedEpisode], pad_id: int, rows: int) -> None:
    """Forward + backward of one SFT step's loss in micro-batches of `rows` episodes."""
    total = sum(e.num_trained_tokens for e in episodes)
    for start in range(0, len(episodes), rows):
        batch = collate(episodes[start : start + rows], pad_id)
        logp, mask = token_logprobs(model, batch)
        (-(logp * mask).sum() / total).backward()


def grads(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, required=True, help="a finished demo's data root")
    parser.add_argument("--batch", type=int, default=8, help="episodes per step (the demo's 8)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps of each variant")
    args = parser.parse_args()
    catalog = Catalog(args.data_root / "catalog")
    models, data = catalog.latest("tiny_models"), catalog.latest("sft_data")
    if models is None or data is None:
        parser.error(f"{args.data_root} holds no tiny_models or sft_data: run the demo first")
    policy = catalog.path(models) / POLICY_DIR
    tokenizer = AutoTokenizer.from_pretrained(policy)
    model = AutoModelForCausalLM.from_pretrained(policy)
    messages = read_sft_messages(catalog, data)
    random.Random(0).shuffle(messages)
    episodes = [tokenize_episode(m, tokenizer, 2048) for m in messages[: args.batch * args.steps]]
    pad_id = tokenizer.pad_token_id
    lengths = [len(e) for e in episodes]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), attention "
          f"{model.config._attn_implementation}; {len(episodes)} episodes of {min(lengths)}-"
          f"{max(lengths)} tokens (mean {sum(lengths) / len(lengths):.0f})")  # fmt: skip
    variants = {f"padded micro-batch of {args.batch}": args.batch, "one episode at a time": 1}
    seconds = dict.fromkeys(variants, 0.0)
    diff = 0.0
    for start in range(0, len(episodes), args.batch):
        batch = episodes[start : start + args.batch]
        got = []
        for name, rows in variants.items():
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            step(model, batch, pad_id, rows)
            seconds[name] += time.perf_counter() - t0
            got.append(grads(model))
        diff = max(diff, *(float((a - b).abs().max()) for a, b in zip(*got, strict=True)))
    steps = len(episodes) // args.batch
    base = seconds[next(iter(variants))]
    for name, s in seconds.items():
        print(f"{name:<28} {s / steps:7.3f} s/step  ({base / s:.2f}x)")
    print(f"largest gradient difference between the variants: {diff:.2e}")


if __name__ == "__main__":
    main()
