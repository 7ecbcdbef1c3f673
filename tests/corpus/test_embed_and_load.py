"""Embedding with the tiny BGE-M3-format model, and idempotent shard loads into every store."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from env_service.stores.duckdb_pages import DuckDBPageStore
from env_service.stores.milvus_lexical import MilvusLexicalIndex
from env_service.stores.milvus_vectors import MilvusVectorIndex
from env_service.stores.tantivy_index import TantivyIndex
from tasks.corpus.embed import Embedder, embed_passages, embeddings_schema
from tasks.corpus.load import (
    load_lexical_shard,
    load_page_shard,
    load_vector_shard,
    marker_path,
    prepare_store,
)
from tasks.corpus.passages import PASSAGE_SCHEMA, passage_batches

TOPICS = ["volcano lava eruption island", "violin orchestra concert music",
          "glacier ice mountain cold", "desert sand camel heat", "river bridge boat water"]  # fmt: skip


@pytest.fixture(scope="module")
def shard_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shard")
    urls = [f"https://t.example/{i}" for i in range(len(TOPICS) * 4)]
    texts = [" ".join([TOPICS[i % len(TOPICS)]] * 12 + [f"page{i}"]) for i in range(len(urls))]
    pages = pa.table({"url": urls, "title": [f"T{i}" for i in range(len(urls))], "text": texts})
    pq.write_table(pages, root / "shard.parquet")
    batches = list(passage_batches(pages.to_batches(), words=24, overlap=4))
    pq.write_table(pa.Table.from_batches(batches, PASSAGE_SCHEMA), root / "passages.parquet")
    return {"pages": root / "shard.parquet", "passages": root / "passages.parquet"}


@pytest.fixture(scope="module")
def tiny_embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    from literesearcher.tiny_models import build_tiny_embedder

    path = build_tiny_embedder(tmp_path_factory.mktemp("models") / "tiny-bge-m3", seed=0)
    return Embedder(str(path), device="cpu", batch_size=8, max_length=64)


def test_tiny_embedder_writes_dense_and_sparse_per_shard(
    tiny_embedder: Embedder, shard_files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "emb.parquet"
    n = embed_passages(tiny_embedder, shard_files["passages"], out, expected_dim=64, batch_rows=7)
    table = pq.read_table(out)
    assert n == table.num_rows == pq.read_metadata(shard_files["passages"]).num_rows
    assert table.schema.equals(embeddings_schema(64))
    row = table.slice(0, 1).to_pylist()[0]
    assert len(row["dense"]) == 64 and abs(sum(x * x for x in row["dense"]) - 1.0) < 1e-3
    assert row["sparse_ids"] and len(row["sparse_ids"]) == len(row["sparse_weights"])
    with pytest.raises(ValueError, match=r"index.dense_dim"):
        embed_passages(tiny_embedder, shard_files["passages"], tmp_path / "x.parquet",
                       expected_dim=1024)  # fmt: skip


def test_reloading_a_shard_never_duplicates(
    tiny_embedder: Embedder, shard_files: dict[str, Path], tmp_path: Path
) -> None:
    emb = tmp_path / "emb.parquet"
    embed_passages(tiny_embedder, shard_files["passages"], emb, expected_dim=64)
    n_passages = pq.read_metadata(shard_files["passages"]).num_rows
    n_pages = pq.read_metadata(shard_files["pages"]).num_rows
    uri = str(tmp_path / "milvus.db")
    tantivy = TantivyIndex(tmp_path / "tantivy", writable=True)
    milvus_lex = MilvusLexicalIndex(uri, "lex", writable=True)
    vectors = MilvusVectorIndex(uri, "vec", dim=64, writable=True)
    pages = DuckDBPageStore(tmp_path / "pages.duckdb", writable=True)
    for _ in range(2):  # the second load is a re-run of the same shard after a kill
        load_lexical_shard(tantivy, [shard_files["passages"]])
        load_lexical_shard(milvus_lex, [shard_files["passages"]])
        load_vector_shard(vectors, [emb])
        load_page_shard(pages, [shard_files["pages"]])
        assert tantivy.count() == milvus_lex.count() == vectors.count() == n_passages
        assert pages.count() == n_pages
    # The dense route finds a passage from its own vector; sparse from its own weights.
    row = pq.read_table(emb).slice(3, 1).to_pylist()[0]
    # Four pages share each topic (near-identical vectors), so the passage is in the top 5.
    [dense_hits] = vectors.search_dense([row["dense"]], top_k=5)
    assert row["passage_id"] in {h.passage_id for h in dense_hits}
    self_score = sum(x * x for x in row["dense"])
    assert dense_hits[0].score == pytest.approx(self_score, abs=1e-3) and dense_hits[0].url
    sparse = dict(zip(row["sparse_ids"], row["sparse_weights"], strict=True))
    [sparse_hits] = vectors.search_sparse([sparse], top_k=3)
    assert row["passage_id"] in {h.passage_id for h in sparse_hits}
    assert vectors.search_sparse([{}], top_k=3) == [[]]
    for store in (tantivy, milvus_lex, vectors, pages):
        store.close()


def test_store_marker_clears_a_store_holding_another_build(tmp_path: Path,
                                                           shard_files: dict[str, Path]) -> None:  # fmt: skip
    store = DuckDBPageStore(tmp_path / "pages.duckdb", writable=True)
    marker = marker_path(tmp_path / "markers", "pages", "somewhere")
    assert prepare_store(store, marker, "build-a", set()) == set()
    load_page_shard(store, [shard_files["pages"]])
    # Resuming build A keeps the store and skips the loaded shard.
    assert prepare_store(store, marker, "build-a", {"shard-00000"}) == {"shard-00000"}
    assert store.count() > 0
    # Build B must not inherit build A's pages.
    assert prepare_store(store, marker, "build-b", {"shard-00000"}) == set()
    assert store.count() == 0
    store.close()


class _KilledAtCommit(TantivyIndex):
    """A real tantivy writer whose process 'dies' at the commit (nothing past it runs)."""

    def commit(self) -> None:
        raise OSError("killed before the commit")


def test_index_group_records_its_shards_only_after_the_commit(tmp_path: Path,
                                                              shard_files: dict[str, Path]) -> None:  # fmt: skip
    from tasks.build_env import load_index_shards_task
    from tasks.corpus.work import PartTarget, shard_part

    root = str(tmp_path / "catalog")
    table = pq.read_table(shard_files["passages"])
    step = -(-table.num_rows // 3)
    pw = PartTarget(root, "passages", [], {"test": 1}, "v").writer()
    for i in range(3):
        with pw.part(shard_part(i)) as w:
            w.write_table(table.slice(i * step, step))
    passages = pw.seal()
    target = PartTarget(root, "search_index", [passages], {"test": 1}, "v")

    killed = _KilledAtCommit(tmp_path / "ix", writable=True)
    with pytest.raises(OSError, match="killed"):
        load_index_shards_task.fn(target, [0, 1, 2], killed, None, passages, None)
    assert target.writer().done_parts() == set()  # no shard marked done without its commit
    killed.close()  # the uncommitted adds are dropped, as a crash would drop them

    index = TantivyIndex(tmp_path / "ix", writable=True)
    assert index.count() == 0
    out = load_index_shards_task.fn(target, [0, 1, 2], index, None, passages, None)
    assert [r["shard"] for r in out] == [0, 1, 2]
    assert sum(r["passages"] for r in out) == table.num_rows == index.count()
    assert target.writer().done_parts() == {shard_part(i) for i in range(3)}
    # Killed after the commit but before the records: the group runs again, nothing doubles.
    load_index_shards_task.fn(target, [0, 1, 2], index, None, passages, None)
    assert index.count() == table.num_rows
    index.close()
