"""The paths behind env_service's throughput: concurrent DuckDB point lookups on pooled
cursors, the shared tantivy searcher, the cache header, the configurable PostgreSQL pool
timeout, and `serve --workers N` (several uvicorn worker processes on one port)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import httpx
import pyarrow as pa
import pytest
import tantivy

from conf import Settings, load_settings
from env_service.app import CACHE_HEADER, SETTINGS_ENV, app_factory
from env_service.stores.base import Page, StoreUnavailable
from env_service.stores.duckdb_pages import DuckDBPageStore, url_key
from env_service.stores.factory import open_lexical_index, open_page_store
from env_service.stores.tantivy_index import TantivyIndex
from literesearcher.testing import free_port, serve_command, serve_subprocess

from .conftest import app_client


def _pages(n: int) -> list[Page]:
    return [Page(f"https://p.example/{i}", f"title {i}", f"text of page {i}") for i in range(n)]


def test_duckdb_lookups_are_right_from_many_threads(tmp_path: Path) -> None:
    path = tmp_path / "pages.duckdb"
    writer = DuckDBPageStore(path, writable=True)
    writer.upsert(_pages(500))
    writer.close()
    store = DuckDBPageStore(path)  # read-only, as the service opens it

    def work(worker: int) -> list[str]:
        wrong = []
        for i in range(worker, 500, 7):
            urls = [f"https://p.example/{i}", "https://p.example/missing", f"https://p.example/{i}"]
            got = store.get_many(urls)
            if got != {urls[0]: Page(urls[0], f"title {i}", f"text of page {i}")}:
                wrong.append(f"{urls}: {got}")
        return wrong

    try:
        with ThreadPoolExecutor(8) as pool:
            assert [w for ws in pool.map(work, range(8)) for w in ws] == []
        # one cursor per concurrent caller at most, reused afterwards
        assert 1 <= len(store._all_cursors) <= 8
        idle = len(store._cursors)
        assert store.get_many(["https://p.example/3"])["https://p.example/3"].title == "title 3"
        assert len(store._cursors) == idle
        assert store.count() == 500
    finally:
        store.close()
    # closing releases the file (every cursor too): a writer can open it again
    again = duckdb.connect(str(path))
    assert again.execute("SELECT count(*) FROM pages").fetchone() == (500,)
    again.close()


@pytest.mark.parametrize("bulk", [False, True], ids=["upserts", "bulk-parts"])
def test_duckdb_lookup_uses_the_key_index(tmp_path: Path, bulk: bool) -> None:
    path = tmp_path / "pages.duckdb"
    store = DuckDBPageStore(path, writable=True)
    if bulk:  # the build's path: parts appended without the index, which is built at the end
        pages = _pages(3000)
        table = pa.table({f: [getattr(p, f) for p in pages] for f in ("url", "title", "text")})
        store.replace_part(1, [table.slice(0, 1500)])
        store.replace_part(2, [table.slice(1500)])
        store.finish_load()
    else:
        store.upsert(_pages(3000))
    store.close()
    con = duckdb.connect(str(path), read_only=True)
    try:
        # the query get_many runs, as run: DuckDB picks an index scan at execution time
        plans = [
            con.execute(
                f"EXPLAIN ANALYZE SELECT url, title, text FROM pages WHERE key IN ({q})",
                [url_key(u) for u in us],
            ).fetchall()[0][1]
            for q, us in [("?", ["https://p.example/7"]), ("?, ?", ["https://p.example/7", "x"])]
        ]
    finally:
        con.close()
    for plan in plans:
        assert "Type: Index Scan" in plan, plan
    reader = DuckDBPageStore(path)
    try:
        assert reader.get_many(["https://p.example/7", "x"]) == {
            "https://p.example/7": _pages(8)[7]
        }
    finally:
        reader.close()


def test_read_only_store_upgrades_to_write_and_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "pages.duckdb"
    empty = DuckDBPageStore(path, writable=True)
    assert empty.count() == 0  # creates the file and the table
    empty.close()
    store = DuckDBPageStore(path)
    try:
        assert store.get_many(["https://p.example/1"]) == {}  # a read cursor exists now
        store.upsert(_pages(3))  # reopens read-write: old cursors are closed, not reused
        assert store.get_many(["https://p.example/1"])["https://p.example/1"].text == (
            "text of page 1"
        )
    finally:
        store.close()


def test_tantivy_shares_one_searcher_and_ranks_as_a_counting_search(env_root: Path) -> None:
    settings = load_settings("local", [f"data_root={env_root}"])
    index = open_lexical_index(settings)
    assert isinstance(index, TantivyIndex)
    queries = ["mountain highest", "river flows sea", "nobel prize physics", "notes travel"]
    try:
        index._reload_interval_s = 3600.0
        first = index._searcher()[1]
        hits = index.search(queries, 5)
        assert index._searcher()[1] is first  # one searcher between reloads
        assert hits[0][0].url == "https://example.org/wiki/everest"
        # the same top documents as tantivy's default search, which also counts every match
        raw = tantivy.Index.open(str(env_root / settings.index.tantivy_path))
        searcher = raw.searcher()
        for query, got in zip(queries, hits, strict=True):
            result = searcher.search(raw.parse_query(query, ["text"]), 5)
            assert got
            want = [(searcher.doc(a).get_first("passage_id"), s) for s, a in result.hits]
            assert [(h.passage_id, h.score) for h in got] == want
    finally:
        index.close()


async def test_cache_header_tells_hit_and_miss(settings: Settings) -> None:
    async with app_client(settings) as c:  # cache off: no header
        r = await c.post("/search", json={"query": "everest"})
        assert r.status_code == 200 and CACHE_HEADER not in r.headers
    cached = settings.model_copy(deep=True)
    cached.cache.enabled = True
    async with app_client(cached) as c:
        body = {"url": "https://example.org/wiki/nile", "goal": "length"}
        first, second = await c.post("/visit", json=body), await c.post("/visit", json=body)
        assert first.headers[CACHE_HEADER] == "miss" and second.headers[CACHE_HEADER] == "hit"
        assert first.content == second.content


def test_postgres_pool_timeout_comes_from_settings() -> None:
    settings = load_settings(
        "local",
        [
            "page_store.backend=postgres",
            "page_store.postgres_dsn=postgresql://postgres@127.0.0.1:1/test",
            "page_store.pool_timeout_s=1.5",
        ],
    )
    store = open_page_store(settings)
    try:
        with pytest.raises(StoreUnavailable, match=r"1\.50 sec"):
            store.get_many(["https://a.example/1"])
    finally:
        store.close()


def test_app_factory_needs_the_settings_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SETTINGS_ENV, raising=False)
    with pytest.raises(RuntimeError, match=SETTINGS_ENV):
        app_factory()


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").iterdir():
            try:
                kids = [int(c) for c in (task / "children").read_text().split()]
            except FileNotFoundError:
                continue
            out += kids
            todo += kids
    return out


def test_serve_with_two_workers(env_root: Path) -> None:
    port = free_port()
    cmd = serve_command(env_root, port, "env_service.workers=2")
    with serve_subprocess(cmd, f"http://127.0.0.1:{port}/ready", timeout_s=60) as served:
        assert served.response.json()["ready"] is True
        # both workers answer on the one port, each with the settings `serve` resolved
        # (data_root came from --set, not from a profile)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            texts = {c.post("/search", json={"query": "everest"}).json()["text"] for _ in range(20)}
        assert len(texts) == 1 and "Mount Everest" in texts.pop()
        workers = [
            p
            for p in _descendants(served.proc.pid)
            if SETTINGS_ENV.encode() in Path(f"/proc/{p}/environ").read_bytes()
            and b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()
        ]
        assert len(workers) == 2, workers
