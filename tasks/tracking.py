"""The one MLflow tracking helper: a parent run per flow run, a nested run per stage.

Everything goes through an explicit `MlflowClient` and explicit run ids (MLflow's fluent API
keeps the active run per thread, and Prefect runs tasks in worker threads). Flows own the
tracker; tasks stay pure and return manifests whose stats the flow logs.

Lineage: every manifest a stage reads or writes is logged as a dataset input of the stage's
run, tagged with context `input` or `output` and carrying the manifest's content digest, so
the MLflow UI's dataset panel shows what each run consumed and produced.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunStatus

from conf import Settings
from data_catalog import Manifest

PARAM_BATCH = 100
MAX_PARAM_CHARS = 6000


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        dotted = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            out.update(flatten(item, f"{dotted}."))
        else:
            out[dotted] = item
    return out


@dataclass
class StageRun:
    tracker: Tracker
    name: str
    run_id: str
    started: float = field(default_factory=time.perf_counter)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.tracker.log_params(self.run_id, params)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        self.tracker.log_metrics(self.run_id, metrics, step)

    def log_dataset(self, manifest: Manifest, context: str) -> None:
        self.tracker.log_dataset(self.run_id, manifest, context)

    def log_manifest_stats(self, manifest: Manifest, prefix: str | None = None) -> None:
        """Numeric manifest stats (kept/dropped counts, throughput) as metrics."""
        prefix = prefix if prefix is not None else f"{manifest.name}."
        numeric = {
            f"{prefix}{k}": float(v)
            for k, v in flatten(manifest.stats).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        numeric[f"{prefix}rows"] = float(manifest.rows)
        self.log_metrics(numeric)


class Tracker:
    """Owns one parent MLflow run; `stage()` opens nested runs beneath it."""

    def __init__(self, client: MlflowClient, experiment_id: str, run_id: str) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.run_id = run_id

    @classmethod
    def start(
        cls,
        settings: Settings,
        run_name: str,
        *,
        tags: Mapping[str, str] | None = None,
        log_config: bool = True,
    ) -> Tracker:
        client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri())
        experiment = client.get_experiment_by_name(settings.mlflow.experiment)
        # A configured tracking server keeps artifacts where it likes; the local store here.
        ours = (
            None
            if settings.mlflow.tracking_uri
            else settings.path("mlartifacts").resolve().as_uri()
        )
        if experiment is None:
            experiment_id = client.create_experiment(
                settings.mlflow.experiment, artifact_location=ours
            )
        else:
            experiment_id = experiment.experiment_id
            if ours is not None and experiment.artifact_location != ours:
                # The sqlite store keeps the location it was created with: after a data root
                # is moved or copied, new runs' artifacts would land in the old one.
                logging.getLogger(__name__).warning(
                    "MLflow experiment %r keeps its artifacts in %s, not under this data root "
                    "(%s): was the data root moved or copied? New runs' artifacts go there.",
                    settings.mlflow.experiment, experiment.artifact_location, ours,
                )  # fmt: skip
        all_tags = {"profile": settings.profile, **_prefect_tags(), **(tags or {})}
        run = client.create_run(experiment_id, run_name=run_name, tags=all_tags)
        tracker = cls(client, experiment_id, run.info.run_id)
        if log_config:
            tracker.log_params(run.info.run_id, settings.model_dump(mode="json"))
        return tracker

    @contextmanager
    def stage(self, name: str, *, tags: Mapping[str, str] | None = None) -> Iterator[StageRun]:
        run = self.client.create_run(
            self.experiment_id,
            run_name=name,
            tags={"mlflow.parentRunId": self.run_id, "stage": name, **(tags or {})},
        )
        stage = StageRun(self, name, run.info.run_id)
        try:
            yield stage
        except BaseException:
            self.client.set_terminated(stage.run_id, RunStatus.to_string(RunStatus.FAILED))
            raise
        stage.log_metrics({"stage_seconds": time.perf_counter() - stage.started})
        self.client.set_terminated(stage.run_id, RunStatus.to_string(RunStatus.FINISHED))

    def finish(self, ok: bool = True) -> None:
        status = RunStatus.FINISHED if ok else RunStatus.FAILED
        self.client.set_terminated(self.run_id, RunStatus.to_string(status))

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        """`with Tracker.start(...) as tracker:` ends the parent run FAILED on an exception
        (the exception propagates), FINISHED otherwise."""
        self.finish(ok=exc_type is None)

    # ---- logging -----------------------------------------------------------------------
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        flat = [Param(key, _param_value(value)) for key, value in sorted(flatten(params).items())]
        for i in range(0, len(flat), PARAM_BATCH):
            self.client.log_batch(run_id, params=flat[i : i + PARAM_BATCH])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        stamp = int(time.time() * 1000)
        batch = [Metric(k, float(v), stamp, step) for k, v in metrics.items()]
        for i in range(0, len(batch), 1000):
            self.client.log_batch(run_id, metrics=batch[i : i + 1000])

    def log_dataset(self, run_id: str, manifest: Manifest, context: str) -> None:
        dataset = Dataset(
            name=manifest.name,
            digest=manifest.content_digest[:32],
            source_type="literesearcher-catalog",
            source=json.dumps({"uri": manifest.location, "version": manifest.version}),
            schema=json.dumps({"files": manifest.files[:50]}),
            profile=json.dumps(
                {
                    "rows": manifest.rows,
                    "version": manifest.version,
                    "inputs": [i.model_dump() for i in manifest.inputs],
                }
            ),
        )
        tags = [InputTag("mlflow.data.context", context)]
        self.client.log_inputs(run_id, datasets=[DatasetInput(dataset, tags)])


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:MAX_PARAM_CHARS]


def _prefect_tags() -> dict[str, str]:
    """The Prefect flow run this MLflow run belongs to, when inside one."""
    try:
        from prefect.runtime import flow_run
    except ImportError:
        return {}
    run_id = flow_run.get_id()
    if not run_id:
        return {}
    return {"prefect.flow_run_id": str(run_id), "prefect.flow_name": str(flow_run.get_flow_name())}
