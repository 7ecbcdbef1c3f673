"""Flow `train_curriculum`: SFT cold start (optional) -> RL stage 1 -> stage 2 -> ...

Each stage is one cached Prefect task (`train_stage`) that writes a `checkpoints` catalog
version: the stage's HF model, with `params` naming the curriculum and the stage. Its key is
the stage's data manifest, the previous checkpoint's manifest (or a stamp of the base model),
the stage config, the trainer and the trainer code's version, so a finished stage is skipped.
Training runs in a work dir named after that key under `curriculum.output_root`; a failed
stage, retried by Prefect (`curriculum.stage_retries`) or by re-running the flow, resumes from
its last checkpoint there. Stage N+1 starts from stage N's model.

MLflow: a parent run per flow run and a nested run per stage (tags `curriculum`, `stage`)
with per-step `train/*` metrics (reward, pass_rate, turns, tool_calls, loss, kl, step_s...)
at global steps: each stage's steps are shifted by the steps of the stages before it, so the
curves continue one another. Each finished stage's model is logged as artifacts of its run
and registered as a version of `mlflow.registered_model` (tags catalog_version, curriculum,
stage), which the nightly evaluation picks up.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from prefect import flow
from tqdm.auto import tqdm

from conf import Settings, load_settings
from data_catalog import Catalog, Manifest
from data_catalog.manifest import MANIFEST_FILE, PART_MANIFEST_FILE
from rl.episode import AgentTask
from rl.teacher import read_sft_messages
from rl.trainer.checkpoints import STATE_FILE, MetricsFn
from tasks.common import catalog_task, code_version
from tasks.curriculum import stage_data as stage_data_io
from tasks.tracking import Tracker

CHECKPOINTS = "checkpoints"
STAGE_DATA = "curriculum_stage"
SFT_DATA = "sft_data"
SFT = "sft"
# The `curriculum.local` fields the SFT loop reads (`rl.trainer.local_stage.sft_loop_config`)
# that change its weights; how often a loop saves and how many saves it keeps do not, so
# neither is in a stage's key (a GRPO stage's key has every other `curriculum.local` field).
SFT_LOCAL_FIELDS = {"device", "weight_decay"}
LOCAL_FIELDS_NOT_IN_KEYS = {"save_every", "keep_last"}
METRIC_PREFIX = "train/"  # OpenRLHF's TensorBoard tags use the same prefix
ARTIFACT_PATH = "checkpoint"
# Only the HF model goes into a checkpoints version: optimizer and RNG states stay in the
# work dir, where a resumed stage needs them; catalog manifests are never linked (a link would
# let the new version's manifest overwrite another version's).
NOT_COPIED = ("optimizer.pt", "rng.pt", MANIFEST_FILE, PART_MANIFEST_FILE)


# ---- data the stages read -----------------------------------------------------------------
def load_stage_tasks(catalog: Catalog, manifest: Manifest) -> list[AgentTask]:
    """A `curriculum_stage` version's tasks; an empty stage is an error that says why."""
    tasks = stage_data_io.load_stage_tasks(catalog, manifest)
    if not tasks:
        stage = manifest.params.get("stage", "?")
        raise ValueError(
            f"curriculum_stage {manifest.version} (stage {stage}) holds no tasks: the policy "
            "solved none of the pool partially (see filter_difficulty's pass-rate histogram). "
            "Train the SFT cold start longer, widen the stage's selection, or set "
            "curriculum.difficulty.min_correct=0 to keep unsolved tasks."
        )
    return tasks


def stage_prompt_path(catalog: Catalog, manifest: Manifest) -> Path:
    """A `curriculum_stage` version's OpenRLHF prompt file."""
    return stage_data_io.stage_prompt_path(catalog, manifest)


def stage_data(
    catalog: Catalog, stage: str, version: str | None, configured: str | None = None
) -> Manifest:
    """The dataset a stage trains on: the given version, else the newest one for the stage."""
    name = SFT_DATA if stage == SFT else STAGE_DATA
    version = version or configured
    if version is not None:
        found = catalog.manifest(name, version, missing_ok=True)
        if found is None:
            raise LookupError(f"stage {stage!r}: no {name} version {version!r} in the catalog")
        return found
    found = None
    for m in catalog.versions(name):
        if name == SFT_DATA or m.params.get("stage") == stage:
            found = m
    if found is None:
        hint = "the teacher's SFT data" if stage == SFT else "`literesearcher filter`"
        raise LookupError(f"stage {stage!r}: no {name} version in the catalog; produce {hint}")
    return found


