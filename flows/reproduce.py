"""The end-to-end parent flow `reproduce` (deployment `reproduce`, CLI `literesearcher demo`).

    world -> build_env -> synthesize -> teacher -> sft -> filter -> rl -> eval

Each stage calls the stage's own flow or catalog tasks, so every unit of work is cached by its
catalog manifest: a re-run (or `prefect flow-run retry`) redoes only what has not finished, and
a stage that failed resumes from its last checkpoint. The env_service the middle stages talk to
is the configured one when it answers, else one started in this process for the run.

- world: the virtual world (`pipeline.world_pages` pages), the corpus and the ground truth that
  synthesis draws tasks from; `corpus` adds more inputs to the local web.
- teacher: oracle trajectories through the real env_service on the training pool (held-out
  tasks excluded), judge-verified, as an `sft_data` version; with `pipeline.teacher_worlds`
  also on every task of that many other worlds (each synthesized over its own local web and
  served by its own in-process env_service), merged into one version.
- sft / rl: `train_curriculum` (SFT cold start, then the configured RL stages, each starting
  from the previous one's checkpoint); filter: `filter_difficulty` with the SFT policy.
- eval: the held-out tasks, for the SFT checkpoint and after every RL stage.

`from_stage` re-runs from a stage onward: the catalog versions (and training work dirs) that
the previous run's later stages created are removed first, so they are computed again.
`fail_once` ("STAGE:PATH") raises at the start of STAGE when PATH exists, deleting PATH: a
one-shot failure for retry drills (the integration test injects one).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.settings import PREFECT_TASKS_REFRESH_CACHE, temporary_settings

from conf import Settings, load_settings
from conf.settings import PIPELINE_STAGES
from data_catalog import Catalog, Manifest
from tasks.synthesis.schema import TaskRecord

if TYPE_CHECKING:
    from rl.teacher import TeacherConfig

STAGES = PIPELINE_STAGES
STATE_FILE = "reproduce-state.json"


class InjectedFailure(RuntimeError):
    """The one-shot failure `fail_once` asks for."""


# ---- run state: what each stage created, so `from_stage` can redo it ----------------------


def _state_path(settings: Settings, name: str) -> Path:
    return settings.path("runs") / name / STATE_FILE


def _load_state(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {"stages": {}}


def _save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(path)


def _snapshot(catalog: Catalog) -> set[tuple[str, str]]:
    return {(m.name, m.version) for name in catalog.datasets() for m in catalog.versions(name)}


def forget_from(settings: Settings, name: str, from_stage: str) -> list[str]:
    """Remove what the recorded run's stages from `from_stage` on created; return what went."""
    if from_stage not in STAGES:
        raise ValueError(f"unknown stage {from_stage!r}; stages: {', '.join(STAGES)}")
    path = _state_path(settings, name)
    state = _load_state(path)
    catalog = Catalog.from_settings(settings)
    removed: list[str] = []
    for stage in STAGES[STAGES.index(from_stage) :]:
        record = state["stages"].pop(stage, None)
        if not record:
            continue
        for dataset, version in record.get("created", []):
            if catalog.remove(dataset, version):
                removed.append(f"{dataset}@{version}")
        for work_dir in record.get("work_dirs", []):
            if Path(work_dir).exists():
                shutil.rmtree(work_dir)
                removed.append(work_dir)
    _save_state(path, state)
    return removed


# ---- stages ----------------------------------------------------------------------------


@task(name="make_world", cache_policy=NO_CACHE)
def make_world(settings_json: str) -> Manifest:
    from tqdm.auto import tqdm

    from literesearcher.world.generate import world_in_catalog

    settings = Settings.model_validate_json(settings_json)
    p = settings.pipeline
    with tqdm(total=p.world_pages, unit="page", desc="world") as bar:
        return world_in_catalog(
            Catalog.from_settings(settings), pages=p.world_pages, seed=p.world_seed,
            progress=bar.update,
        )  # fmt: skip


