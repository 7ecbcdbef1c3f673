"""The smoke flow: the pipeline's conventions end to end, in miniature.

Two cached tasks write catalog datasets (`smoke_numbers` -> `smoke_squares`); the flow logs a
parent MLflow run with a nested run per stage and each dataset's lineage. Run it twice and the
second run's tasks come back from the cache.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from prefect import flow

from conf import load_settings
from data_catalog import Catalog, Manifest
from tasks.common import catalog_task, code_version
from tasks.tracking import Tracker


@catalog_task
def make_numbers(catalog_root: str, n: int) -> Manifest:
    catalog = Catalog(catalog_root)
    params = {"n": n}
    version = code_version(make_numbers.fn)
    done = catalog.find("smoke_numbers", catalog.key("smoke_numbers", [], params, version))
    if done is not None:
        return done
    with catalog.create("smoke_numbers", params=params, code_version=version) as w:
        w.write_table(pa.table({"n": pa.array(range(n), pa.int64())}))
    assert w.manifest is not None
    return w.manifest


@catalog_task
def square_numbers(catalog_root: str, numbers: Manifest) -> Manifest:
    catalog = Catalog(catalog_root)
    version = code_version(square_numbers.fn)
    done = catalog.find("smoke_squares", catalog.key("smoke_squares", [numbers], {}, version))
    if done is not None:
        return done
    table = (
        catalog.read("smoke_numbers", numbers.version).select("n, n * n AS square").to_arrow_table()
    )
    with catalog.create("smoke_squares", inputs=[numbers], code_version=version) as w:
        w.write_table(table)
        w.stats["sum_of_squares"] = int(pc.sum(table["square"]).as_py() or 0)
    assert w.manifest is not None
    return w.manifest


@flow(name="smoke", log_prints=True)
def smoke_flow(n: int = 10, profile: str | None = None, overrides: list[str] | None = None) -> dict:
    """Run two cached catalog tasks and record them in MLflow; returns task states and ids."""
    settings = load_settings(profile, overrides or [])
    catalog_root = settings.uri(settings.catalog.root)
    with Tracker.start(settings, "smoke", tags={"flow": "smoke"}) as tracker:
        with tracker.stage("numbers") as stage:
            numbers_state = make_numbers(catalog_root, n, return_state=True)
            numbers = numbers_state.result()
            stage.log_dataset(numbers, "output")
            stage.log_manifest_stats(numbers)
        with tracker.stage("squares") as stage:
            squares_state = square_numbers(catalog_root, numbers, return_state=True)
            squares = squares_state.result()
            stage.log_dataset(numbers, "input")
            stage.log_dataset(squares, "output")
            stage.log_manifest_stats(squares)
    return {
        "states": {"make_numbers": numbers_state.name, "square_numbers": squares_state.name},
        "versions": {"smoke_numbers": numbers.version, "smoke_squares": squares.version},
        "mlflow_run_id": tracker.run_id,
    }
