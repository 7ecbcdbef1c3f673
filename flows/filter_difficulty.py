"""Flow `filter_difficulty`: tasks_filtered -> held-out split -> pass@k rollouts of the current
policy in env_service -> pass rates -> partially solvable tasks, bucketed -> one
`curriculum_stage` dataset per configured stage.

The held-out share of tasks (by hash of task id) is set aside before any rollout and written
as `tasks_heldout` (TASK_SCHEMA, `tasks.parquet`: the evaluation loaders' `heldout` format).
Rollouts use the resumable `rollout` task inside `ensure_env_service`, so a local run needs no
server started by hand. Every output is a catalog version found again by its key: a re-run
with the same inputs writes nothing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from prefect import flow

from conf import Settings, load_settings
from data_catalog import Catalog, Manifest
from env_service.serving import ensure_env_service
from rl.rollout import RolloutResult, rollout
from tasks.common import catalog_task, code_version
from tasks.curriculum import difficulty, stage_data
from tasks.curriculum.difficulty import Classified, classify, is_heldout, select_stage
from tasks.synthesis.schema import TaskRecord, from_table, to_table
from tasks.tracking import StageRun, Tracker

HELDOUT_FILE = "tasks.parquet"


def read_tasks(catalog: Catalog, manifest: Manifest) -> list[TaskRecord]:
    return list(from_table(catalog.read(manifest.name, manifest.version).to_arrow_table()))


def training_pool(
    catalog: Catalog, manifest: Manifest, fraction: float, seed: int
) -> list[TaskRecord]:
    """The tasks of `manifest` that are not held out: what rollouts, stages and the teacher
    may train on (the complement of `split_heldout`)."""
    return [t for t in read_tasks(catalog, manifest) if not is_heldout(t.id, fraction, seed)]


@catalog_task
def split_heldout(catalog_root: str, tasks: Manifest, fraction: float, seed: int) -> Manifest:
    """`tasks_heldout`: the tasks whose id hashes below `fraction` (never rolled out)."""
    catalog = Catalog(catalog_root)
    params = {"fraction": fraction, "seed": seed}
    version = code_version(is_heldout)
    found = catalog.find("tasks_heldout", catalog.key("tasks_heldout", [tasks], params, version))
    if found is not None:
        return found
    held = [t for t in read_tasks(catalog, tasks) if is_heldout(t.id, fraction, seed)]
    with catalog.create("tasks_heldout", [tasks], params, version) as w:
        w.write_table(to_table(held), HELDOUT_FILE)
        w.stats["per_capability"] = dict(sorted(Counter(t.capability for t in held).items()))
    assert w.manifest is not None
    return w.manifest


def classify_rates(
    catalog: Catalog, pool: list[TaskRecord], rates: Manifest, options: dict[str, Any]
) -> tuple[Classified, list[dict[str, Any]]]:
    rows = catalog.read("pass_rates", rates.version).to_arrow_table().to_pylist()
    found = classify(
        rows,
        {t.id: t.capability for t in pool},
        token_edges=options["token_bins"],
        pass_edges=options["pass_rate_bins"],
        min_correct=options.get("min_correct", 1),
        max_correct=options.get("max_correct"),
    )
    return found, rows


@catalog_task
def build_stage(
    catalog_root: str,
    tasks: Manifest,
    rates: Manifest,
    stage: str,
    selection: dict[str, Any],
    options: dict[str, Any],
) -> Manifest:
    """One `curriculum_stage` version: the stage's selection over the partially solvable
    tasks of the training pool. `options`: the difficulty section and the prompts' date."""
    from conf.settings import StageSelection

    catalog = Catalog(catalog_root)
    params = {"stage": stage, "select": selection, **options}
    found = catalog.find(stage_data.DATASET, stage_data.stage_key([tasks, rates], params))
    if found is not None:
        return found
    pool = training_pool(catalog, tasks, options["heldout_fraction"], options["seed"])
    classified, _ = classify_rates(catalog, pool, rates, options)
    chosen = select_stage(
        classified.kept, StageSelection.model_validate(selection), seed=options["seed"], stage=stage
    )
    return stage_data.write_stage(
        catalog, chosen, {t.id: t for t in pool},
        date=options["date"], inputs=[tasks, rates], params=params,
    )  # fmt: skip