@task(name="base_models", cache_policy=NO_CACHE)
def base_models(settings_json: str) -> dict[str, str]:
    """The starting policy (and embedder): `pipeline.base_model`, else the tiny models built
    (once, into the catalog) with `pipeline.policy_sizes`."""
    from tqdm.auto import tqdm

    from literesearcher.tiny_models import TinySizes, cached_tiny_models

    settings = Settings.model_validate_json(settings_json)
    p = settings.pipeline
    if p.base_model:
        return {"policy": str(settings.path(p.base_model))}
    sizes = TinySizes.from_overrides(p.policy_sizes)
    steps = sizes.pretrain_copy_steps + sizes.pretrain_steps
    with tqdm(total=steps, unit="step", desc="pretrain policy", disable=not steps) as bar:

        def progress(step: int, loss: float) -> None:
            if step > bar.total:  # the copy phase's start stage ran on until its head formed
                bar.total = step
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")

        paths = cached_tiny_models(Catalog.from_settings(settings), seed=p.world_seed,
                                   sizes=sizes, progress=progress)  # fmt: skip
    return {kind: str(path) for kind, path in paths.items()}


def teacher_world_seed(world_seed: int, index: int) -> int:
    """The seed of the teacher's `index`-th other world: never a demo world (small integers)
    nor a pretraining world (`tiny_models.pretrain_world_seed`: 1,000,003 + seed)."""
    return 2_000_003 + 1000 * world_seed + index


def world_web_settings(settings: Settings, web_dir: Path) -> Settings:
    """`settings` pointed at a world web (`tasks.synthesis.world_web`: DuckDB pages + tantivy
    BM25) in `web_dir`. `web_dir` is a filesystem path (relative: to the working directory);
    it is made absolute, since relative paths in settings resolve against `data_root` (a
    relative `data_root` would otherwise be joined twice)."""
    web_dir = Path(web_dir).absolute()
    web = settings.model_copy(deep=True)
    web.page_store.backend = "duckdb"
    web.page_store.duckdb_path = str(web_dir / "pages.duckdb")
    web.index.retrieval_mode = "bm25"
    web.index.lexical_backend = "tantivy"
    web.index.tantivy_path = str(web_dir / "lexical")
    web.cache.backend = "lru"
    return web


@contextmanager
def serve_world_web(settings: Settings, web_dir: Path) -> Iterator[Settings]:
    """env_service over a world web (`world_web_settings`) in this process on a free port;
    yields settings that point at it."""
    from env_service.serving import serve_env_service

    failed = f"env_service over the world web {web_dir} failed to start (see the log above)"
    with serve_env_service(world_web_settings(settings, web_dir), port=0, failed=failed) as live:
        yield live


def teacher_pool(settings: Settings, pool: list[TaskRecord]) -> list[TaskRecord]:
    """The demo world's training tasks (`pool`) the teacher demonstrates: with
    `pipeline.teacher_skips_probed`, not those the difficulty probe will roll out; at most
    `pipeline.teacher_tasks` of them (0: all)."""
    from tasks.curriculum import difficulty

    p, d = settings.pipeline, settings.curriculum.difficulty
    if p.teacher_skips_probed:
        capabilities = settings.curriculum.selected_capabilities()
        probed = {t.id for t in difficulty.probe_tasks(pool, capabilities, d.max_tasks, d.seed)}
        pool = [t for t in pool if t.id not in probed]
        if not pool:
            raise ValueError(
                "pipeline.teacher_skips_probed: the difficulty probe takes every training task "
                "(curriculum.difficulty.max_tasks is unset or covers them all), so none is "
                "left for the teacher; set max_tasks below the training pool's size"
            )
    return pool[: p.teacher_tasks] if p.teacher_tasks else pool


def teacher_config(settings: Settings) -> TeacherConfig:
    """How the oracle teacher writes its trajectories under these settings."""
    from rl.teacher import QUOTE_TEMPLATE, TeacherConfig

    p = settings.pipeline
    # The date the policy's prompts will carry (rl.date, else today), so SFT sees its prompt.
    return TeacherConfig(date=settings.rl.date or dt.date.today().isoformat(),
                         top_k=settings.env_service.top_k, require_grounded=p.teacher_grounded,
                         quote=QUOTE_TEMPLATE if p.teacher_quotes else None,
                         answer_as_page=p.teacher_answers_as_page,
                         visit_results=p.teacher_visits_results)  # fmt: skip


