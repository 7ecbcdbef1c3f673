"""MLflow logging of an evaluation: one run per checkpoint x benchmark set, tagged with the
curriculum and stage it belongs to (what `literesearcher compare` and the MLflow UI group by)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from conf import Settings
from data_catalog import Manifest
from tasks.evaluation.metrics import ALL, GroupMetrics, metric_key
from tasks.tracking import Tracker


def eval_metrics(groups: Sequence[GroupMetrics]) -> dict[str, float]:
    """`eval/<benchmark>/<metric>` and `eval/<benchmark>/cap/<capability>/<metric>`."""
    out: dict[str, float] = {}
    for g in groups:
        prefix = (
            ("eval", g.benchmark)
            if g.capability == ALL
            else ("eval", g.benchmark, "cap", g.capability)
        )
        for name, value in g.metrics().items():
            out[metric_key(*prefix, name)] = value
    return out


def log_evaluation(
    settings: Settings,
    groups: Sequence[GroupMetrics],
    *,
    report: Manifest,
    report_dir: Path | None,
    rollouts: Mapping[str, Manifest],
    checkpoint: str,
    curriculum: str,
    stage: str,
    params: Mapping[str, object],
    tags: Mapping[str, str] | None = None,
) -> str:
    """Log one evaluation as its own MLflow run; returns the run id."""
    run_tags = {
        **(tags or {}),
        "flow": "evaluate",
        "curriculum": curriculum,
        "stage": stage,
        "checkpoint": checkpoint,
        "benchmarks": ",".join(sorted(rollouts)),
    }
    with Tracker.start(settings, f"eval-{checkpoint}", tags=run_tags, log_config=False) as tracker:
        tracker.log_params(tracker.run_id, params)
        tracker.log_metrics(tracker.run_id, eval_metrics(groups))
        for manifest in rollouts.values():
            tracker.log_dataset(tracker.run_id, manifest, "input")
        tracker.log_dataset(tracker.run_id, report, "output")
        if report_dir is not None:
            tracker.client.log_artifacts(tracker.run_id, str(report_dir), "report")
    return tracker.run_id
