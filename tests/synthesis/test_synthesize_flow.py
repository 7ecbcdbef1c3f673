"""The `synthesize_tasks` flow end to end (real Prefect, catalog, tantivy, DuckDB, MLflow),
and its CLI command."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow import MlflowClient

from data_catalog import Catalog
from literesearcher.cli import main
from tasks.synthesis.schema import CAPABILITIES, TASK_SCHEMA


def test_flow_writes_raw_and_filtered_tasks_with_counts(
    prefect_server, settings, world_dir: Path
) -> None:
    from flows.synthesize import synthesize_tasks

    overrides = [f"data_root={settings.data_root}"]
    result = synthesize_tasks(
        profile="local", overrides=overrides, world_dir=str(world_dir), per_capability=8, seed=3
    )
    catalog = Catalog.from_settings(settings)
    raw = catalog.latest("tasks_raw")
    kept = catalog.latest("tasks_filtered")
    assert raw is not None and kept is not None
    assert raw.rows == 8 * len(CAPABILITIES) == result["rows"]["tasks_raw"]
    assert raw.stats["per_capability"] == dict.fromkeys(CAPABILITIES, 8)
    # synthesis.max_answer_share 0.25: no answer is given to more than 2 of a capability's 8
    assert max(raw.stats["commonest_answer_share"].values()) == 0.25
    assert kept.inputs[0].version == raw.version
    assert catalog.to_arrow("tasks_filtered").schema.names == TASK_SCHEMA.names

    filters = kept.stats["filters"]
    assert list(filters) == [
        "answer_form", "answer_in_question", "dedup", "rubric_judge", "leakage", "answerability"
    ]  # fmt: skip
    assert filters["rubric_judge"]["skipped"] == "no judge endpoint configured"
    # Each step sees exactly what the previous kept; the last one's kept is the output.
    previous = raw.rows
    for name, stat in filters.items():
        assert stat["kept"] + stat["dropped"] == previous, name
        previous = stat["kept"]
    assert previous == kept.rows == sum(kept.stats["per_capability"].values())
    assert 0 < kept.rows < raw.rows  # real worlds leak some answers into snippets

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri())
    stage_runs = client.search_runs(
        [client.get_run(result["mlflow_run_id"]).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result['mlflow_run_id']}'",
    )
    metrics = {k for run in stage_runs for k in run.data.metrics}
    assert "tasks_raw.per_capability.statistics" in metrics
    assert "tasks_filtered.filters.leakage.kept" in metrics
    assert "tasks_filtered.commonest_answer_share.enumeration" in metrics

    again = synthesize_tasks(
        profile="local", overrides=overrides, world_dir=str(world_dir), per_capability=8, seed=3
    )
    assert again["versions"] == result["versions"]


def test_cli_synthesize_runs_the_flow(prefect_server, settings, world_dir, capsys) -> None:
    code = main(
        ["--profile", "local", "--set", f"data_root={settings.data_root}", "synthesize",
         "--world", str(world_dir), "--per-capability", "2", "--seed", "1"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    out, _ = json.JSONDecoder().raw_decode(printed[printed.index('{\n  "versions"') :])
    assert out["rows"]["tasks_raw"] == 2 * len(CAPABILITIES)


def test_tasks_are_found_again_when_the_world_moves(tmp_path: Path, world_dir: Path) -> None:
    """The world's path is not in the key: a copied data root finds its tasks (was: redone)."""
    import shutil

    from flows.synthesize import generate_tasks as task

    generate_tasks = task.fn  # the catalog's own cache, without Prefect's
    moved = tmp_path / "elsewhere" / "world"
    shutil.copytree(world_dir, moved)
    catalog_root = str(tmp_path / "catalog")
    first = generate_tasks(catalog_root, str(world_dir), ["enumeration"], 4, 0, 20, 0.25)
    again = generate_tasks(catalog_root, str(moved), ["enumeration"], 4, 0, 20, 0.25)
    assert again.version == first.version
    assert [m.version for m in Catalog(catalog_root).versions("tasks_raw")] == [first.version]
    assert first.stats["world_dir"] == str(world_dir)
    other = generate_tasks(catalog_root, str(moved), ["enumeration"], 4, 1, 20, 0.25)
    assert other.version != first.version  # the seed is still keyed
