"""Held-out evaluation speed of a local policy by episodes in flight (`rl.concurrency`) and
batch limit (`llm.local_max_batch`), on a data root a demo run left behind.

Runs the first N held-out questions of the data root's `tasks_heldout` through the real
episode runner and an env_service over that data root's local web (greedily, or at
`--temperature`), once per configuration, in the order given (repeat the baseline to see the
drift; the first run also warms the caches). A configuration is IN_FLIGHT/MAX_BATCH, and
optionally /DECODER: `LocalHFBackend`'s decoder, "compact" (the default: finished rows leave
the batch) or "generate" (transformers' `generate`), and then /PREFIX_TOKENS: the compact
decoder's prefix store (`llm.local_prefix_cache_tokens`; 0 turns it off), and then /WORKERS:
generation worker processes (`llm.local_workers`; their start is timed too). Each run writes
its rollouts to a fresh temporary catalog, so nothing is found cached and the demo's catalog
is not touched. Prints
seconds, seconds per episode, the number of correct answers and, greedy, how many episodes
gave the same answer as the first configuration (greedy answers should depend neither on the
batch size nor on the decoder).

    .venv/bin/python bench/generation_batching.py --data-root .literesearcher \\
        --policy .literesearcher/catalog/checkpoints/<sft version> --tasks 96 8/8 8/8 16/16 32/32
    .venv/bin/python bench/generation_batching.py ... 32/32/generate 32/32/compact
    .venv/bin/python bench/generation_batching.py ... 16/16/compact/0 16/16/compact/65536
    .venv/bin/python bench/generation_batching.py ... 32/32/compact/65536/1 32/32/compact/65536/2
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyarrow.parquet as pq  # noqa: E402

from conf import Settings, load_settings  # noqa: E402
from data_catalog import Catalog  # noqa: E402
from env_service.client import EnvClient  # noqa: E402
from env_service.serving import ensure_env_service  # noqa: E402
from rl.backends.local_hf import DECODERS, LocalHFBackend  # noqa: E402
from rl.episode import AgentTask, EpisodeConfig  # noqa: E402
from rl.judge import judge_from_settings  # noqa: E402
from rl.rollout import rollout_async  # noqa: E402


async def timed_run(
    live: Settings,
    tasks: list[AgentTask],
    policy: Path,
    concurrency: int,
    max_batch: int,
    decoder: str,
    prefix_tokens: int,
    workers: int,
) -> tuple[float, list[bool], list[str | None]]:
    """(seconds, correct and answer per task, in task order)."""
    started = time.perf_counter()
    backend = LocalHFBackend(policy, device="cpu", max_batch=max_batch, decoder=decoder,
                             prefix_cache_tokens=prefix_tokens, workers=workers)  # fmt: skip
    catalog = Catalog(tempfile.mkdtemp(prefix="gen-batching-"))
    async with EnvClient.from_settings(live) as env:
        result = await rollout_async(
            tasks, backend, env, 1, catalog=catalog, config=EpisodeConfig.from_settings(live),
            count_tokens=backend.count_tokens, judge=judge_from_settings(live),
            policy_id=f"bench:{concurrency}/{max_batch}/{decoder}/{prefix_tokens}/{workers}",
            concurrency=concurrency,
            progress=False,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    await backend.aclose()
    rows = catalog.read("rollouts", result.rollouts.version).to_arrow_table().to_pylist()
    by_task = {r["task_id"]: r for r in rows}
    ordered = [by_task[t.id] for t in tasks]
    return seconds, [bool(r["correct"]) for r in ordered], [r["answer"] for r in ordered]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", type=Path, required=True)
    ap.add_argument("--policy", type=Path, required=True, help="an HF model directory")
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--tasks", type=int, default=96)
    ap.add_argument("--temperature", type=float, default=None,
                    help="sample at this temperature (default: the profile's rl.temperature)")  # fmt: skip
    ap.add_argument("configs", nargs="+",
                    help="IN_FLIGHT/MAX_BATCH[/DECODER[/PREFIX_TOKENS[/WORKERS]]], e.g. 8/8 "
                         "32/32/generate 32/32/compact/0 32/32/compact/65536/2")  # fmt: skip
    args = ap.parse_args()
    root = args.data_root.absolute()
    overrides = [f"data_root={root}", f"llm.local_policy_path={args.policy.absolute()}"]
    if args.temperature is not None:
        overrides.append(f"rl.temperature={args.temperature}")
    settings = load_settings(args.profile, overrides)
    configs = []
    for c in args.configs:
        parts = c.split("/")
        workers = parts.pop() if len(parts) == 5 else str(settings.llm.local_workers)
        prefix = parts.pop() if len(parts) == 4 else str(settings.llm.local_prefix_cache_tokens)
        decoder = parts.pop() if len(parts) == 3 else "compact"
        if (len(parts) != 2 or not all(x.isdigit() and int(x) > 0 for x in parts)
                or decoder not in DECODERS or not prefix.isdigit()
                or not workers.isdigit() or int(workers) < 1):  # fmt: skip
            ap.error(f"configuration {c!r}: expected IN_FLIGHT/MAX_BATCH[/DECODER[/PREFIX_TOKENS"
                     f"[/WORKERS]]] with DECODER one of {DECODERS}, e.g. 32/32/compact/0/2")  # fmt: skip
        configs.append((int(parts[0]), int(parts[1]), decoder, int(prefix), int(workers)))
    held = sorted((root / "catalog" / "tasks_heldout").glob("*/tasks.parquet"))
    if not held:
        sys.exit(f"no tasks_heldout under {root}/catalog: run the demo on this data root first")
    rows = pq.read_table(held[0]).to_pylist()[: args.tasks]
    tasks = [AgentTask.model_validate(r) for r in rows]
    print("| in flight / batch / decoder / prefix tokens / workers | seconds | s per episode "
          "| correct | same answer |\n|---|---:|---:|---:|---:|")  # fmt: skip
    first: list[str | None] | None = None
    with ensure_env_service(settings) as live:
        for concurrency, max_batch, decoder, prefix, workers in configs:
            seconds, correct, answers = asyncio.run(
                timed_run(
                    live, tasks, args.policy, concurrency, max_batch, decoder, prefix, workers
                )
            )
            first = answers if first is None else first
            same = sum(a == b for a, b in zip(answers, first, strict=True))
            print(f"| {concurrency} / {max_batch} / {decoder} / {prefix} / {workers} "
                  f"| {seconds:.1f} | {seconds / len(tasks):.3f} | {sum(correct)} / {len(tasks)} "
                  f"| {same} / {len(tasks)} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
