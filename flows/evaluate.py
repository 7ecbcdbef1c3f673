"""The evaluation flow: benchmarks x k samples of one checkpoint (or the configured endpoint).

Items come from local benchmark files (`tasks.evaluation.loaders`; nothing is downloaded).
Episodes run through `rl.rollout` against the configured env_service and are written part by
part, so a re-run resumes; the aggregated metrics and the Markdown report become an
`eval_reports` version, and one MLflow run per checkpoint x benchmark set carries the scores.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prefect import flow

from conf import Settings, load_settings
from data_catalog import Catalog, Manifest
from tasks.evaluation.loaders import EvalItem, load_benchmarks
from tasks.evaluation.run import run_benchmarks, summarize, write_eval_report
from tasks.evaluation.tracking import log_evaluation


def resolve_checkpoint(
    catalog: Catalog, checkpoint: str | None
) -> tuple[Manifest | None, str | None]:
    """(catalog manifest or None, HF model dir or None for the configured policy)."""
    if checkpoint is None:
        return None, None
    manifest = catalog.manifest("checkpoints", checkpoint, missing_ok=True)
    if manifest is None:
        return None, checkpoint  # a plain HF model directory
    root = catalog.path(manifest)
    if (root / "config.json").is_file():
        return manifest, str(root)
    dirs = sorted(p.parent for p in root.rglob("config.json"))
    if not dirs:
        raise FileNotFoundError(f"checkpoint {checkpoint} holds no HF model (no config.json)")
    return manifest, str(dirs[-1])


async def _rollouts(
    settings: Settings, items: dict[str, list[EvalItem]], policy: str | None, k: int
) -> tuple[dict[str, Manifest], str]:
    from env_service.client import EnvClient
    from rl.episode import EpisodeConfig
    from rl.factory import policy_backend, token_counter
    from rl.judge import judge_from_settings

    backend, policy_id = policy_backend(settings, policy)
    judge = judge_from_settings(settings)
    try:
        async with EnvClient.from_settings(settings) as env:
            manifests = await run_benchmarks(
                items, backend, env, k,
                catalog=Catalog.from_settings(settings),
                config=EpisodeConfig.from_settings(settings),
                count_tokens=token_counter(settings, backend), judge=judge,
                policy_id=policy_id, concurrency=settings.rl.concurrency,
                part_size=settings.rl.part_size, seed=settings.seed,
            )  # fmt: skip
    finally:
        await backend.aclose()
        if judge.backend is not None:
            await judge.backend.aclose()
    return manifests, policy_id


@flow(name="evaluate", log_prints=True)
def evaluate(
    benchmarks: dict[str, str],
    k: int = 1,
    checkpoint: str | None = None,
    curriculum: str = "",
    stage: str = "",
    profile: str | None = None,
    overrides: list[str] | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`benchmarks`: {benchmark name: local file}; `checkpoint`: a `checkpoints` version or an
    HF model dir (None: llm.endpoints.policy, else llm.local_policy_path); `tags`: more tags
    for the MLflow run (the nightly eval adds the registered model version)."""
    if not benchmarks:
        raise ValueError("no benchmarks given: pass {name: local file path}")
    settings = load_settings(profile, overrides or [])
    catalog = Catalog.from_settings(settings)
    loaded = load_benchmarks(benchmarks)
    items = {name: r.items for name, r in loaded.items()}
    for name, r in loaded.items():
        print(f"{name}: {len(r.items)} questions" + (f", dropped {r.dropped}" if r.dropped else ""))
    ck_manifest, policy = resolve_checkpoint(catalog, checkpoint)
    rollouts, policy_id = asyncio.run(_rollouts(settings, items, policy, k))
    groups = summarize(catalog, rollouts, items, k)
    params = {"k": k, "policy": policy_id, "benchmarks": sorted(benchmarks)}
    label = ck_manifest.version if ck_manifest else policy_id
    report = write_eval_report(
        catalog, groups, list(rollouts.values()), checkpoint=ck_manifest, params=params,
        context={"checkpoint": label, "curriculum": curriculum or "-", "stage": stage or "-"},
    )  # fmt: skip
    run_id = log_evaluation(
        settings, groups, report=report,
        report_dir=catalog.path(report) if catalog.is_local else None,
        rollouts=rollouts, checkpoint=label, curriculum=curriculum, stage=stage, params=params,
        tags=tags,
    )  # fmt: skip
    return {
        "eval_report": report.version,
        "report": str(Path(report.location) / "report.md"),
        "metrics": {f"{g.benchmark}/{g.capability}": g.metrics() for g in groups},
        "mlflow_run_id": run_id,
    }