def _metric_name(text: str) -> str:
    """MLflow metric names allow [\\w .:/-]: bucket labels carry '|', '<' and '>='."""
    return text.replace("|", "/").replace(">=", "ge").replace("<", "lt")


def _log_difficulty(
    run: StageRun, pool: list[TaskRecord], found: Classified, rows: list[dict[str, Any]], k: int
) -> dict[str, int]:
    metrics: dict[str, float] = {"pool": len(pool), "kept": len(found.kept)}
    metrics.update({f"pool.{c}": n for c, n in Counter(t.capability for t in pool).items()})
    metrics.update({f"kept.{c}": n for c, n in Counter(t.capability for t in found.kept).items()})
    for reason, per_cap in found.dropped.items():
        metrics[f"dropped.{reason}"] = sum(per_cap.values())
        metrics.update({f"dropped.{reason}.{c}": n for c, n in per_cap.items()})
    buckets = difficulty.bucket_sizes(found.kept)
    metrics.update({f"bucket.{_metric_name(b)}": n for b, n in buckets.items()})
    run.log_metrics(metrics)
    hist = difficulty.pass_count_histogram(rows, k)
    client = run.tracker.client
    client.log_dict(run.run_id, hist, "pass_rate_histogram.json")
    title = f"tasks by correct rollouts out of {k} (kept: 1..{k - 1})"
    client.log_text(run.run_id, difficulty.svg_bar_chart(hist, title), "pass_rate_histogram.svg")
    client.log_dict(run.run_id, buckets, "buckets.json")
    return buckets


def _run_rollouts(
    settings: Settings, pool: list[TaskRecord], policy: str | None, k: int, inputs: list[Manifest]
) -> RolloutResult:
    tasks = [stage_data.agent_task(t) for t in pool]
    temperature = settings.curriculum.difficulty.temperature
    if temperature is not None:  # pass@k needs sampling even where evaluation is greedy
        settings = settings.model_copy(
            update={"rl": settings.rl.model_copy(update={"temperature": temperature})}
        )
    with ensure_env_service(settings) as live:
        # The task run (with its retries, each resuming from the committed parts).
        result: RolloutResult = asyncio.run(rollout(tasks, policy, k, settings=live, inputs=inputs))
    return result


