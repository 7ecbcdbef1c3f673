"""PageStore implementations: DuckDB (local) and PostgreSQL (cluster) behave identically."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from env_service.stores.base import Page, PageStore, StoreUnavailable
from env_service.stores.duckdb_pages import DuckDBPageStore
from env_service.stores.postgres_pages import PostgresPageStore

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"

PAGES = [
    Page("https://a.example/1", "One", "first page\n\nwith two paragraphs"),
    Page("https://a.example/2", "Two", "second page ünïcödé 日本語"),
    Page("https://a.example/3", "", "third page without a title"),
    Page("https://a.example/1", "One v2", "a later version of the first page"),  # same key
]


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[DuckDBPageStore]:
    store = DuckDBPageStore(tmp_path / "pages.duckdb", writable=True)
    yield store
    store.close()


@pytest.fixture
def pg() -> Iterator[PostgresPageStore]:
    store = PostgresPageStore(PG_DSN, f"pages_test_{uuid.uuid4().hex[:12]}", pool_max=2)
    yield store
    store.drop()
    store.close()


def _load(store: PageStore) -> None:
    store.upsert(PAGES)
    store.upsert(PAGES[:2])  # a re-run of part of the load


@pytest.mark.postgres
def test_duckdb_and_postgres_return_identical_results(
    duck: DuckDBPageStore, pg: PostgresPageStore
) -> None:
    for store in (duck, pg):
        assert isinstance(store, PageStore)
        _load(store)
    urls = ["https://a.example/1", "https://a.example/2", "https://a.example/3", "https://nope/"]
    got_duck, got_pg = duck.get_many(urls), pg.get_many(urls)
    assert got_duck == got_pg
    assert set(got_duck) == set(urls[:3])
    # Within one batch the last record of a URL wins; the later batch re-wrote page 1's v1.
    assert got_duck["https://a.example/1"] == PAGES[0]
    assert got_duck["https://a.example/2"].text == "second page ünïcödé 日本語"
    assert duck.count() == pg.count() == 3
    assert duck.get_many([]) == pg.get_many([]) == {}


@pytest.mark.postgres
def test_bulk_arrow_upsert_is_idempotent_on_both(
    duck: DuckDBPageStore, pg: PostgresPageStore
) -> None:
    n = 5000
    table = pa.table(
        {
            "url": [f"https://b.example/{i}" for i in range(n)],
            "title": [f"T{i}" for i in range(n)],
            "text": [f"text {i} " * 20 for i in range(n)],
        }
    )
    for store in (duck, pg):
        assert store.upsert_arrow(table) == n
        store.upsert_arrow(table)  # the shard loaded again after a kill
        assert store.count() == n
    sample = [f"https://b.example/{i}" for i in (0, 1234, 4999)]
    assert duck.get_many(sample) == pg.get_many(sample)


def _part_table(lo: int, hi: int, version: str = "") -> pa.Table:
    return pa.table(
        {
            "url": [f"https://s.example/{i}" for i in range(lo, hi)],
            "title": [f"T{i}{version}" for i in range(lo, hi)],
            "text": [f"text {i}{version}" for i in range(lo, hi)],
        }
    )


def test_duckdb_bulk_parts_replace_themselves_and_roll_back_on_failure(
    duck: DuckDBPageStore,
) -> None:
    assert duck.replace_part(1, [_part_table(0, 300), _part_table(300, 500)]) == 500
    assert duck.replace_part(2, [_part_table(500, 800)]) == 300
    # part 1 loaded again (after a kill) with other contents: it replaces itself, part 2 stays
    assert duck.replace_part(1, [_part_table(0, 400, " v2")]) == 400
    assert duck.count() == 700
    got = duck.get_many(["https://s.example/0", "https://s.example/450", "https://s.example/799"])
    assert got == {
        "https://s.example/0": Page("https://s.example/0", "T0 v2", "text 0 v2"),
        "https://s.example/799": Page("https://s.example/799", "T799", "text 799"),
    }

    def failing() -> Iterator[pa.Table]:
        yield _part_table(900, 1000)
        raise OSError("the shard file is corrupt")

    with pytest.raises(OSError, match="corrupt"):
        duck.replace_part(3, failing())
    assert duck.count() == 700  # nothing of the failed part is left
    duck.finish_load()
    duck.finish_load()  # idempotent: the index exists
    assert duck.get_many(["https://s.example/799"])["https://s.example/799"].title == "T799"
    # an upsert after the bulk load still replaces by URL
    duck.upsert([Page("https://s.example/799", "new", "new text")])
    assert duck.count() == 700
    assert duck.get_many(["https://s.example/799"])["https://s.example/799"].title == "new"


def test_duckdb_store_of_the_old_schema_reads_and_clears_to_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "pages.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE pages (url VARCHAR PRIMARY KEY, title VARCHAR, text VARCHAR)")
    con.execute("INSERT INTO pages VALUES ('https://o.example/1', 'Old', 'old text')")
    con.close()
    reader = DuckDBPageStore(path)
    assert reader.get_many(["https://o.example/1"])["https://o.example/1"].title == "Old"
    reader.close()
    store = DuckDBPageStore(path, writable=True)
    try:
        with pytest.raises(StoreUnavailable, match="predates the key column"):
            store.replace_part(1, [_part_table(0, 3)])
        store.clear()  # what a new build does first
        assert store.replace_part(1, [_part_table(0, 3)]) == 3
        store.finish_load()
        assert store.count() == 3
        assert set(store.get_many(["https://s.example/2", "https://o.example/1"])) == {
            "https://s.example/2"
        }
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_strips_nul_and_survives_sql_metacharacters(pg: PostgresPageStore) -> None:
    url = "https://c.example/it's'; DROP TABLE x; --"
    pg.upsert([Page(url, "nul\x00title", "text with \x00 a NUL")])
    assert pg.get_many([url])[url] == Page(url, "nultitle", "text with  a NUL")


def test_postgres_down_raises_store_unavailable() -> None:
    store = PostgresPageStore("postgresql://postgres@127.0.0.1:1/test", "pages", timeout_s=1.0)
    try:
        with pytest.raises(StoreUnavailable):
            store.get_many(["https://a.example/1"])
        with pytest.raises(StoreUnavailable):
            store.ping()
    finally:
        store.close()


def test_duckdb_read_only_store_reads_and_upgrades_on_write(tmp_path: Path) -> None:
    path = tmp_path / "pages.duckdb"
    missing = DuckDBPageStore(path)
    with pytest.raises(StoreUnavailable):
        missing.get_many(["https://a.example/1"])
    missing.upsert(PAGES[:1])  # upgrades to read-write and creates the file
    missing.close()
    reader = DuckDBPageStore(path)
    assert reader.get_many(["https://a.example/1"]) == {"https://a.example/1": PAGES[0]}
    assert reader.count() == 1
    reader.close()


def test_table_name_is_validated() -> None:
    with pytest.raises(ValueError):
        DuckDBPageStore("x.duckdb", "pages; DROP TABLE y")