@task(name="teacher_sft_data", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def teacher_sft_data(
    settings_json: str, tasks_version: str, world_web_dir: str | None = None
) -> Manifest:
    """Oracle trajectories for the training pool (held-out tasks excluded) -> `sft_data`.
    With `world_web_dir` (another world's tasks): every task, through an env_service over
    that world's web."""
    from env_service.client import EnvClient
    from flows.filter_difficulty import read_tasks, training_pool
    from rl.judge import judge_from_settings
    from rl.teacher import (
        find_sft_data,
        sft_params,
        teacher_trajectories,
        write_sft_data,
    )

    settings = Settings.model_validate_json(settings_json)
    catalog = Catalog.from_settings(settings)
    manifest = catalog.manifest("tasks_filtered", tasks_version)
    assert manifest is not None
    d = settings.curriculum.difficulty
    if world_web_dir is None:
        pool = teacher_pool(settings, training_pool(catalog, manifest, d.heldout_fraction, d.seed))
    else:
        pool = read_tasks(catalog, manifest)
    if not pool:
        raise ValueError(f"tasks_filtered {tasks_version} has no training tasks for the teacher")
    config = teacher_config(settings)
    params = sft_params(pool, config)
    found = find_sft_data(catalog, [manifest], params)
    if found is not None:
        return found

    async def run(served: Settings) -> Any:
        judge = judge_from_settings(settings)
        try:
            async with EnvClient.from_settings(served) as env:
                return await teacher_trajectories(pool, env, config, judge=judge,
                                                  concurrency=settings.rl.concurrency)  # fmt: skip
        finally:
            if judge.backend is not None:
                await judge.backend.aclose()

    if world_web_dir is None:
        result = asyncio.run(run(settings))
    else:
        with serve_world_web(settings, Path(world_web_dir)) as served:
            result = asyncio.run(run(served))
    print(f"teacher: {dict(result.stats)}")
    return write_sft_data(catalog, result.trajectories, [manifest], params, result.stats)


def other_world_sft_data(
    settings: Settings, profile: str | None, overrides: list[str], index: int
) -> Manifest:
    """The teacher's trajectories on every task of other world `index` (`teacher_world_seed`):
    its world, its tasks (synthesized and filtered over its own world web under
    `teacher-worlds/<seed>`), then the teacher through an env_service over that web."""
    from flows.synthesize import synthesize_tasks
    from literesearcher.world.generate import world_in_catalog
    from tasks.synthesis import world_web

    p = settings.pipeline
    seed = teacher_world_seed(p.world_seed, index)
    catalog = Catalog.from_settings(settings)
    world_dir = catalog.path(world_in_catalog(catalog, pages=p.teacher_world_pages, seed=seed))
    work = f"teacher-worlds/{seed}"
    synth = synthesize_tasks(
        profile=profile, overrides=[*overrides, f"synthesis.work_dir={work}"],
        world_dir=str(world_dir), per_capability=p.teacher_world_per_capability, seed=seed,
    )  # fmt: skip
    web_dir = settings.path(work) / "world_web"
    # Built by synthesis' filters; a no-op when its marker matches (cached tasks, lost web).
    world_web.build_world_web(world_dir, web_dir, words=settings.corpus.passage_words,
                              overlap=settings.corpus.passage_overlap)  # fmt: skip
    return teacher_sft_data(settings.model_dump_json(), synth["versions"]["tasks_filtered"],
                            str(web_dir))  # fmt: skip


def heldout_file(catalog: Catalog, version: str) -> str:
    manifest = catalog.manifest("tasks_heldout", version)
    assert manifest is not None
    files = sorted(catalog.path(manifest).glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"tasks_heldout {version} holds no parquet file")
    return str(files[0])


# ---- the flow --------------------------------------------------------------------------


@contextmanager
def _refresh(on: bool) -> Iterator[None]:
    """Prefect's task cache is bypassed (tasks run and ask the catalog) for redone stages."""
    with temporary_settings({PREFECT_TASKS_REFRESH_CACHE: True}) if on else nullcontext():
        yield


@flow(name="reproduce", log_prints=True)
def reproduce(
    profile: str | None = None,
    overrides: list[str] | None = None,
    corpus: list[str] | None = None,
    corpus_format: str = "auto",
    name: str = "default",
    from_stage: str | None = None,
    fail_once: str | None = None,
) -> dict[str, Any]:
    """Run (or resume) the whole pipeline; returns per-stage results and the summary rows."""
    overrides = list(overrides or [])
    settings = load_settings(profile, overrides)
    catalog = Catalog.from_settings(settings)
    if from_stage:
        removed = forget_from(settings, name, from_stage)
        print(f"--from {from_stage}: removed {len(removed)} outputs of the previous run")
    state_path = _state_path(settings, name)
    state = _load_state(state_path)
    results: dict[str, Any] = {}
    timings: dict[str, float] = {}
    redo = set(STAGES[STAGES.index(from_stage) :]) if from_stage else set()

    def run_stage(stage: str, body: Callable[[], Any], work_dirs: Callable[[Any], list[str]]
                  | None = None) -> Any:  # fmt: skip
        _maybe_fail(stage, fail_once)
        before = _snapshot(catalog)
        started = time.perf_counter()
        with _refresh(stage in redo):
            out = body()
        timings[stage] = time.perf_counter() - started
        created = sorted(_snapshot(catalog) - before)
        record = state["stages"].setdefault(stage, {"created": [], "work_dirs": []})
        record["created"] = sorted({*map(tuple, record["created"]), *created})
        if work_dirs is not None:
            record["work_dirs"] = sorted({*record["work_dirs"], *work_dirs(out)})
        record["seconds"] = timings[stage]
        record["fresh"] = bool(created)
        _save_state(state_path, state)
        results[stage] = out
        print(f"[reproduce] {stage}: {timings[stage]:.1f}s"
              + ("" if created else " (cached)"))  # fmt: skip
        return out

    from env_service.serving import ensure_env_service
    from flows.build_env import build_environment
    from flows.evaluate import evaluate
    from flows.filter_difficulty import filter_difficulty
    from flows.synthesize import synthesize_tasks
    from flows.train_curriculum import train_curriculum

    def world_and_models() -> tuple[Manifest, dict[str, str]]:
        return make_world(settings.model_dump_json()), base_models(settings.model_dump_json())

    world, models = run_stage("world", world_and_models)
    world_dir = str(catalog.path(world))
    # Every later stage counts tokens with, and starts from, this policy.
    overrides = [*overrides, f"llm.local_policy_path={models['policy']}"]
    if "embedder" in models:  # built with the policy: the tiny BGE-M3-format embedder
        overrides.append(f"embedding.model_path={models['embedder']}")
    settings = load_settings(profile, overrides)
    inputs = [world_dir, *(corpus or [])]
    run_stage("build_env", lambda: build_environment(inputs=inputs, fmt=corpus_format,
                                                     profile=profile, overrides=overrides))  # fmt: skip
    synth = run_stage("synthesize", lambda: synthesize_tasks(profile=profile,
                      overrides=overrides, world_dir=world_dir))  # fmt: skip
    tasks_version = synth["versions"]["tasks_filtered"]

    with ensure_env_service(settings) as served:
        env_overrides = [*overrides, f"env_service.url={served.env_service.base_url()}"]
        served_json = served.model_dump_json()

        def teacher() -> Manifest:
            from rl.teacher import merge_sft_data

            parts = [teacher_sft_data(served_json, tasks_version)]
            for i in range(settings.pipeline.teacher_worlds):
                parts.append(other_world_sft_data(settings, profile, overrides, i))
            return merge_sft_data(catalog, parts)

        sft_data = run_stage("teacher", teacher)
        sft = run_stage(
            "sft",
            lambda: train_curriculum(profile=profile, overrides=env_overrides, stages=["sft"],
                                     sft_data=sft_data.version, base_model=models["policy"],
                                     name=name),
            lambda out: out.get("work_dirs", []),
        )  # fmt: skip
        sft_version = sft["checkpoints"]["sft"]
        filtered = run_stage("filter", lambda: filter_difficulty(
            profile=profile, overrides=env_overrides, tasks_version=tasks_version,
            policy=sft_version))  # fmt: skip
        rl_stages = [s.name for s in settings.curriculum.stages]
        rl = run_stage(
            "rl",
            lambda: train_curriculum(profile=profile, overrides=env_overrides, stages=rl_stages,
                                     curriculum=filtered["stages"], base_model=sft_version,
                                     name=name),
            lambda out: out.get("work_dirs", []),
        )  # fmt: skip
        heldout = heldout_file(catalog, filtered["heldout"])
        checkpoints = {"sft": sft_version, **rl["checkpoints"]}

        def run_evals() -> dict[str, Any]:
            return {
                stage: evaluate(benchmarks={"heldout": heldout}, k=settings.pipeline.eval_k,
                                checkpoint=version, curriculum=name, stage=stage,
                                profile=profile, overrides=env_overrides)
                for stage, version in checkpoints.items()
            }  # fmt: skip

        evals = run_stage("eval", run_evals)
    rows = summary_rows(evals, {**sft.get("stages", {}), **rl.get("stages", {})})
    guess = constant_guess(heldout)
    print(format_summary(rows, timings, settings, guess))
    return {
        "stages": {s: state["stages"].get(s, {}) for s in STAGES},
        "summary": rows,
        "constant_guess": guess,
        "checkpoints": checkpoints,
        "eval_reports": {s: e["eval_report"] for s, e in evals.items()},
        "seconds": timings,
    }


def _maybe_fail(stage: str, fail_once: str | None) -> None:
    if not fail_once:
        return
    target, _, marker = fail_once.partition(":")
    if target not in STAGES:
        raise ValueError(f"fail_once names unknown stage {target!r}; stages: {STAGES}")
    if target == stage and marker and Path(marker).exists():
        Path(marker).unlink()
        raise InjectedFailure(f"injected failure at stage {stage} (marker {marker})")


def summary_rows(evals: dict[str, Any], training: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per evaluated checkpoint: held-out pass@1 and avg@k (the mean over all k samples;
    pass@1 when eval_k is 1), mean tool calls and turns, the seconds its training took
    (recorded with the checkpoint, also when it came from the cache), and `by_capability`:
    capability -> (questions, pass@1, avg@k)."""
    rows = []
    for stage, result in evals.items():
        metrics = result["metrics"]
        overall = _overall(metrics)
        info = training.get(stage, {})
        by_capability = {}
        for group, values in sorted(metrics.items()):
            if values is not overall:
                capability = group.rsplit("/", 1)[-1]
                by_capability[capability] = (
                    int(values.get("questions", 0)),
                    float(values.get("pass_at_1", 0.0)),
                    _avg(values),
                )
        rows.append(
            {
                "stage": stage,
                "pass_at_1": overall.get("pass_at_1", 0.0),
                "avg_at_k": _avg(overall),
                "tool_calls": overall.get("mean_tool_calls", 0.0),
                "turns": overall.get("mean_turns", 0.0),
                "questions": int(overall.get("questions", 0)),
                "train_steps": info.get("steps", 0),
                "train_seconds": float(info.get("seconds") or 0.0),
                "by_capability": by_capability,
            }
        )
    return rows


def constant_guess(tasks_file: str) -> dict[str, float]:
    """What a policy that gives each capability's commonest held-out answer to every question
    of it would score: per capability, and `all` over the whole set. The floor a trained
    policy's pass@1 has to clear before it shows any research (synthesis.max_answer_share)."""
    import pyarrow.parquet as pq

    from tasks.synthesis.ground_truth import commonest_answer_share
    from tasks.synthesis.schema import from_table

    tasks = list(from_table(pq.read_table(tasks_file)))
    shares = commonest_answer_share(tasks)
    sizes = Counter(t.capability for t in tasks)
    total = sum(shares[c] * n for c, n in sizes.items()) / max(1, len(tasks))
    return {**shares, "all": round(total, 4)}


def _overall(metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
    for key, value in metrics.items():
        if key.endswith("/all") or key.endswith("/overall"):
            return value
    return next(iter(metrics.values()), {})


def _avg(metrics: dict[str, Any]) -> float:
    """avg@k of one metrics group, whatever its k; pass@1 where it has none."""
    for key, value in metrics.items():
        if key.startswith("avg_at_"):
            return float(value)
    return float(metrics.get("pass_at_1", 0.0))


def format_summary(
    rows: list[dict[str, Any]],
    timings: dict[str, float],
    settings: Settings,
    guess: dict[str, float] | None = None,
) -> str:
    """The demo's closing table: per checkpoint held-out pass@1 and avg@k (the estimate of
    pass@1 over all k samples), then avg@k by capability, then the stage timings. `guess`
    (`constant_guess`) adds the score of always giving each capability's commonest answer."""
    k, temperature = settings.pipeline.eval_k, settings.rl.temperature
    sampling = (
        "greedy"
        if temperature == 0
        else f"temperature {temperature:g}, top_p {settings.rl.top_p:g}"
    )
    avg = f"avg@{k}"
    lines = [
        f"held-out evaluation ({sampling}, {k} sample(s) per question)",
        f"{'checkpoint':<12} {'pass@1':>7} {avg:>7} {'tool calls':>10} {'turns':>6} "
        f"{'questions':>9} {'train steps':>11} {'train s':>8}",
        "-" * 77,
    ]
    for r in rows:
        lines.append(f"{r['stage']:<12} {r['pass_at_1']:>7.3f} {r['avg_at_k']:>7.3f} "
                     f"{r['tool_calls']:>10.2f} {r['turns']:>6.2f} {r['questions']:>9} "
                     f"{r['train_steps']:>11} {r['train_seconds']:>8.1f}")  # fmt: skip
    if guess is not None:
        lines.append(f"{'guess':<12} {guess['all']:>7.3f} {guess['all']:>7.3f}   "
                     "(each capability's commonest answer, to every question)")  # fmt: skip
    capabilities = sorted({c for r in rows for c in r.get("by_capability", {})})
    if capabilities:
        width = max(12, *(len(c) for c in capabilities))
        questions = [max(r["by_capability"].get(c, (0,))[0] for r in rows) for c in capabilities]
        lines += [
            "",
            f"{avg if k > 1 else 'pass@1'} by capability (questions)",
            f"{'checkpoint':<12} " + " ".join(f"{c:>{width}}" for c in capabilities),
            f"{'':<12} " + " ".join(f"{f'({n})':>{width}}" for n in questions),
        ]
        for r in rows:
            cells = [r["by_capability"].get(c) for c in capabilities]
            lines.append(f"{r['stage']:<12} " + " ".join(
                f"{cell[2]:>{width}.3f}" if cell else f"{'-':>{width}}" for cell in cells))  # fmt: skip
        if guess is not None:
            lines.append(f"{'guess':<12} " + " ".join(
                f"{guess[c]:>{width}.3f}" if c in guess else f"{'-':>{width}}"
                for c in capabilities))  # fmt: skip
    lines += ["", "pipeline stages (seconds; a cached stage only checks its outputs)"]
    lines += [f"  {stage:<11} {seconds:>8.1f}" for stage, seconds in timings.items()]
    lines.append(f"  {'total':<11} {sum(timings.values()):>8.1f}")
    lines.append(
        f"\nMLflow UI: .venv/bin/mlflow ui --backend-store-uri {settings.mlflow_tracking_uri()}"
    )
    return "\n".join(lines)
