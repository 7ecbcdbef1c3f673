"""Compare curricula from MLflow: one row per (curriculum, stage), one column per metric.

Runs are grouped by their `curriculum` and `stage` tags: the curriculum flow's nested run per
stage logs `train/reward`, `train/pass_rate`, ... per step, and the evaluation flow's run of
that stage's checkpoint logs `eval/<benchmark>/...`. For each metric the newest run of the
group that logged it wins, and the value is that run's latest (highest-step) value: the final
train reward, the eval score. A group none of whose runs logged a selected metric (such as the
curriculum flow's parent run) is left out. Metric patterns use shell wildcards per
`/`-separated segment: `eval/*/pass_at_1` matches `eval/gaia/pass_at_1` but not the
per-capability `eval/gaia/cap/Math/pass_at_1`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from mlflow import MlflowClient
from mlflow.entities import Run

DEFAULT_METRICS = (
    "train/reward",
    "train/pass_rate",
    "eval/*/pass_at_1",
    "eval/*/avg_at_*",
    "eval/*/pass_at_*",
)
CURRICULUM_TAG = "curriculum"
STAGE_TAG = "stage"


@dataclass
class ComparisonRow:
    curriculum: str
    stage: str
    runs: int = 0
    values: dict[str, float] = field(default_factory=dict)
    run_ids: dict[str, str] = field(default_factory=dict)  # metric -> the run it came from


@dataclass
class Comparison:
    experiment: str
    metrics: list[str]
    rows: list[ComparisonRow]


def metric_matches(key: str, pattern: str) -> bool:
    parts, pats = key.split("/"), pattern.split("/")
    return len(parts) == len(pats) and all(
        fnmatchcase(p, q) for p, q in zip(parts, pats, strict=True)
    )


def _runs(client: MlflowClient, experiment_id: str) -> Iterator[Run]:
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            max_results=1000,
            order_by=["attributes.start_time DESC"],
            page_token=token,
        )
        yield from page
        token = page.token
        if not token:
            return


def compare(
    client: MlflowClient, experiment: str, patterns: Sequence[str] = DEFAULT_METRICS
) -> Comparison:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise LookupError(f"MLflow has no experiment named {experiment!r}")
    groups: dict[tuple[str, str], ComparisonRow] = {}
    metrics: set[str] = set()
    for run in _runs(client, found.experiment_id):  # newest first: first value seen wins
        tags = run.data.tags
        if CURRICULUM_TAG not in tags:
            continue
        key = (tags[CURRICULUM_TAG], tags.get(STAGE_TAG, ""))
        row = groups.setdefault(key, ComparisonRow(*key))
        row.runs += 1
        for name, value in run.data.metrics.items():
            if name in row.values or not any(metric_matches(name, p) for p in patterns):
                continue
            row.values[name] = value
            row.run_ids[name] = run.info.run_id
            metrics.add(name)
    rows = [groups[k] for k in sorted(groups) if groups[k].values]
    return Comparison(experiment, sorted(metrics), rows)
