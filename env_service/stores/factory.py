"""Open the configured stores: the only place that maps a profile to an implementation."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from conf import Settings
from env_service.stores.base import LexicalIndex, PageStore, VectorIndex


def lexical_collection(settings: Settings) -> str:
    """The Milvus collection of the lexical (BM25) route, beside the vector collection."""
    return f"{settings.index.collection}_bm25"


def open_lexical_index(settings: Settings, *, writable: bool = False) -> LexicalIndex:
    """tantivy on disk (`local`) or Milvus's BM25 function field (`cluster`)."""
    cfg = settings.index
    if cfg.lexical_backend == "tantivy":
        from env_service.stores.tantivy_index import TantivyIndex

        return TantivyIndex(
            settings.path(cfg.tantivy_path),
            writable=writable,
            heap_bytes=cfg.tantivy_heap_mb * 1_000_000,
            num_threads=cfg.tantivy_threads,
        )
    from env_service.stores.milvus_lexical import MilvusLexicalIndex

    return MilvusLexicalIndex(
        settings.uri(cfg.milvus_uri),
        lexical_collection(settings),
        token_env=cfg.milvus_token_env,
        writable=writable,
    )


def open_vector_index(settings: Settings, *, writable: bool = False) -> VectorIndex | None:
    """The Milvus dense+sparse collection, or None when retrieval is BM25 only."""
    cfg = settings.index
    if cfg.retrieval_mode == "bm25":
        return None
    from env_service.stores.milvus_vectors import MilvusVectorIndex

    return MilvusVectorIndex(
        settings.uri(cfg.milvus_uri),
        cfg.collection,
        cfg.dense_dim,
        token_env=cfg.milvus_token_env,
        writable=writable,
    )


def open_page_store(settings: Settings, *, writable: bool = False) -> PageStore:
    """A DuckDB file (`local`) or PostgreSQL (`cluster`); `writable` matters to DuckDB only
    (a read-only DuckDB store upgrades itself to read-write on its first upsert)."""
    cfg = settings.page_store
    if cfg.backend == "duckdb":
        from env_service.stores.duckdb_pages import DuckDBPageStore

        return DuckDBPageStore(
            settings.path(cfg.duckdb_path),
            cfg.table,
            writable=writable,
            memory_limit=cfg.duckdb_memory_limit,
        )
    from env_service.stores.postgres_pages import PostgresPageStore

    return PostgresPageStore(
        cfg.postgres_dsn,
        cfg.table,
        pool_min=cfg.pool_min,
        pool_max=cfg.pool_max,
        timeout_s=cfg.pool_timeout_s,
    )


def store_locations(settings: Settings, name: Callable[[str], str]) -> tuple[str, str, str]:
    """Where the lexical index, the vector collection and the page store live: a local path
    through `name` (it names a configured, data_root-relative path), a server's URI or DSN with
    the collection or table."""
    ix, ps = settings.index, settings.page_store
    milvus = ix.milvus_uri if "://" in ix.milvus_uri else name(ix.milvus_uri)
    lexical = (name(ix.tantivy_path) if ix.lexical_backend == "tantivy"
               else f"{milvus}#{lexical_collection(settings)}")  # fmt: skip
    pages = (name(ps.duckdb_path) if ps.backend == "duckdb"
             else f"{ps.postgres_dsn}#{ps.table}")  # fmt: skip
    return lexical, f"{milvus}#{ix.collection}", pages


def web_identity(settings: Settings) -> str:
    """Which local web `settings` serve: a digest of where their stores are (resolved paths;
    a server's URI with the collection or table). env_service reports it on /health, and a
    flow takes an answering service for its own only when the two agree."""
    lexical, vectors, pages = store_locations(settings, lambda p: str(settings.path(p).resolve()))
    places = [lexical, "" if settings.index.retrieval_mode == "bm25" else vectors, pages]
    return hashlib.sha256("\n".join(places).encode()).hexdigest()[:16]
