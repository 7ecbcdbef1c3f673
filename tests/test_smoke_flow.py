from pathlib import Path

import pytest
from mlflow import MlflowClient

from conf import load_settings
from data_catalog import Catalog
from flows.smoke import smoke_flow


def test_smoke_flow_caches_on_rerun_and_records_lineage(prefect_server, tmp_path: Path):
    overrides = [f"data_root={tmp_path}"]
    first = smoke_flow(n=6, overrides=overrides)
    assert first["states"] == {"make_numbers": "Completed", "square_numbers": "Completed"}
    second = smoke_flow(n=6, overrides=overrides)
    assert second["states"] == {"make_numbers": "Cached", "square_numbers": "Cached"}
    assert second["versions"] == first["versions"]

    settings = load_settings("local", overrides)
    catalog = Catalog.from_settings(settings)
    squares = catalog.latest("smoke_squares")
    numbers = catalog.latest("smoke_numbers")
    assert squares is not None and numbers is not None
    assert squares.stats["sum_of_squares"] == sum(i * i for i in range(6))
    assert [i.digest for i in squares.inputs] == [numbers.content_digest]

    client = MlflowClient(settings.mlflow_tracking_uri())
    parent = client.get_run(second["mlflow_run_id"])
    assert parent.data.tags["profile"] == "local"
    assert parent.data.params["corpus.num_shards"] == str(settings.corpus.num_shards)
    assert "prefect.flow_run_id" in parent.data.tags
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    by_stage = {r.data.tags["stage"]: r for r in children}
    assert set(by_stage) == {"numbers", "squares"}
    logged = {
        (d.dataset.name, d.dataset.digest, d.tags[0].value)
        for d in by_stage["squares"].inputs.dataset_inputs
    }
    assert logged == {
        ("smoke_numbers", numbers.content_digest[:32], "input"),
        ("smoke_squares", squares.content_digest[:32], "output"),
    }
    assert by_stage["squares"].data.metrics["smoke_squares.rows"] == 6


def test_changed_parameter_recomputes(prefect_server, tmp_path: Path):
    overrides = [f"data_root={tmp_path}"]
    smoke_flow(n=3, overrides=overrides)
    changed = smoke_flow(n=4, overrides=overrides)
    assert changed["states"] == {"make_numbers": "Completed", "square_numbers": "Completed"}
    catalog = Catalog.from_settings(load_settings("local", overrides))
    assert sorted(m.rows for m in catalog.versions("smoke_numbers")) == [3, 4]


def test_tracker_context_ends_the_parent_run_failed_on_error(settings):
    from tasks.tracking import Tracker

    with Tracker.start(settings, "ok-run") as ok, ok.stage("s") as stage:
        stage.log_metrics({"x": 1.0})
    with pytest.raises(RuntimeError, match="boom"), Tracker.start(settings, "bad-run") as bad:
        raise RuntimeError("boom")
    client = MlflowClient(settings.mlflow_tracking_uri())
    assert client.get_run(ok.run_id).info.status == "FINISHED"
    assert client.get_run(bad.run_id).info.status == "FAILED"


def test_a_moved_data_root_warns_where_mlflow_keeps_its_artifacts(tmp_path: Path, caplog):
    """The sqlite store keeps the artifact location it was created with: a copied data root's
    runs would put their artifacts in the original one, and the tracker says so."""
    import logging
    import shutil

    from tasks.tracking import Tracker

    first = load_settings("local", [f"data_root={tmp_path / 'a'}"])
    Tracker.start(first, "first").finish()
    with caplog.at_level(logging.WARNING, logger="tasks.tracking"):
        Tracker.start(first, "again").finish()
    assert not caplog.records
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    moved = load_settings("local", [f"data_root={tmp_path / 'b'}"])
    with caplog.at_level(logging.WARNING, logger="tasks.tracking"):
        Tracker.start(moved, "moved").finish()
    assert "was the data root moved or copied?" in caplog.text
    assert (tmp_path / "a" / "mlartifacts").as_uri() in caplog.text
