"""Held-out evaluation speed of a local policy by episodes in flight (`rl.concurrency`) and
batch limit (`llm.local_max_batch`), on a data root a demo run left behind.

Runs the first N held-out questions of the data root's `tasks_heldout` greedily through the
real episode runner and an env_service over that data root's local web, once per
configuration, in the order given (repeat the baseline to see the drift; the first run also
warms the caches). Each run writes its rollouts to a fresh temporary catalog, so nothing is
found cached and the demo's catalog is not touched. Prints seconds, seconds per episode and
the number of correct answers (greedy answers should not depend on the batch size).

    .venv/bin/python bench/generation_batching.py --data-root .literesearcher \\
        --policy .literesearcher/catalog/checkpoints/<sft version> --tasks 96 8/8 8/8 16/16 32/32
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
from rl.backends.local_hf import LocalHFBackend  # noqa: E402
from rl.episode import AgentTask, EpisodeConfig  # noqa: E402
from rl.judge import judge_from_settings  # noqa: E402
from rl.rollout import rollout_async  # noqa: E402


async def timed_run(
    live: Settings, tasks: list[AgentTask], policy: Path, concurrency: int, max_batch: int
) -> tuple[float, int]:
    backend = LocalHFBackend(policy, device="cpu", max_batch=max_batch)
    catalog = Catalog(tempfile.mkdtemp(prefix="gen-batching-"))
    async with EnvClient.from_settings(live) as env:
        started = time.perf_counter()
        result = await rollout_async(
            tasks, backend, env, 1, catalog=catalog, config=EpisodeConfig.from_settings(live),
            count_tokens=backend.count_tokens, judge=judge_from_settings(live),
            policy_id=f"bench:{concurrency}/{max_batch}", concurrency=concurrency,
            progress=False,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    rows = catalog.read("rollouts", result.rollouts.version).to_arrow_table()
    return seconds, sum(bool(c) for c in rows["correct"].to_pylist())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", type=Path, required=True)
    ap.add_argument("--policy", type=Path, required=True, help="an HF model directory")
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--tasks", type=int, default=96)
    ap.add_argument("configs", nargs="+", help="IN_FLIGHT/MAX_BATCH, e.g. 8/8 32/32")
    args = ap.parse_args()
    configs = []
    for c in args.configs:
        parts = c.split("/")
        if len(parts) != 2 or not all(x.isdigit() and int(x) > 0 for x in parts):
            ap.error(f"configuration {c!r}: expected IN_FLIGHT/MAX_BATCH, e.g. 32/32")
        configs.append((int(parts[0]), int(parts[1])))
    root = args.data_root.absolute()
    settings = load_settings(args.profile, [f"data_root={root}",
                                            f"llm.local_policy_path={args.policy.absolute()}"])  # fmt: skip
    held = sorted((root / "catalog" / "tasks_heldout").glob("*/tasks.parquet"))
    if not held:
        sys.exit(f"no tasks_heldout under {root}/catalog: run the demo on this data root first")
    rows = pq.read_table(held[0]).to_pylist()[: args.tasks]
    tasks = [AgentTask.model_validate(r) for r in rows]
    print("| in flight / batch | seconds | s per episode | correct |\n|---|---:|---:|---:|")
    with ensure_env_service(settings) as live:
        for concurrency, max_batch in configs:
            seconds, correct = asyncio.run(
                timed_run(live, tasks, args.policy, concurrency, max_batch)
            )
            print(f"| {concurrency} / {max_batch} | {seconds:.1f} | {seconds / len(tasks):.3f} "
                  f"| {correct} / {len(tasks)} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
