import json
import time

import pytest
from mlflow import MlflowClient

from data_catalog import Catalog, Manifest
from flows.nightly_eval import nightly_eval
from tasks.evaluation.nightly import decide


def _checkpoint(catalog: Catalog, step: int) -> Manifest:
    with catalog.create("checkpoints", params={"step": step}) as w:
        (w.path / "config.json").write_text(f'{{"step": {step}}}')
    assert w.manifest is not None
    time.sleep(0.01)  # distinct `created` stamps
    return w.manifest


def _report(catalog: Catalog, checkpoint: Manifest) -> Manifest:
    with catalog.create("eval_reports", inputs=[checkpoint], params={"k": 1}) as w:
        (w.path / "report.md").write_text("# report")
    assert w.manifest is not None
    return w.manifest


def test_nothing_to_do_without_checkpoints(tmp_path):
    decision = decide(Catalog(tmp_path))
    assert decision.checkpoint is None and decision.skip_reason


def test_newest_unevaluated_checkpoint_is_chosen_and_evaluated_one_skipped(tmp_path):
    catalog = Catalog(tmp_path)
    old = _checkpoint(catalog, 5)
    _report(catalog, old)
    new = _checkpoint(catalog, 10)
    decision = decide(catalog)
    assert decision.checkpoint == new and decision.skip_reason is None
    report = _report(catalog, new)
    again = decide(catalog)
    assert again.checkpoint == new and again.report == report
    assert f"already evaluated by {report.version}" in (again.skip_reason or "")


def test_nightly_flow_skips_an_evaluated_checkpoint(settings):
    catalog = Catalog.from_settings(settings)
    _report(catalog, _checkpoint(catalog, 1))
    result = nightly_eval.fn(overrides=[f"data_root={settings.data_root}"])
    assert result["skipped"] is True
    assert result["checkpoint"] == catalog.latest("checkpoints").version


# ---- the MLflow model registry as the source of checkpoints ---------------------------------
MODEL = "literesearcher-policy"


def _register(client: MlflowClient, catalog: Catalog, checkpoint: Manifest, stage: str) -> str:
    """Register a checkpoint directory as a new version, tagged as the curriculum flow does."""
    if not client.search_registered_models(f"name = '{MODEL}'"):
        client.create_registered_model(MODEL)
    version = client.create_model_version(
        MODEL,
        source=str(catalog.path(checkpoint)),
        tags={"catalog_version": checkpoint.version, "curriculum": "mixed", "stage": stage},
    )
    return str(version.version)


def test_newest_registry_version_wins_over_the_catalog_and_is_skipped_once_evaluated(settings):
    catalog = Catalog.from_settings(settings)
    client = MlflowClient(settings.mlflow_tracking_uri())
    assert decide(catalog, client, MODEL).source == "catalog"  # no registered model yet
    first, second = _checkpoint(catalog, 1), _checkpoint(catalog, 2)
    _checkpoint(catalog, 3)  # newest in the catalog, but never registered
    assert _register(client, catalog, first, "stage1") == "1"
    assert _register(client, catalog, second, "stage2") == "2"

    decision = decide(catalog, client, MODEL)
    assert decision.skip_reason is None and decision.source == "registry"
    assert decision.checkpoint == second and decision.model_version is not None
    assert str(decision.model_version.version) == "2"
    assert (decision.curriculum, decision.stage) == ("mixed", "stage2")

    report = _report(catalog, second)
    again = decide(catalog, client, MODEL)
    assert again.checkpoint == second and again.report == report
    assert again.skip_reason == (
        f"{MODEL} version 2 (checkpoint {second.version}) already evaluated by {report.version}"
    )


def test_registry_version_without_a_catalog_checkpoint_fails_clearly(settings):
    catalog = Catalog.from_settings(settings)
    client = MlflowClient(settings.mlflow_tracking_uri())
    client.create_registered_model(MODEL)
    client.create_model_version(MODEL, source=str(settings.data_root), tags={"stage": "s1"})
    with pytest.raises(LookupError, match="version 1 has no 'catalog_version' tag"):
        decide(catalog, client, MODEL)
    client.create_model_version(
        MODEL, source=str(settings.data_root), tags={"catalog_version": "x"}
    )
    with pytest.raises(LookupError, match="names checkpoints version 'x', which the catalog"):
        decide(catalog, client, MODEL)


@pytest.mark.slow
def test_nightly_flow_evaluates_the_newest_registry_version_then_skips_it(
    prefect_server, settings, tmp_path
):
    """For real: the tiny HF policy as a registered checkpoint, evaluated by the nightly flow
    on a local benchmark file, then skipped by the next night's run."""
    from literesearcher.tiny_models import build_tiny_policy

    catalog = Catalog.from_settings(settings)
    client = MlflowClient(settings.mlflow_tracking_uri())
    old = _checkpoint(catalog, 1)
    with catalog.create("checkpoints", params={"step": 2}) as w:
        build_tiny_policy(w.path, seed=0)
    assert w.manifest is not None
    new = w.manifest
    _register(client, catalog, old, "stage1")
    _register(client, catalog, new, "stage2")
    bench = tmp_path / "seal_0.jsonl"
    bench.write_text(json.dumps({"question": "Capital of France?", "answer": "Paris"}) + "\n")
    overrides = [
        f"data_root={settings.data_root}", "rl.judge_mode=exact_match", "rl.max_turns=1",
        "rl.max_tokens_per_turn=8", "llm.device=cpu",
    ]  # fmt: skip

    first = nightly_eval.fn(benchmarks={"seal-0": str(bench)}, k=1, overrides=overrides)
    assert (first["skipped"], first["source"]) == (False, "registry")
    assert (first["checkpoint"], first["model_version"]) == (new.version, "2")
    run = client.get_run(first["result"]["mlflow_run_id"])
    assert run.data.tags["curriculum"] == "mixed" and run.data.tags["stage"] == "stage2"
    assert (run.data.tags["registered_model"], run.data.tags["model_version"]) == (MODEL, "2")
    assert run.data.metrics["eval/seal-0/samples"] == 1
    tags = client.get_model_version(MODEL, "2").tags
    assert tags["eval_report"] == first["result"]["eval_report"]
    assert tags["eval_run_id"] == first["result"]["mlflow_run_id"]

    second = nightly_eval.fn(benchmarks={"seal-0": str(bench)}, k=1, overrides=overrides)
    assert second["skipped"] is True and second["checkpoint"] == new.version
    assert f"already evaluated by {first['result']['eval_report']}" in second["reason"]
