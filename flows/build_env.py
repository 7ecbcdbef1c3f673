"""The build-env flow: a corpus in, a searchable and browsable local web out.

    ingest (stream, normalize, quarantine, bucket by URL hash)   [corpus_staging, quarantine]
      -> exact-text duplicates (global, small columns)           [text_duplicates]
      -> per-shard dedup into N Parquet shards (Dask)            [corpus_shards]
      -> per-shard passages (Dask)                                [passages]
      -> per-shard embeddings (unless BM25 only)                  [embeddings]
      -> per-shard loads: lexical (+ vector) index, page store    [search_index, page_store]

Every stage is resumable at shard granularity: a part the catalog holds is never redone, and
loads are idempotent. Kill the flow at any point and run it again. One MLflow parent run holds
the parameters; a nested run per stage holds counts, throughput and dataset lineage.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture, as_completed
from tqdm.auto import tqdm

from conf import Settings, load_settings
from data_catalog import Catalog, Manifest
from env_service.stores.factory import (
    open_lexical_index,
    open_page_store,
    open_vector_index,
    store_locations,
)
from tasks import build_env as t
from tasks.corpus.load import finish_page_store, marker_path, prepare_store
from tasks.corpus.work import PartTarget, shard_part
from tasks.tracking import StageRun, Tracker


@contextlib.contextmanager
def dask_cluster(settings: Settings) -> Iterator[Any]:
    """A client for `dask.scheduler_address`, or for a LocalCluster started here."""
    from distributed import Client, LocalCluster

    d = settings.dask
    if d.scheduler_address:
        with Client(d.scheduler_address, set_as_default=True) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=d.n_workers, threads_per_worker=d.threads_per_worker,
            memory_limit=d.memory_limit, processes=True, dashboard_address=None,
            silence_logs=logging.WARNING,
        ) as cluster,
        Client(cluster, set_as_default=True) as client,
    ):  # fmt: skip
        yield client


def run_parts(futures: list[PrefectFuture], desc: str, unit: str, count_key: str,
              per: str = "shard") -> list[dict]:  # fmt: skip
    """Wait for task futures with a progress bar (one tick per task, rows done so far); a task
    returns one result dict or, when it loads a group of shards, a list of them."""
    results: list[dict] = []
    total_rows = 0
    bar = tqdm(total=len(futures), desc=desc, unit=per, file=sys.stderr, leave=False,
               dynamic_ncols=True, mininterval=0.5)  # fmt: skip
    for future in as_completed(futures):
        result = future.result()
        batch = result if isinstance(result, list) else [result]
        results.extend(batch)
        total_rows += sum(int(r.get(count_key, 0)) for r in batch)
        bar.set_postfix({unit: total_rows})
        bar.update(1)
    bar.close()
    return results


def _finish_stage(stage: StageRun, out: Manifest, inputs: list[Manifest], rows: int,
                  started: float) -> None:  # fmt: skip
    for m in inputs:
        stage.log_dataset(m, "input")
    stage.log_dataset(out, "output")
    stage.log_manifest_stats(out)
    elapsed = max(time.perf_counter() - started, 1e-9)
    stage.log_metrics({"rows_per_s": rows / elapsed, "seconds": elapsed})


@flow(name="build_environment", log_prints=True)
def build_environment(
    inputs: list[str],
    fmt: str = "auto",
    num_shards: int | None = None,
    profile: str | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Build (or resume building) the local web from `inputs`; returns versions and counts."""
    settings = load_settings(profile, overrides or [])
    if num_shards is not None:
        settings.corpus.num_shards = num_shards
    sources = t.describe_sources(inputs, fmt, settings)
    catalog_root = settings.uri(settings.catalog.root)
    catalog = Catalog(catalog_root)
    n = settings.corpus.num_shards
    tracker = Tracker.start(settings, "build_environment", tags={"flow": "build_environment"})
    tracker.log_params(tracker.run_id, {"build.inputs": inputs, "build.format": fmt,
                                        "build.num_shards": n})  # fmt: skip
    timings: dict[str, float] = {}
    # Wall-clock start of each stage (and "end"): lets a memory sampler attribute its peaks.
    marks: dict[str, float] = {}
    try:
        with dask_cluster(settings):
            marks["ingest"] = time.time()
            started = time.perf_counter()
            with tracker.stage("ingest") as stage:
                target = t.staging_target(settings, sources)
                pw = target.writer()
                if pw.sealed is None:
                    t.ingest_sources(settings, target)
                staging = pw.seal()
                quarantine = t.collect_quarantine(catalog_root, staging)
                _finish_stage(stage, staging, [], staging.stats.get("records", 0), started)
                stage.log_dataset(quarantine, "output")
                stage.log_manifest_stats(quarantine)
            timings["ingest"] = time.perf_counter() - started

            marks["shard"] = time.time()
            started = time.perf_counter()
            with tracker.stage("shard") as stage:
                losers = t.find_text_duplicates(settings, staging)
                target = PartTarget(catalog_root, "corpus_shards", [staging, losers],
                                    {"num_shards": n}, t.CODE_DEDUP)  # fmt: skip
                shards = _run_stage(target, n, lambda i: t.dedup_shard_task.submit(
                    settings, target, i, staging, losers), "dedup", "pages", "pages")  # fmt: skip
                _finish_stage(stage, shards, [staging, losers], shards.rows, started)
            timings["shard"] = time.perf_counter() - started

            marks["passages"] = time.time()
            started = time.perf_counter()
            with tracker.stage("passages") as stage:
                c = settings.corpus
                target = PartTarget(catalog_root, "passages", [shards],
                                    {"words": c.passage_words, "overlap": c.passage_overlap},
                                    t.CODE_PASSAGES)  # fmt: skip
                passages = _run_stage(target, n, lambda i: t.passages_shard_task.submit(
                    target, i, shards, c.passage_words, c.passage_overlap),
                    "passages", "passages", "passages")  # fmt: skip
                _finish_stage(stage, passages, [shards], shards.rows, started)
            timings["passages"] = time.perf_counter() - started

            embeddings = None
            if settings.index.retrieval_mode != "bm25":
                marks["embed"] = time.time()
                started = time.perf_counter()
                with tracker.stage("embed") as stage:
                    e = settings.embedding
                    target = PartTarget(catalog_root, "embeddings", [passages],
                                        {"model": e.model_path, "max_length": e.max_length,
                                         "dim": settings.index.dense_dim}, t.CODE_EMBED)  # fmt: skip
                    embeddings = _run_stage(target, n, lambda i: t.embed_shard_task.submit(
                        settings, target, i, passages), "embed", "passages", "passages")  # fmt: skip
                    _finish_stage(stage, embeddings, [passages], embeddings.rows, started)
                timings["embed"] = time.perf_counter() - started

        # The loads run in this process (one writer per store), so the Dask workers are shut
        # down first: their idle memory would otherwise add to the load stage's peak.
        marks["load"] = time.time()
        started = time.perf_counter()
        with tracker.stage("load") as stage:
            search_index, page_store = _load_stores(settings, catalog_root, shards, passages,
                                                    embeddings, n)  # fmt: skip
            ins = [m for m in (passages, embeddings) if m is not None]
            _finish_stage(stage, search_index, ins, shards.rows, started)
            stage.log_dataset(shards, "input")
            stage.log_dataset(page_store, "output")
            stage.log_manifest_stats(page_store)
        timings["load"] = time.perf_counter() - started
        marks["end"] = time.time()
    except BaseException:
        tracker.finish(ok=False)
        raise
    total = sum(timings.values())
    tracker.log_metrics(tracker.run_id, {
        "pages": float(shards.rows), "passages": float(passages.rows),
        "pages_per_s_end_to_end": shards.rows / max(total, 1e-9),
        **{f"seconds_{k}": v for k, v in timings.items()},
    })  # fmt: skip
    tracker.finish()
    return {
        "versions": {m.name: m.version for m in (staging, quarantine, losers, shards, passages,
                                                 search_index, page_store) if m is not None},
        "records": int(staging.stats.get("records", 0)),
        "quarantined": quarantine.rows,
        "pages": shards.rows,
        "passages": passages.rows,
        "duplicates": {"url": shards.stats.get("duplicate_url", 0),
                       "text": shards.stats.get("duplicate_text", 0)},
        "seconds": timings,
        "stage_started_at": marks,
        "catalog": str(catalog.root_url),
        "mlflow_run_id": tracker.run_id,
    }  # fmt: skip


