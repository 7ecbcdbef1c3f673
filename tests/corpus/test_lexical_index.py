"""LexicalIndex implementations: tantivy (local) and Milvus BM25 (cluster, run on Milvus Lite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from env_service.stores.base import LexicalIndex, Passage, StoreUnavailable
from env_service.stores.milvus_lexical import MilvusLexicalIndex
from env_service.stores.tantivy_index import TantivyIndex, sanitize_query
from tasks.corpus.passages import split_passages

DOCS = {
    "https://zoo.example/lions": (
        "Lions",
        "Lions live in prides on the African savanna. "
        "A pride hunts zebra and wildebeest together at dusk.",
    ),
    "https://zoo.example/penguins": (
        "Penguins",
        "Emperor penguins breed in Antarctica during the winter and huddle against the cold wind.",
    ),
    "https://zoo.example/bees": (
        "Bees",
        "Honey bees make honey from nectar; a hive keeps one queen and thousands of workers.",
    ),
    "https://zoo.example/owls": (
        "Owls",
        "Owls hunt at night. The barn owl hears mice under snow and flies silently.",
    ),
}
QUERIES = ["antarctica penguins", "honey queen", "barn owl mice", "savanna zebra pride"]
EXPECTED_TOP = [
    "https://zoo.example/penguins",
    "https://zoo.example/bees",
    "https://zoo.example/owls",
    "https://zoo.example/lions",
]


def corpus_passages() -> list[Passage]:
    out: list[Passage] = []
    for url, (title, text) in DOCS.items():
        out.extend(split_passages(url, title, text, words=16, overlap=4))
    return out


def test_tantivy_finds_the_right_page_and_is_a_lexical_index(tmp_path: Path) -> None:
    index = TantivyIndex(tmp_path / "ix", writable=True)
    assert isinstance(index, LexicalIndex)
    index.add(corpus_passages())
    index.commit()
    results = index.search(QUERIES, top_k=3)
    assert [hits[0].url for hits in results] == EXPECTED_TOP
    top = results[0][0]
    assert top.title == "Penguins" and "Antarctica" in top.text and top.score > 0
    assert top.passage_id.split(":")[1].isdigit()
    index.close()


def test_tantivy_readd_replaces_by_passage_id(tmp_path: Path) -> None:
    index = TantivyIndex(tmp_path / "ix", writable=True)
    passages = corpus_passages()
    index.add(passages)
    index.commit()
    first = index.count()
    assert first == len(passages)
    index.add(passages)  # the same shard loaded again
    index.commit()
    assert index.count() == first
    changed = Passage(passages[0].passage_id, passages[0].url, "New", "xylophone", 0)
    index.add([changed])
    index.commit()
    assert index.count() == first
    [[hit]] = index.search(["xylophone"], top_k=5)
    assert hit.passage_id == passages[0].passage_id and hit.title == "New"
    index.close()


def test_tantivy_reader_reloads_what_another_writer_commits(tmp_path: Path) -> None:
    path = tmp_path / "ix"
    writer = TantivyIndex(path, writable=True)
    writer.add(corpus_passages()[:1])
    writer.commit()
    reader = TantivyIndex(path, reload_interval_s=0.0)
    assert reader.count() == 1
    writer.add(corpus_passages()[1:])
    writer.commit()
    assert reader.count() == len(corpus_passages())
    with pytest.raises(PermissionError):
        reader.add(corpus_passages())
    writer.close()
    reader.close()


def test_tantivy_query_syntax_in_user_text_is_inert(tmp_path: Path) -> None:
    index = TantivyIndex(tmp_path / "ix", writable=True)
    index.add(corpus_passages())
    index.commit()
    nasty = ['title:"bees', "honey AND (queen", "url:https://x", "+-!^~*", "", "   ", "IN [a b]"]
    results = index.search(nasty, top_k=3)
    assert len(results) == len(nasty)
    assert results[1][0].url == "https://zoo.example/bees"
    assert results[3] == [] and results[4] == [] and results[5] == []
    assert sanitize_query('Honey AND "Queen"') == "honey and queen"
    index.close()


def test_tantivy_missing_index_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    reader = TantivyIndex(tmp_path / "nothing-here")
    with pytest.raises(StoreUnavailable):
        reader.search(["bees"], top_k=3)
    with pytest.raises(StoreUnavailable):
        reader.ping()


@pytest.fixture(scope="module")
def milvus_lite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("milvus") / "lexical.db")


def test_milvus_bm25_matches_tantivy_and_upserts_idempotently(
    milvus_lite_uri: str, tmp_path: Path
) -> None:
    milvus = MilvusLexicalIndex(milvus_lite_uri, "lex_equiv", writable=True)
    assert isinstance(milvus, LexicalIndex)
    passages = corpus_passages()
    milvus.add(passages)
    milvus.commit()
    assert milvus.count() == len(passages)
    milvus.add(passages)  # re-run of the same shard
    milvus.commit()
    assert milvus.count() == len(passages)
    tantivy = TantivyIndex(tmp_path / "ix", writable=True)
    tantivy.add(passages)
    tantivy.commit()
    m_results = milvus.search([*QUERIES, "!!!"], top_k=3)
    t_results = tantivy.search(QUERIES, top_k=3)
    assert [hits[0].url for hits in m_results[:-1]] == EXPECTED_TOP
    # Same analyzer, same BM25: the same passages come back in the same order.
    for m_hits, t_hits in zip(m_results, t_results, strict=False):
        assert [h.passage_id for h in m_hits] == [h.passage_id for h in t_hits]
    assert m_results[-1] == []
    for hits in m_results[:-1]:
        scores = [h.score for h in hits]
        assert all(s > 0 for s in scores) and scores == sorted(scores, reverse=True)
    assert m_results[0][0].text and m_results[0][0].title == "Penguins"
    milvus.clear()
    assert milvus.count() == 0
    milvus.close()
    tantivy.close()


def test_tantivy_replace_part_uses_one_delete_per_shard(tmp_path: Path) -> None:
    index = TantivyIndex(tmp_path / "ix", writable=True)
    passages = corpus_passages()
    shard_a, shard_b = passages[:3], passages[3:]
    assert index.replace_part(11, shard_a) == len(shard_a)
    index.replace_part(22, shard_b)
    index.commit()
    assert index.count() == len(passages)
    index.replace_part(11, shard_a)  # a re-run of shard 11 replaces it, nothing doubles
    index.commit()
    assert index.count() == len(passages)
    # A re-run whose shard now holds fewer passages leaves none of the old ones behind.
    index.replace_part(11, shard_a[:1])
    index.commit()
    assert index.count() == len(shard_b) + 1
    ids = {h.passage_id for hits in index.search(QUERIES, top_k=10) for h in hits}
    assert not ids & {p.passage_id for p in shard_a[1:]}
    # Uncommitted adds of a shard are gone after a crash (here: close without commit).
    index.replace_part(33, shard_a[1:])
    index.close()
    reopened = TantivyIndex(tmp_path / "ix", writable=True)
    assert reopened.count() == len(shard_b) + 1
    reopened.close()


def test_tantivy_writer_rebuilds_an_index_of_an_older_format(tmp_path: Path) -> None:
    import tantivy

    path = tmp_path / "ix"
    path.mkdir()
    sb = tantivy.SchemaBuilder()  # format 1: no `part` field
    sb.add_text_field("passage_id", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("text", stored=True, index_option="freq")
    old = tantivy.Index(sb.build(), path=str(path))
    writer = old.writer(heap_size=15_000_000, num_threads=1)
    writer.add_document(tantivy.Document(passage_id="old:0", text="stale words"))
    writer.commit()
    writer.wait_merging_threads()
    assert TantivyIndex(path).count() == 1  # a reader opens whatever is on disk
    index = TantivyIndex(path, writable=True)
    assert index.count() == 0  # the old format was removed, not mixed
    index.replace_part(1, corpus_passages())
    index.commit()
    assert index.count() == len(corpus_passages())
    index.close()
