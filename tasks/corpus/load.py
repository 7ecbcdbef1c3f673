"""Loading shards into the stores: idempotent by id, and aware of which build a store holds.

Re-loading a shard never duplicates. Where a store can, a shard's load is one replaced part
(`replace_part`: delete what the shard's earlier load added, by one part term, then add):
tantivy (one delete term per shard rather than one per passage) and the DuckDB page store (it
then keeps no key index during the load and builds it once in `finish_page_store`). Elsewhere
by id: Milvus upserts by passage id, PostgreSQL upserts by canonical URL. A lexical shard load
need not commit: the build commits every few shards and records a shard as loaded only after
the commit that covers it. A store is one build's output, so a marker
file records which load version it holds: loading a different build first clears the store
(no stale pages from another corpus), while resuming the same build keeps what is there and
skips the shards the catalog already lists as loaded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from env_service.stores.base import LexicalIndex, Page, PageStore, VectorIndex
from tasks.corpus.embed import iter_embedded
from tasks.corpus.passages import iter_passages

READ_BATCH = 4096


def marker_path(markers_dir: Path, kind: str, location: str) -> Path:
    digest = hashlib.sha256(location.encode()).hexdigest()[:12]
    return markers_dir / f"{kind}-{digest}.json"


def prepare_store(store: Any, marker: Path, version: str, done_parts: set[str]) -> set[str]:
    """The parts to skip. Clears the store first when it holds another build (or nothing
    although the catalog says parts were loaded: someone removed it)."""
    held = json.loads(marker.read_text()).get("version") if marker.exists() else None
    if held == version and (not done_parts or store.count() > 0):
        return done_parts
    clear = getattr(store, "clear", None)
    if clear is not None:
        clear()
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps({"version": version}))
    tmp.replace(marker)
    return set()


def load_lexical_shard(index: LexicalIndex, passage_files: list[Path], *,
                       commit: bool = True) -> int:  # fmt: skip
    """Add one shard's passages (one replaced part where the index supports it, else by
    passage id) and commit unless `commit` is False; returns passages added."""
    passages = iter_passages(_batches(passage_files))
    replace = getattr(index, "replace_part", None)
    n = replace(part_id(passage_files), passages) if replace is not None else index.add(passages)
    if commit:
        index.commit()
    return int(n)


def load_vector_shard(index: VectorIndex, embedding_files: list[Path]) -> int:
    n = index.upsert(iter_embedded(embedding_files))
    commit = getattr(index, "commit", None)
    if commit is not None:
        commit()
    return n


def load_page_shard(store: PageStore, shard_files: list[Path]) -> int:
    """Load one shard's pages in Arrow batches: as one replaced part where the store supports
    it (`replace_part`), else by bulk upsert (`upsert_arrow`) or page upserts."""
    replace = getattr(store, "replace_part", None)
    if replace is not None:
        return int(replace(part_id(shard_files), _page_tables(shard_files)))
    bulk = getattr(store, "upsert_arrow", None)
    n = 0
    for table in _page_tables(shard_files):
        n += bulk(table) if bulk is not None else store.upsert(_pages(table))
    return n


def finish_page_store(store: PageStore) -> None:
    """After every shard is loaded (or skipped as loaded): let the store build its lookup index."""
    finish = getattr(store, "finish_load", None)
    if finish is not None:
        finish()


def part_id(shard_files: list[Path]) -> int:
    """A stable 63-bit id of one shard's input files: the same shard re-loaded replaces itself."""
    digest = hashlib.sha256("\n".join(sorted(str(f) for f in shard_files)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _page_tables(files: list[Path]) -> Iterator[pa.Table]:
    for file in files:
        for batch in pq.ParquetFile(file).iter_batches(
            batch_size=READ_BATCH * 4, columns=["url", "title", "text"]
        ):
            yield pa.Table.from_batches([batch])


def _batches(files: list[Path]) -> Iterator[Any]:
    for file in files:
        yield from pq.ParquetFile(file).iter_batches(batch_size=READ_BATCH)


def _pages(batch: Any) -> Iterator[Page]:
    data = batch.to_pydict()
    for url, title, text in zip(data["url"], data["title"], data["text"], strict=True):
        yield Page(url, title or "", text or "")