@flow(name="filter_difficulty", log_prints=True)
def filter_difficulty(
    profile: str | None = None,
    overrides: list[str] | None = None,
    tasks_version: str | None = None,
    policy: str | None = None,
    k: int | None = None,
) -> dict[str, Any]:
    """Pass@k-filter `tasks_filtered` (`tasks_version`; None: the newest) with `policy` (an HF
    dir or a `checkpoints` version; None: the configured policy) and write the stage datasets."""
    from flows.evaluate import resolve_checkpoint

    settings = load_settings(profile, overrides or [])
    cfg = settings.curriculum.difficulty
    k = k or cfg.k or settings.rl.k
    if k < 2:
        raise ValueError(f"k must be at least 2 to tell partially solvable tasks apart, got {k}")
    catalog = Catalog.from_settings(settings)
    catalog_root = settings.uri(settings.catalog.root)
    tasks = (
        catalog.manifest("tasks_filtered", tasks_version)
        if tasks_version
        else catalog.latest("tasks_filtered")
    )
    if tasks is None:
        raise ValueError("no tasks_filtered version: run `literesearcher synthesize` first")
    checkpoint, policy_dir = resolve_checkpoint(catalog, policy)
    with Tracker.start(
        settings, "filter_difficulty", tags={"flow": "filter_difficulty"}
    ) as tracker:
        with tracker.stage("heldout_split") as run:
            heldout = split_heldout(catalog_root, tasks, cfg.heldout_fraction, cfg.seed)
            run.log_dataset(tasks, "input")
            run.log_dataset(heldout, "output")
            run.log_manifest_stats(heldout)
        pool = training_pool(catalog, tasks, cfg.heldout_fraction, cfg.seed)
        if not pool:
            raise ValueError(f"every task of tasks_filtered {tasks.version} is held out")
        capabilities = settings.curriculum.selected_capabilities()
        probed = difficulty.probe_tasks(pool, capabilities, cfg.max_tasks, cfg.seed)
        if not probed:
            raise ValueError(
                f"no training task of tasks_filtered {tasks.version} has a capability the RL "
                f"stages select ({', '.join(capabilities or [])}): check the stages' "
                "select.capabilities against synthesis.capabilities"
            )
        if len(probed) < len(pool):
            print(f"rolling out {len(probed)} of the {len(pool)} training tasks (curriculum."
                  f"difficulty.max_tasks={cfg.max_tasks}; capabilities the stages select: "
                  f"{'all' if capabilities is None else ', '.join(capabilities)})")  # fmt: skip
            pool = probed
        print(f"tasks_filtered {tasks.version}: {len(pool)} to roll out, {heldout.rows} held out")
        with tracker.stage("rollouts") as run:
            inputs = [tasks] + ([checkpoint] if checkpoint else [])
            result = _run_rollouts(settings, pool, policy_dir, k, inputs)
            run.log_params({"k": k, "policy": result.rollouts.params.get("policy")})
            run.log_metrics({"episodes_run": result.episodes_run,
                             "episodes_skipped": result.episodes_skipped})  # fmt: skip
            run.log_dataset(result.rollouts, "output")
            run.log_dataset(result.pass_rates, "output")
            run.log_manifest_stats(result.pass_rates)
        options = {
            "token_bins": list(cfg.token_bins),
            "pass_rate_bins": list(cfg.pass_rate_bins),
            "min_correct": cfg.min_correct,
            "max_correct": cfg.max_correct,
            "heldout_fraction": cfg.heldout_fraction,
            "seed": cfg.seed,
            "date": str(result.rollouts.params["episode"]["date"]),
        }
        with tracker.stage("difficulty") as run:
            found, rows = classify_rates(catalog, pool, result.pass_rates, options)
            per_bucket = _log_difficulty(run, pool, found, rows, k)
        stages: dict[str, str] = {}
        for stage in settings.curriculum.stages:
            with tracker.stage(f"stage:{stage.name}") as run:
                # A stage that takes every part keeps the cache key it had before parts existed.
                whole = {"part", "parts"} if stage.select.parts == 1 else None
                selection = stage.select.model_dump(mode="json", exclude=whole)
                manifest = build_stage(catalog_root, tasks, result.pass_rates, stage.name,
                                       selection, options)  # fmt: skip
                run.log_dataset(result.pass_rates, "input")
                run.log_dataset(manifest, "output")
                buckets = manifest.stats.get("per_bucket", {})
                per_cap = manifest.stats.get("per_capability", {})
                run.log_metrics({"tasks": manifest.rows,
                                 **{f"capability.{c}": n for c, n in per_cap.items()},
                                 **{f"bucket.{_metric_name(b)}": n for b, n in buckets.items()}})  # fmt: skip
                run.tracker.client.log_dict(run.run_id, buckets, "buckets.json")
                stages[stage.name] = manifest.version
                print(f"stage {stage.name}: {manifest.rows} tasks -> {manifest.version}")
    return {
        "stages": stages,
        "heldout": heldout.version,
        "rollouts": result.rollouts.version,
        "pass_rates": result.pass_rates.version,
        "kept": len(found.kept),
        "dropped": found.dropped_totals(),
        "per_bucket": per_bucket,
        "mlflow_run_id": tracker.run_id,
    }
