"""`literesearcher compare`: curricula side by side, read from MLflow."""

from __future__ import annotations

import argparse
import json

from conf import Settings


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "compare",
        help=help_text,
        description="Print one row per (curriculum, stage) tag pair with the final train "
        "reward and pass rate and the eval scores of its newest runs: the table the MLflow "
        "UI's compare view shows.",
    )
    p.add_argument("--experiment", default=None, help="MLflow experiment (default: from conf)")
    p.add_argument(
        "--metric",
        dest="metrics",
        action="append",
        default=None,
        metavar="PATTERN",
        help="metric name pattern, wildcards per '/' segment (repeatable; default: "
        "train/reward, train/pass_rate and eval/*/pass_at_1, avg_at_*, pass_at_*)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from mlflow import MlflowClient
    from rich.console import Console
    from rich.table import Table

    from tasks.evaluation.compare import DEFAULT_METRICS, compare

    experiment = args.experiment or settings.mlflow.experiment
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri())
    try:
        result = compare(client, experiment, args.metrics or DEFAULT_METRICS)
    except LookupError as exc:
        print(f"literesearcher compare: {exc}")
        return 1
    if args.json:
        rows = [
            {"curriculum": r.curriculum, "stage": r.stage, "runs": r.runs, **r.values}
            for r in result.rows
        ]
        print(json.dumps({"experiment": experiment, "rows": rows}, indent=2))
        return 0
    if not result.rows:
        print(f"no runs tagged with a curriculum logged these metrics in {experiment!r}")
        return 0
    table = Table(title=f"curricula in {experiment}")
    for column in ("curriculum", "stage", "runs", *result.metrics):
        table.add_column(column, justify="left" if column in ("curriculum", "stage") else "right")
    for r in result.rows:
        cells = [f"{r.values[m]:.4g}" if m in r.values else "-" for m in result.metrics]
        table.add_row(r.curriculum, r.stage, str(r.runs), *cells)
    Console(width=max(120, 24 * (len(result.metrics) + 3))).print(table)
    return 0
