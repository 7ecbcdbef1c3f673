"""Prefect tasks of the build-env flow: one task per stage per shard, each idempotent.

Dataset-producing tasks (ingest, text duplicates, quarantine, dedup, passages, embeddings) are
`catalog_task`s: cached on their inputs' digests, and they first ask the catalog whether the
part or version exists. CPU-bound work is sent to the Dask cluster the flow holds (the default
client); workers commit catalog parts themselves. Store loads run in the flow's process (one
writer per store) and are not cached by Prefect: the catalog plus the store's build marker
decide what is loaded, because a store can be cleared behind Prefect's back.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NONE

from conf import Settings
from data_catalog import Catalog, Manifest
from env_service.stores.base import LexicalIndex, PageStore, VectorIndex
from tasks.common import catalog_task, code_version
from tasks.corpus import embed, html, ingest, load, normalize, passages, readers, shard, work
from tasks.corpus.ingest import IngestSpec, ingest_slot
from tasks.corpus.readers import resolve_source
from tasks.corpus.work import PartTarget, shard_part

CODE_INGEST = code_version(readers, html, normalize, ingest, shard.BucketWriter)
CODE_DEDUP = code_version(shard)
CODE_PASSAGES = code_version(passages, work.passages_part)
CODE_EMBED = code_version(embed)
CODE_LOAD = code_version(load)
_STORE_LOCKS: dict[int, threading.Lock] = {}
_EMBEDDERS: dict[tuple[str, str], embed.Embedder] = {}


def dask_client() -> Any:
    from distributed import default_client

    return default_client()


def describe_sources(inputs: list[str], fmt: str, settings: Settings) -> list[dict[str, Any]]:
    """Resolved sources with a fingerprint (size, mtime) that keys the ingest. A source inside
    `data_root` is named relative to it (`Settings.portable`), so a copied data root (mtimes
    kept: `cp -a`, `rsync -a`) does not ingest again."""
    out = []
    for raw in inputs:
        path, resolved = resolve_source(Path(raw), fmt)
        path = path.resolve()
        if path.is_dir():
            files = [p for p in path.rglob("*") if p.is_file()]
            size = sum(p.stat().st_size for p in files)
            mtime = max((p.stat().st_mtime_ns for p in files), default=0)
        else:
            stat = path.stat()
            size, mtime = stat.st_size, stat.st_mtime_ns
        out.append({"path": settings.portable(path), "format": resolved, "size": size,
                    "mtime_ns": mtime})  # fmt: skip
    return out


def staging_target(settings: Settings, sources: list[dict[str, Any]]) -> PartTarget:
    c = settings.corpus
    params = {
        "sources": sources,
        "num_shards": c.num_shards,
        "chunk_records": c.ingest_chunk_records,
        "max_record_bytes": c.max_record_bytes,
        "max_title_chars": c.max_title_chars,
        "max_doc_bytes": c.max_doc_bytes,
        "max_url_bytes": c.max_url_bytes,
        "min_text_chars": c.min_text_chars,
    }
    return PartTarget(settings.uri(settings.catalog.root), "corpus_staging", [], params,
                      CODE_INGEST)  # fmt: skip


@catalog_task(name="ingest")
def ingest_sources(settings: Settings, target: PartTarget) -> dict[str, int]:
    """Fan the sources out to every Dask worker slot; each commits its chunks as parts."""
    p = target.params
    spec = IngestSpec(
        target.catalog_root, target.name, p, target.code_version, p["num_shards"],
        p["chunk_records"], p["max_record_bytes"], p["max_title_chars"], p["max_doc_bytes"],
        p["max_url_bytes"], p["min_text_chars"],
    )  # fmt: skip
    client = dask_client()
    slots = max(1, sum(client.nthreads().values()))
    paths = [str(settings.unportable(s["path"])) for s in p["sources"]]
    futures = [
        client.submit(ingest_slot, spec, paths[i], s["format"], i, slot, slots, pure=False)
        for i, s in enumerate(p["sources"])
        for slot in range(slots)
    ]
    totals: dict[str, int] = {}
    for counts in client.gather(futures):
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
    return totals


@catalog_task(name="quarantine")
def collect_quarantine(catalog_root: str, staging: Manifest) -> Manifest:
    """One `quarantine` version: every rejected record of every staging part, with reasons."""
    import duckdb

    catalog = Catalog(catalog_root)
    key = catalog.key("quarantine", [staging], {}, CODE_INGEST)
    found = catalog.find("quarantine", key)
    if found is not None:
        return found
    base = Path(staging.location)
    files = [str(base / f) for f in staging.files if f.endswith(ingest.QUARANTINE_FILE)]
    with catalog.create("quarantine", inputs=[staging], code_version=CODE_INGEST) as w:
        out = w.path / "part-0.parquet"
        con = duckdb.connect()
        if files:
            rel = con.read_parquet(files)
            rel.write_parquet(str(out), compression="zstd")
            reasons = con.execute(
                "SELECT reason, count(*) FROM read_parquet(?) GROUP BY reason", [files]
            ).fetchall()
        else:
            import pyarrow.parquet as pq

            pq.write_table(ingest.QUARANTINE_SCHEMA.empty_table(), out)
            reasons = []
        con.close()
        w.stats = {f"quarantined_{reason}": int(n) for reason, n in reasons}
        w.rows = sum(int(n) for _, n in reasons)
    assert w.manifest is not None
    return w.manifest


def bucket_files(staging: Manifest, shard_index: int | None = None) -> list[str]:
    base = Path(staging.location)
    suffix = shard.bucket_file(shard_index) if shard_index is not None else None
    return [
        str(base / f)
        for f in staging.files
        if f.rsplit("/", 1)[-1].startswith("bucket-") and (suffix is None or f.endswith(suffix))
    ]


@catalog_task(name="text-duplicates")
def find_text_duplicates(settings: Settings, staging: Manifest) -> Manifest:
    catalog = Catalog(settings.uri(settings.catalog.root))
    key = catalog.key("text_duplicates", [staging], {}, CODE_DEDUP)
    found = catalog.find("text_duplicates", key)
    if found is not None:
        return found
    with catalog.create("text_duplicates", inputs=[staging], code_version=CODE_DEDUP) as w:
        counts = shard.find_text_duplicates(
            bucket_files(staging), w.path / "part-0.parquet",
            memory_limit=settings.corpus.dedup_memory_limit,
            temp_dir=settings.path("tmp/duckdb"), threads=settings.dask.n_workers,
        )  # fmt: skip
        w.rows = counts["text_duplicate_urls"]
        w.stats.update(counts)
    assert w.manifest is not None
    return w.manifest


@catalog_task(name="dedup-shard")
def dedup_shard_task(settings: Settings, target: PartTarget, shard_index: int,
                     staging: Manifest, losers: Manifest) -> dict[str, Any]:  # fmt: skip
    losers_file = str(Path(losers.location) / "part-0.parquet")
    future = dask_client().submit(
        work.dedup_part, target, shard_index, bucket_files(staging, shard_index), losers_file,
        settings.corpus.dedup_memory_limit, str(settings.path("tmp/duckdb")), pure=False,
    )  # fmt: skip
    return dict(future.result())


@catalog_task(name="passages-shard")
def passages_shard_task(target: PartTarget, shard_index: int, shards: Manifest,
                        words: int, overlap: int) -> dict[str, Any]:  # fmt: skip
    future = dask_client().submit(
        work.passages_part, target, shard_index, part_files(shards, shard_index), words,
        overlap, pure=False,
    )  # fmt: skip
    return dict(future.result())


def part_files(manifest: Manifest, shard_index: int) -> list[str]:
    prefix = f"parts/{shard_part(shard_index)}/"
    base = Path(manifest.location)
    return [
        str(base / f) for f in manifest.files if f.startswith(prefix) and f.endswith(".parquet")
    ]


@catalog_task(name="embed-shard")
def embed_shard_task(settings: Settings, target: PartTarget, shard_index: int,
                     passages_manifest: Manifest) -> dict[str, Any]:  # fmt: skip
    """Embed one shard in this process (the GPU lives here); its own part, retried alone."""
    e = settings.embedding
    if not e.model_path:
        raise ValueError("retrieval needs embeddings but embedding.model_path is not set")
    model_path = str(settings.path(e.model_path))
    cache_key = (model_path, e.device)
    if cache_key not in _EMBEDDERS:
        _EMBEDDERS[cache_key] = embed.Embedder(model_path, e.device, e.batch_size, e.max_length,
                                               e.fp16)  # fmt: skip
    started = time.perf_counter()
    with target.writer().part(shard_part(shard_index)) as w:
        rows = 0
        for file in part_files(passages_manifest, shard_index):
            rows += embed.embed_passages(
                _EMBEDDERS[cache_key], Path(file), w.path / f"part-{rows}.parquet",
                expected_dim=settings.index.dense_dim,
            )  # fmt: skip
        w.rows = rows
        w.stats.update({"passages": rows, "seconds": time.perf_counter() - started})
    return {"shard": shard_index, "passages": rows}


@task(name="load-index-shards", cache_policy=NONE, retries=2, retry_delay_seconds=2)
def load_index_shards_task(target: PartTarget, shard_indices: list[int], lexical: LexicalIndex,
                           vectors: VectorIndex | None, passages_manifest: Manifest,
                           embeddings: Manifest | None) -> list[dict[str, Any]]:  # fmt: skip
    """Load a group of shards into the index with ONE commit, then record each shard as loaded.

    A shard's catalog part (its done-record) is written only after the commit that covers it:
    a kill before the commit loses the group's uncommitted adds and marks nothing done, so a
    re-run loads the group again (replace-by-part: nothing doubles). Fewer commits mean fewer,
    larger new segments, so fewer background merges while the build runs."""
    done: list[tuple[int, int, int, float]] = []
    with _lock_for(lexical):
        for i in shard_indices:
            started = time.perf_counter()
            files = [Path(f) for f in part_files(passages_manifest, i)]
            n = load.load_lexical_shard(lexical, files, commit=False)
            done.append((i, n, 0, time.perf_counter() - started))
        started = time.perf_counter()
        lexical.commit()
        commit_s = time.perf_counter() - started
    if vectors is not None and embeddings is not None:
        with _lock_for(vectors):
            for k, (i, n, _, seconds) in enumerate(done):
                started = time.perf_counter()
                files = [Path(f) for f in part_files(embeddings, i)]
                m = load.load_vector_shard(vectors, files)
                done[k] = (i, n, m, seconds + time.perf_counter() - started)
    out = []
    for i, n, m, seconds in done:
        with target.writer().part(shard_part(i)) as w:
            w.rows = n
            w.stats.update({"passages": n, "vectors": m, "seconds": seconds,
                            "group_commit_seconds": commit_s})  # fmt: skip
        out.append({"shard": i, "passages": n, "vectors": m})
    return out


@task(name="load-pages-shard", cache_policy=NONE, retries=2, retry_delay_seconds=2)
def load_pages_shard_task(target: PartTarget, shard_index: int, store: PageStore,
                          shards: Manifest) -> dict[str, Any]:  # fmt: skip
    started = time.perf_counter()
    with _lock_for(store):
        n = load.load_page_shard(store, [Path(f) for f in part_files(shards, shard_index)])
    with target.writer().part(shard_part(shard_index)) as w:
        w.rows = n
        w.stats.update({"pages": n, "seconds": time.perf_counter() - started})
    return {"shard": shard_index, "pages": n}


def _lock_for(store: object) -> threading.Lock:
    # One writer thread per store: tantivy's writer and DuckDB's connection are not shared.
    return _STORE_LOCKS.setdefault(id(store), threading.Lock())