def _run_stage(target: PartTarget, n: int, submit: Any, desc: str, unit: str, key: str) -> Manifest:
    """Submit the shard tasks the catalog does not hold yet, then seal the version."""
    pw = target.writer()
    sealed = pw.sealed
    if sealed is not None:
        return sealed
    done = pw.done_parts()
    futures = [submit(i) for i in range(n) if shard_part(i) not in done]
    run_parts(futures, desc, unit, key)
    return pw.seal()


def _load_stores(settings: Settings, catalog_root: str, shards: Manifest, passages: Manifest,
                 embeddings: Manifest | None, n: int) -> tuple[Manifest, Manifest]:  # fmt: skip
    ix = settings.index
    markers = settings.path("stores")
    # Where each store lives, as the versions' keys name it: paths inside data_root relative
    # to it (`Settings.portable`), so a copied data root does not rebuild its stores.
    lexical_loc, vector_loc, page_loc = store_locations(settings, settings.portable)
    index_target = PartTarget(
        catalog_root, "search_index", [m for m in (passages, embeddings) if m is not None],
        {"lexical": lexical_loc, "vectors": vector_loc if embeddings else None,
         "retrieval_mode": ix.retrieval_mode}, t.CODE_LOAD,
    )  # fmt: skip
    page_target = PartTarget(catalog_root, "page_store", [shards], {"store": page_loc},
                             t.CODE_LOAD)  # fmt: skip
    lexical = open_lexical_index(settings, writable=True)
    vectors = open_vector_index(settings, writable=True) if embeddings is not None else None
    store = open_page_store(settings, writable=True)
    lexical_open = True
    try:
        iw, pw = index_target.writer(), page_target.writer()
        skip_index = prepare_store(lexical, marker_path(markers, "lexical", lexical_loc),
                                   iw.version, iw.done_parts())  # fmt: skip
        if vectors is not None:
            skip_index &= prepare_store(vectors, marker_path(markers, "vectors", vector_loc),
                                        iw.version, iw.done_parts())  # fmt: skip
        skip_pages = prepare_store(store, marker_path(markers, "pages", page_loc), pw.version,
                                   pw.done_parts())  # fmt: skip
        # The index and the page store load one after the other, not concurrently: each
        # store's writer memory would otherwise add to the other's at the load stage's peak.
        todo = [i for i in range(n) if shard_part(i) not in skip_index]
        step = ix.load_commit_shards
        index_futures = [
            t.load_index_shards_task.submit(index_target, todo[k : k + step], lexical, vectors,
                                            passages, embeddings)
            for k in range(0, len(todo), step)
        ]  # fmt: skip
        run_parts(index_futures, "index", "passages", "passages", per="group")
        lexical.close()  # the writer's memory (heap, merge threads) is freed before the pages
        lexical_open = False
        page_futures = [
            t.load_pages_shard_task.submit(page_target, i, store, shards)
            for i in range(n) if shard_part(i) not in skip_pages
        ]  # fmt: skip
        run_parts(page_futures, "page store", "pages", "pages")
        finish_page_store(store)  # the lookup index, built once after the bulk loads
        return iw.seal(), pw.seal()
    finally:
        if lexical_open:
            lexical.close()
        store.close()
        if vectors is not None:
            vectors.close()
