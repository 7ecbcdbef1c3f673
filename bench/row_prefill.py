"""One left-padded prefill vs each prompt prefilled alone, for the local backend's batches.

`LocalHFBackend` generates a batch of prompts in one `generate` call. Left padding gives the
prefill an attention mask, and with a mask CPU SDPA cannot skip the causal upper triangle;
`row_prefill` (the default on CPU) prefills each prompt alone and decodes the batch from the
joined caches. Side by side on the same batches (prompts cut from a finished demo's teacher
trajectories at a random assistant turn, the demo's policy; the two variants alternating so
drift hits both alike): seconds per `generate_batch_sync` call, and whether the tokens agree.

    OMP_NUM_THREADS=2 .venv/bin/python bench/row_prefill.py --data-root .literesearcher
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

from data_catalog import Catalog  # noqa: E402
from rl.backends.base import SamplingParams  # noqa: E402
from rl.backends.local_hf import LocalHFBackend  # noqa: E402
from rl.protocol import render_raw  # noqa: E402
from rl.teacher import read_sft_messages  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, required=True, help="a finished demo's data root")
    parser.add_argument("--batch", type=int, default=16, help="prompts per generate call")
    parser.add_argument("--calls", type=int, default=4, help="timed calls of each variant")
    parser.add_argument("--max-tokens", type=int, default=48, help="tokens generated per prompt")
    args = parser.parse_args()
    catalog = Catalog(args.data_root / "catalog")
    models, data = catalog.latest("tiny_models"), catalog.latest("sft_data")
    if models is None or data is None:
        parser.error(f"{args.data_root} holds no tiny_models or sft_data: run the demo first")
    backend = LocalHFBackend(catalog.path(models) / "tiny-policy", device="cpu")
    rng = random.Random(0)
    messages = read_sft_messages(catalog, data)
    rng.shuffle(messages)
    prompts = []
    for m in messages[: args.batch * args.calls]:
        cut = rng.choice([i for i, x in enumerate(m) if x["role"] == "assistant"])
        prompts.append(render_raw(m[:cut], True))
    params = [SamplingParams(max_tokens=args.max_tokens, temperature=0.0)] * args.batch
    lengths = [backend.count_tokens(p) for p in prompts]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); {len(prompts)} "
          f"prompts of {min(lengths)}-{max(lengths)} tokens, {args.batch} per call, "
          f"{args.max_tokens} new tokens each")  # fmt: skip
    seconds = {True: 0.0, False: 0.0}
    same = 0
    for start in range(0, len(prompts), args.batch):
        batch = prompts[start : start + args.batch]
        out = {}
        for row_prefill in (False, True):
            backend.row_prefill = row_prefill
            t0 = time.perf_counter()
            out[row_prefill] = backend.generate_batch_sync(batch, params)
            seconds[row_prefill] += time.perf_counter() - t0
        same += sum(a.token_ids == b.token_ids for a, b in zip(out[False], out[True], strict=True))
    calls = -(-len(prompts) // args.batch)
    print(f"one padded prefill     {seconds[False] / calls:6.2f} s/call")
    print(f"each prompt alone      {seconds[True] / calls:6.2f} s/call "
          f"({seconds[False] / seconds[True]:.2f}x)")  # fmt: skip
    print(f"same tokens: {same} of {len(prompts)} prompts")


if __name__ == "__main__":
    main()