def model_dir(catalog: Catalog, manifest: Manifest) -> Path:
    return catalog.path(manifest)


def model_stamp(path: str, settings: Settings) -> dict[str, Any]:
    """What identifies an HF model directory without hashing its weights: its path (relative
    to `settings.data_root` when inside it, `Settings.portable`), its config and its files'
    names and sizes."""
    root = Path(path)
    if not (root / "config.json").is_file():
        raise FileNotFoundError(f"{path} is not an HF model directory (no config.json)")
    files = sorted((p.name, p.stat().st_size) for p in root.iterdir() if p.is_file())
    config = hashlib.sha256((root / "config.json").read_bytes()).hexdigest()[:16]
    return {"path": settings.portable(root.resolve()), "config": config, "files": files}


# ---- one stage ----------------------------------------------------------------------------
@dataclass(frozen=True)
class StageSpec:
    """A stage's identity in the catalog: the key of its `checkpoints` version."""

    stage: str
    inputs: list[Manifest]
    params: dict[str, Any]
    code_version: str

    @property
    def key(self) -> str:
        return Catalog.key(CHECKPOINTS, self.inputs, self.params, self.code_version)

    def work_dir(self, settings: Settings) -> Path:
        return settings.path(settings.curriculum.output_root) / f"{self.stage}-{self.key[:16]}"


def trainer_code_version(trainer: str, stage: str | None = None) -> str:
    """The source digest in a stage's key: the local SFT cold start's covers the SFT loop
    only, so a change to GRPO code does not retrain it (nor an SFT change the GRPO stages,
    beyond the new SFT checkpoint they then start from)."""
    if trainer == "local":
        from rl.trainer import checkpoints, grpo, local_grpo, local_stage, rollouts, sequences, sft

        if stage == SFT:
            return code_version(checkpoints, sequences, sft, local_stage.sft_loop_config,
                                local_stage.run_local_sft)  # fmt: skip
        return code_version(checkpoints, grpo, local_grpo, local_stage.grpo_config,
                            local_stage.episode_config, local_stage.run_local_stage, rollouts,
                            sequences)  # fmt: skip
    from rl.openrlhf import agent, launcher, stage_runner

    return code_version(agent, launcher, stage_runner)


# `rl` fields an RL stage never reads: the stage samples at its own temperature / top_p, and k,
# part_size and the server address belong to rollouts, evaluation and `llm serve`. Changing
# them (e.g. the held-out evaluation's temperature) must not retrain the RL stages.
RL_FIELDS_NOT_IN_STAGES = {"temperature", "top_p", "k", "part_size", "serve_host", "serve_port"}


def stage_spec(
    settings: Settings,
    stage: str,
    data: Manifest,
    previous: Manifest | None,
    base_model: str | None,
    curriculum: str,
) -> StageSpec:
    cur = settings.curriculum
    if stage == SFT:
        config = cur.sft.model_dump(mode="json", exclude={"enabled", "model_path", "dataset"})
    else:
        config = stage_config(settings, stage).model_dump(mode="json", exclude={"model_path"})
        config["rl"] = settings.rl.model_dump(mode="json", exclude=RL_FIELDS_NOT_IN_STAGES)
        judge = settings.llm.endpoints.get("judge")
        config["judge_model"] = judge.model if judge else None
    if cur.trainer == "local":
        # SFT's key holds only the local loop fields SFT reads: a GRPO-only knob (ppo_epochs,
        # micro_batch_size, dynamic_filtering_max_rounds, ...) must not retrain the cold start.
        fields = SFT_LOCAL_FIELDS if stage == SFT else None
        config["local"] = cur.local.model_dump(
            mode="json", include=fields, exclude=LOCAL_FIELDS_NOT_IN_KEYS
        )
    params = {
        "curriculum": curriculum,
        "stage": stage,
        "kind": SFT if stage == SFT else "grpo",
        "trainer": cur.trainer,
        "seed": settings.seed,
        "config": config,
        "base_model": None if previous is not None else model_stamp(str(base_model), settings),
    }
    inputs = [data, *([previous] if previous is not None else [])]
    return StageSpec(stage, inputs, params, trainer_code_version(cur.trainer, stage))


def stage_config(settings: Settings, name: str) -> Any:
    for s in settings.curriculum.stages:
        if s.name == name:
            return s
    raise LookupError(f"no stage named {name!r} in curriculum.stages")


