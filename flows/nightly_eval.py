"""The nightly evaluation: evaluate the newest checkpoint unless it was evaluated already.

Scheduled by the `nightly-eval` deployment (prefect.yaml, cron 0 3 * * *). The candidate is
the newest version of the MLflow registered model `mlflow.registered_model`, else the newest
`checkpoints` catalog version (`tasks.evaluation.nightly.decide`). The evaluation itself is
the `evaluate` flow of `flows/evaluate.py`, run as a subflow; a registry version is then
tagged with the eval report and MLflow run that cover it.
"""

from __future__ import annotations

from typing import Any

from mlflow import MlflowClient
from prefect import flow

from conf import load_settings
from data_catalog import Catalog
from tasks.evaluation.nightly import EVAL_REPORT_TAG, EVAL_RUN_TAG, decide


@flow(name="nightly_eval", log_prints=True)
def nightly_eval(
    benchmarks: dict[str, str] | None = None,
    k: int = 1,
    profile: str | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Returns what was decided: the checkpoint version, where it came from (registry or
    catalog), and whether it was skipped and why."""
    settings = load_settings(profile, overrides or [])
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri())
    model = settings.mlflow.registered_model
    decision = decide(Catalog.from_settings(settings), client, model)
    checkpoint, version = decision.checkpoint, decision.model_version
    summary: dict[str, Any] = {
        "checkpoint": checkpoint.version if checkpoint else None,
        "source": decision.source,
        "model_version": str(version.version) if version else None,
    }
    if decision.skip_reason is not None:
        print(f"nightly eval: skipped, {decision.skip_reason}")
        return {**summary, "skipped": True, "reason": decision.skip_reason}
    assert checkpoint is not None
    try:
        from flows.evaluate import evaluate
    except ImportError as exc:
        raise RuntimeError(
            "the nightly evaluation needs the `evaluate` flow (flows/evaluate.py), which is not "
            f"available in this version: {exc}"
        ) from exc
    origin = f" ({model} version {version.version})" if version else ""
    print(f"nightly eval: evaluating checkpoint {checkpoint.version}{origin}")
    tags = {"registered_model": model, "model_version": str(version.version)} if version else {}
    result = evaluate(
        checkpoint=checkpoint.version,
        benchmarks=benchmarks or {},
        k=k,
        curriculum=decision.curriculum,
        stage=decision.stage,
        profile=profile,
        overrides=overrides,
        tags=tags,
    )
    if version is not None:
        client.set_model_version_tag(model, version.version, EVAL_REPORT_TAG, result["eval_report"])
        client.set_model_version_tag(model, version.version, EVAL_RUN_TAG, result["mlflow_run_id"])
    return {**summary, "skipped": False, "result": result}