@dataclass(frozen=True)
class StageTracking:
    """Where a stage task logs its per-step metrics (not part of its cache key)."""

    tracking_uri: str
    run_id: str
    step_offset: int


def metrics_logger(tracking: StageTracking | None) -> MetricsFn | None:
    """Per-step metrics -> the stage's MLflow run as `train/<name>` at the global step."""
    if tracking is None:
        return None
    client = MlflowClient(tracking_uri=tracking.tracking_uri)

    def log(step: int, metrics: dict[str, float]) -> None:
        stamp = int(time.time() * 1000)
        batch = [
            Metric(f"{METRIC_PREFIX}{k}", float(v), stamp, tracking.step_offset + step)
            for k, v in metrics.items()
        ]
        client.log_batch(tracking.run_id, metrics=batch)

    return log


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link (same file system) or copy an HF model folder into a staging folder."""

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    ignore = shutil.ignore_patterns(*NOT_COPIED)
    shutil.copytree(src, dst, copy_function=link, ignore=ignore, dirs_exist_ok=True)


@catalog_task(name="train_stage")
def train_stage(
    catalog_root: str,
    settings_json: str,
    stage: str,
    data: Manifest,
    previous: Manifest | None,
    base_model: str | None,
    curriculum: str,
    tracking: StageTracking | None = None,
) -> Manifest:
    """Train one stage (or resume it) and commit its model as a `checkpoints` version."""
    settings = Settings.model_validate_json(settings_json)
    catalog = Catalog(catalog_root)
    spec = stage_spec(settings, stage, data, previous, base_model, curriculum)
    done = catalog.find(CHECKPOINTS, spec.key)
    if done is not None:
        return done
    work_dir = spec.work_dir(settings)
    start = str(model_dir(catalog, previous)) if previous is not None else str(base_model)
    on_metrics = metrics_logger(tracking)
    offset = tracking.step_offset if tracking else 0
    t0 = time.perf_counter()
    if stage != SFT and data.rows == 0 and settings.curriculum.skip_empty_stages:
        print(f"WARNING: stage {stage}: curriculum_stage {data.version} holds no tasks (the "
              "policy solved none of the probed tasks partially); curriculum.skip_empty_stages "
              f"is set, so the stage keeps the model it started from ({start}) untrained")  # fmt: skip
        hf_dir, steps, final = Path(start), 0, {"skipped_empty": 1.0}
    else:
        print(f"stage {stage}: training from {start} in {work_dir}")
        if settings.curriculum.trainer == "local":
            hf_dir, steps, final = _train_local(settings, catalog, stage, data, start,
                                                work_dir, on_metrics)  # fmt: skip
        else:
            hf_dir, steps, final = _train_openrlhf(settings, catalog, stage, data, start,
                                                   work_dir, tracking, offset)  # fmt: skip
    with catalog.create(CHECKPOINTS, spec.inputs, spec.params, spec.code_version) as w:
        _link_tree(hf_dir, w.path)
        w.stats = {
            "steps": steps,
            "step_offset": offset,
            "final_metrics": final,
            "seconds": time.perf_counter() - t0,
            "work_dir": str(work_dir),
        }
    assert w.manifest is not None
    if not settings.curriculum.keep_work_dirs:
        shutil.rmtree(work_dir, ignore_errors=True)
    return w.manifest


def _train_local(
    settings: Settings,
    catalog: Catalog,
    stage: str,
    data: Manifest,
    start: str,
    work_dir: Path,
    on_metrics: MetricsFn | None,
) -> tuple[Path, int, dict[str, float]]:
    from rl.trainer.local_stage import run_local_sft, run_local_stage

    with tqdm(desc=f"stage {stage}", unit="step", dynamic_ncols=True, leave=False) as bar:

        def on_step(step: int, metrics: dict[str, float]) -> None:
            bar.update(step - bar.n)
            bar.set_postfix({k: f"{metrics[k]:.3g}" for k in ("reward", "loss") if k in metrics})
            if on_metrics is not None:
                on_metrics(step, metrics)

        if stage == SFT:
            messages = read_sft_messages(catalog, data)
            sft = settings.curriculum.sft
            bar.total = sft.epochs * math.ceil(len(messages) / sft.batch_size)
            last, _ = run_local_sft(settings, messages, start, work_dir, on_step)
        else:
            tasks = load_stage_tasks(catalog, data)
            bar.total = settings.curriculum.local.total_steps
            last = run_local_stage(settings, stage_config(settings, stage), tasks, start,
                                   work_dir, on_step)  # fmt: skip
    state = json.loads((last / STATE_FILE).read_text("utf-8"))
    return last, int(state["step"]), {k: float(v) for k, v in state["metrics"].items()}


def _train_openrlhf(
    settings: Settings,
    catalog: Catalog,
    stage: str,
    data: Manifest,
    start: str,
    work_dir: Path,
    tracking: StageTracking | None,
    offset: int,
) -> tuple[Path, int, dict[str, float]]:
    from rl.openrlhf.stage_runner import run_ppo_stage, run_sft_stage
    from rl.openrlhf.tb_forward import mlflow_sink

    sink = None
    if tracking is not None:
        sink = mlflow_sink(tracking.run_id, MlflowClient(tracking_uri=tracking.tracking_uri))
    if stage == SFT:
        dataset = catalog.path(data) / "trajectories.parquet"
        result = run_sft_stage(settings, settings.curriculum.sft, dataset_path=dataset,
                               model_path=start, work_dir=work_dir, sink=sink,
                               step_offset=offset)  # fmt: skip
    else:
        result = run_ppo_stage(settings, stage_config(settings, stage),
                               prompt_path=stage_prompt_path(catalog, data), model_path=start,
                               work_dir=work_dir, sink=sink, step_offset=offset)  # fmt: skip
    final = {k.removeprefix(METRIC_PREFIX): v for k, v in result.final_metrics.items()}
    return result.hf_dir, result.steps, final


# ---- MLflow registry ----------------------------------------------------------------------
def register_checkpoint(
    client: MlflowClient,
    settings: Settings,
    run_id: str,
    folder: Path,
    manifest: Manifest,
    curriculum: str,
    stage: str,
) -> str:
    """Register a `checkpoints` version as a model version (once: a version already tagged
    with its catalog version is returned). The source is the HF folder logged as artifacts
    of `run_id` (`runs:/<id>/checkpoint`), or the catalog folder itself when
    `mlflow.log_checkpoints` is off; no MLmodel file is needed for either."""
    model = settings.mlflow.registered_model
    query = f"name = '{model}' and tags.catalog_version = '{manifest.version}'"
    found = client.search_model_versions(query)
    if found:
        return str(found[0].version)
    if settings.mlflow.log_checkpoints:
        client.log_artifacts(run_id, str(folder), ARTIFACT_PATH)
        source = f"runs:/{run_id}/{ARTIFACT_PATH}"
    else:
        source = folder.resolve().as_uri()
    try:
        client.create_registered_model(model)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    tags = {"catalog_version": manifest.version, "curriculum": curriculum, "stage": stage}
    version = client.create_model_version(model, source, run_id=run_id, tags=tags)
    return str(version.version)


# ---- the flow -----------------------------------------------------------------------------
def stage_order(settings: Settings, stages: list[str] | None) -> list[str]:
    """The stages to run, in curriculum order (SFT first)."""
    configured = [s.name for s in settings.curriculum.stages]
    if SFT in configured:
        raise ValueError(f"a curriculum stage may not be named {SFT!r}")
    if stages is None:
        return ([SFT] if settings.curriculum.sft.enabled else []) + configured
    unknown = [s for s in stages if s not in (SFT, *configured)]
    if unknown:
        raise ValueError(f"unknown stages {unknown}; known: {[SFT, *configured]}")
    full = [SFT, *configured]
    picked = [s for s in full if s in stages]
    if picked != list(stages):
        raise ValueError(f"stages must be given in curriculum order {full}, got {list(stages)}")
    return picked


def resolve_base(
    catalog: Catalog, settings: Settings, base_model: str | None
) -> tuple[Manifest | None, str]:
    """(checkpoints manifest or None, HF dir) of what the first stage starts from."""
    if base_model is not None:
        found = catalog.manifest(CHECKPOINTS, base_model, missing_ok=True)
        if found is not None:
            return found, str(model_dir(catalog, found))
        path = base_model
    else:
        path = settings.curriculum.sft.model_path or settings.llm.local_policy_path or ""
        if not path:
            raise ValueError(
                "no base model: pass --base-model (an HF dir or a checkpoints version) or set "
                "curriculum.sft.model_path or llm.local_policy_path"
            )
        path = str(settings.path(path))
    if not (Path(path) / "config.json").is_file():
        raise FileNotFoundError(f"base model {path!r} is neither a checkpoints version nor an "
                                "HF model directory (no config.json)")  # fmt: skip
    return None, path


def end_step(checkpoint: Manifest | None) -> int:
    """The global step a checkpoint's stage ended at: where the next stage's steps start,
    whichever subset of stages a run trains."""
    if checkpoint is None:
        return 0
    return int(checkpoint.stats.get("step_offset", 0)) + int(checkpoint.stats.get("steps", 0))


@flow(name="train_curriculum", log_prints=True)
def train_curriculum(
    profile: str | None = None,
    overrides: list[str] | None = None,
    stages: list[str] | None = None,
    curriculum: dict[str, str] | None = None,
    sft_data: str | None = None,
    base_model: str | None = None,
    name: str = "default",
) -> dict[str, Any]:
    """Train the curriculum's stages in order; each starts from the previous one's model.

    `curriculum`: stage name -> `curriculum_stage` version (default: the newest for the
    stage); `sft_data`: an `sft_data` version (default: `curriculum.sft.dataset`, else the
    newest); `base_model`: an HF dir or a `checkpoints` version; `name`: the curriculum's
    name, the MLflow tag that `literesearcher compare` groups by."""
    settings = load_settings(profile, overrides or [])
    catalog = Catalog.from_settings(settings)
    order = stage_order(settings, stages)
    data = {
        s: stage_data(catalog, s, sft_data if s == SFT else (curriculum or {}).get(s),
                      settings.curriculum.sft.dataset if s == SFT else None)
        for s in order
    }  # fmt: skip
    previous, base = resolve_base(catalog, settings, base_model)
    settings_json = settings.model_dump_json()
    catalog_root = settings.uri(settings.catalog.root)
    train = train_stage.with_options(retries=settings.curriculum.stage_retries)
    offset = end_step(previous)
    out: dict[str, Any] = {"checkpoints": {}, "model_dirs": {}, "stages": {}, "work_dirs": []}
    with Tracker.start(
        settings, f"train_curriculum:{name}", tags={"flow": "train_curriculum",
                                                    "curriculum_name": name}
    ) as tracker:  # fmt: skip
        for stage in order:
            config_path = stage_config(settings, stage).model_path if stage != SFT else None
            if config_path:  # a stage pinned to its own starting model
                previous, base = resolve_base(catalog, settings, config_path)
                offset = end_step(previous)
            spec = stage_spec(settings, stage, data[stage], previous, base, name)
            with tracker.stage(stage, tags={"curriculum": name}) as run:
                manifest = catalog.find(CHECKPOINTS, spec.key)
                skipped = manifest is not None
                if manifest is None:
                    tracking = StageTracking(settings.mlflow_tracking_uri(), run.run_id, offset)
                    manifest = train(catalog_root, settings_json, stage, data[stage], previous,
                                     base, name, tracking)  # fmt: skip
                else:
                    print(f"stage {stage}: skipped, checkpoints version {manifest.version} exists")
                    tracker.client.set_tag(run.run_id, "skipped", "true")
                folder = model_dir(catalog, manifest)
                for m in spec.inputs:
                    run.log_dataset(m, "input")
                run.log_dataset(manifest, "output")
                run.log_params({"catalog_version": manifest.version, "step_offset": offset,
                                "work_dir": spec.work_dir(settings)})  # fmt: skip
                registered = register_checkpoint(tracker.client, settings, run.run_id, folder,
                                                 manifest, name, stage)  # fmt: skip
            steps = int(manifest.stats.get("steps", 0))
            final = manifest.stats.get("final_metrics", {})
            out["checkpoints"][stage] = manifest.version
            out["model_dirs"][stage] = str(folder)
            out["work_dirs"].append(str(spec.work_dir(settings)))
            out["stages"][stage] = {
                "steps": steps, "step_offset": offset, "skipped": skipped,
                "final_reward": final.get("reward"), "final_loss": final.get("loss"),
                "seconds": manifest.stats.get("seconds"), "model_version": registered,
            }  # fmt: skip
            offset = end_step(manifest)
            previous, base = manifest, str(folder)
    last = order[-1] if order else None
    out["final"] = {"stage": last, "checkpoint": out["checkpoints"].get(last),
                    "model_dir": out["model_dirs"].get(last)}  # fmt: skip
    out["mlflow_run_id"] = tracker.run_id
    return out
