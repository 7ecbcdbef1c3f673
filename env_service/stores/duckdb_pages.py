"""PageStore on a DuckDB file (the `local` default): full page text and title by canonical URL.

DuckDB allows one writing process per file, or any number of read-only ones. A store opened
read-only (the service) upgrades itself to read-write on its first upsert, so a test or a tool
can fill a store it opened for reading.

No unique constraint: a PRIMARY KEY on `url` (what `INSERT OR REPLACE` needs) is an ART index
that DuckDB keeps in memory and maintains on every insert, so its memory grows with the corpus
(the 3M-page build ran out of `memory_limit` at ~2.2M pages). Rows carry `key`, a 63-bit hash
of the URL (`url_key`), and `part`, the id of the bulk load that wrote them. Two write paths:

- `upsert` / `upsert_arrow` (tools, tests, small writes): delete the incoming URLs, append;
  the key index is maintained.
- `replace_part(part, tables)`, the build's path: one transaction deletes the part's rows
  (an integer filter that zone maps prune, as a part is appended contiguously) and appends the
  part's pages. URLs are unique across parts by construction (pages are deduplicated by
  canonical URL before sharding), so re-loading a part is idempotent without a key lookup.
  The first call drops the key index; `finish_load()` creates it once at the end (an ART over
  8-byte integers: at 6M rows it builds within a 256 MB `memory_limit`, where an ART over the
  URL strings runs out).

Reads are point lookups, `WHERE key IN (?, ?, ...)` with one parameter per URL, answered from
the key index (rows of a colliding key are dropped by comparing the URL). (On the URL primary
key before: an `IN (SELECT unnest(?))` semi-join scanned the whole table on DuckDB's threads;
one `WHERE url = ?` query per URL paid the per-query cost per URL. At 1M pages: 0.7 ms of CPU
for one URL and 0.9 ms for three, against 1.6 and 1.5 ms for the semi-join and 0.8 and 2.1 ms
for a query per URL.) Concurrent readers do not share one connection behind a lock: each takes
a cursor (its own connection to the same database) from a free list and puts it back, so there
are at most as many cursors as concurrent callers, whatever the thread churn.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from env_service.stores.base import Page, StoreUnavailable

PAGE_SCHEMA = pa.schema([("url", pa.string()), ("title", pa.string()), ("text", pa.string())])
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_BATCH_PAGES = 20_000


def url_key(url: str) -> int:
    """The lookup key of a URL: a stable 63-bit hash (non-negative, fits BIGINT)."""
    return int.from_bytes(hashlib.blake2b(url.encode(), digest_size=8).digest(), "big") >> 1


def checked_identifier(name: str) -> str:
    """A configured table name, validated: it is the one thing SQL cannot take as a parameter."""
    if not _IDENTIFIER_RE.match(name):
        raise ValueError(f"invalid table name {name!r}: use letters, digits and underscores")
    return name


class DuckDBPageStore:
    def __init__(
        self,
        path: str | Path,
        table: str = "pages",
        *,
        writable: bool = False,
        memory_limit: str = "512MB",
    ) -> None:
        self.path = Path(path)
        self.memory_limit = memory_limit
        self.table = checked_identifier(table)
        self._writable = writable
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        # Idle read cursors as (connection, cursor of it); list.pop/append are atomic.
        self._cursors: list[tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection]] = []
        self._all_cursors: list[duckdb.DuckDBPyConnection] = []
        self._has_key: bool | None = None  # False for a store written before the key column

    def _connect(self, *, write: bool) -> duckdb.DuckDBPyConnection:
        if self._con is not None and (self._writable or not write):
            return self._con
        if self._con is not None:
            self._close_locked()
        self._writable = self._writable or write
        try:
            if self._writable:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                con = duckdb.connect(str(self.path), config=self._config())
                self._create_table(con)
            else:
                if not self.path.exists():
                    raise StoreUnavailable(f"no page store at {self.path}; run build-env first")
                con = duckdb.connect(str(self.path), read_only=True, config=self._config())
        except duckdb.Error as exc:
            raise StoreUnavailable(f"cannot open DuckDB page store {self.path}: {exc}") from exc
        self._con = con
        return con

    @property
    def _index(self) -> str:
        return f"{self.table}_key_idx"

    def _create_table(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} "
            "(url VARCHAR, title VARCHAR, text VARCHAR, key BIGINT, part BIGINT)"
        ).fetchall()
        if self._key_column(con):
            con.execute(f"CREATE INDEX IF NOT EXISTS {self._index} ON {self.table} (key)")

    def _key_column(self, con: duckdb.DuckDBPyConnection) -> bool:
        if self._has_key is None:
            # fetchall, not fetchone: an unfinished result keeps its transaction open
            [(n,)] = con.execute(
                "SELECT count(*) FROM duckdb_columns() WHERE table_name = ? AND column_name = "
                "'key' AND database_name = current_database()",
                [self.table],
            ).fetchall()
            self._has_key = bool(n)
        return self._has_key

    def _config(self) -> dict[str, str | bool | int | float | list[str]]:
        return {"memory_limit": self.memory_limit}

    def upsert(self, pages: Iterable[Page]) -> int:
        total = 0
        batch: dict[str, Page] = {}
        for page in pages:
            batch[page.url] = page  # last one wins inside a batch, as a sequence of upserts
            if len(batch) >= _BATCH_PAGES:
                total += self.upsert_arrow(_to_table(batch.values()))
                batch = {}
        if batch:
            total += self.upsert_arrow(_to_table(batch.values()))
        return total

    def upsert_arrow(self, table: pa.Table) -> int:
        """Bulk upsert of an Arrow table with columns url, title, text (unique urls)."""
        rows = _rows(table, None)
        with self._lock:
            con = self._connect(write=True)
            self._require_key(con)
            try:
                con.register("_incoming_pages", rows)
                con.execute("BEGIN TRANSACTION")
                con.execute(
                    f"DELETE FROM {self.table} t USING _incoming_pages i "
                    "WHERE t.key = i.key AND t.url = i.url"
                )
                con.execute(f"INSERT INTO {self.table} BY NAME SELECT * FROM _incoming_pages")
                con.execute("COMMIT")
            except duckdb.Error as exc:
                _rollback(con)
                raise StoreUnavailable(f"DuckDB page store write failed: {exc}") from exc
            finally:
                con.unregister("_incoming_pages")
        return rows.num_rows

    def replace_part(self, part: int, tables: Iterable[pa.Table]) -> int:
        """Replace every page of one bulk-load part (a shard) with `tables`, atomically.

        The pages' URLs must not occur in another part (the build deduplicates by canonical
        URL before sharding). The key index is dropped on the first call and rebuilt by
        `finish_load()`; lookups before that scan the table."""
        n = 0
        with self._lock:
            con = self._connect(write=True)
            self._require_key(con)
            try:
                con.execute(f"DROP INDEX IF EXISTS {self._index}")
                con.execute("BEGIN TRANSACTION")
                con.execute(f"DELETE FROM {self.table} WHERE part = ?", [part])
                for table in tables:
                    rows = _rows(table, part)
                    con.register("_incoming_pages", rows)
                    try:
                        con.execute(
                            f"INSERT INTO {self.table} BY NAME SELECT * FROM _incoming_pages"
                        )
                    finally:
                        con.unregister("_incoming_pages")
                    n += rows.num_rows
                con.execute("COMMIT")
            except duckdb.Error as exc:
                _rollback(con)
                raise StoreUnavailable(f"DuckDB page store write failed: {exc}") from exc
            except BaseException:  # the input failed (a corrupt file, a kill): nothing is kept
                _rollback(con)
                raise
        return n

    def finish_load(self) -> None:
        """Build the key index after bulk loads (a no-op when it exists), and checkpoint."""
        with self._lock:
            con = self._connect(write=True)
            try:
                if self._key_column(con):
                    con.execute(f"CREATE INDEX IF NOT EXISTS {self._index} ON {self.table} (key)")
                con.execute("CHECKPOINT")
            except duckdb.Error as exc:
                raise StoreUnavailable(f"DuckDB page store index build failed: {exc}") from exc

    def _require_key(self, con: duckdb.DuckDBPyConnection) -> None:
        if not self._key_column(con):
            raise StoreUnavailable(
                f"DuckDB page store {self.path} predates the key column: rebuild it (build-env)"
            )

    def _take_cursor(self) -> tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection]:
        """(connection it belongs to, an idle cursor): reused when one is free."""
        try:
            return self._cursors.pop()
        except IndexError:
            pass
        with self._lock:
            con = self._connect(write=False)
            try:
                cur = con.cursor()
            except duckdb.Error as exc:
                raise StoreUnavailable(f"DuckDB page store unavailable: {exc}") from exc
            self._all_cursors.append(cur)
            return con, cur

    def _give_back(self, owner: duckdb.DuckDBPyConnection, cur: duckdb.DuckDBPyConnection) -> None:
        with self._lock:
            if owner is self._con:  # a cursor of a connection closed meanwhile is dropped
                self._cursors.append((owner, cur))

    def get_many(self, urls: Sequence[str]) -> dict[str, Page]:
        if not urls:
            return {}
        wanted = list(dict.fromkeys(urls))
        placeholders = ", ".join("?" * len(wanted))
        owner, cur = self._take_cursor()
        try:
            if self._key_column(cur):
                query = f"SELECT url, title, text FROM {self.table} WHERE key IN ({placeholders})"
                rows = cur.execute(query, [url_key(u) for u in wanted]).fetchall()
            else:  # a store written before the key column (URL primary key)
                query = f"SELECT url, title, text FROM {self.table} WHERE url IN ({placeholders})"
                rows = cur.execute(query, wanted).fetchall()
        except duckdb.Error as exc:
            raise StoreUnavailable(f"DuckDB page store read failed: {exc}") from exc
        finally:
            self._give_back(owner, cur)
        want = set(wanted)
        return {url: Page(url, title or "", text or "") for url, title, text in rows if url in want}

    def count(self) -> int:
        owner, cur = self._take_cursor()
        try:
            [row] = cur.execute(f"SELECT count(*) FROM {self.table}").fetchall()
        except duckdb.Error as exc:
            raise StoreUnavailable(f"DuckDB page store read failed: {exc}") from exc
        finally:
            self._give_back(owner, cur)
        return int(row[0]) if row else 0

    def clear(self) -> None:
        """Drop every page (and a table of an older schema), leaving an empty indexed table."""
        with self._lock:
            con = self._connect(write=True)
            con.execute(f"DROP TABLE IF EXISTS {self.table}").fetchall()
            self._has_key = None
            self._create_table(con)

    def ping(self) -> None:
        owner, cur = self._take_cursor()
        try:
            cur.execute("SELECT 1").fetchall()
        except duckdb.Error as exc:
            raise StoreUnavailable(f"DuckDB page store unavailable: {exc}") from exc
        finally:
            self._give_back(owner, cur)

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        """Close the connection and every cursor of it (the file is released only then)."""
        cursors, self._all_cursors, self._cursors = self._all_cursors, [], []
        for cur in cursors:
            cur.close()
        if self._con is not None:
            self._con.close()
            self._con = None
        self._has_key = None


def _to_table(pages: Iterable[Page]) -> pa.Table:
    pages = list(pages)
    return pa.table(
        {
            "url": [p.url for p in pages],
            "title": [p.title for p in pages],
            "text": [p.text for p in pages],
        },
        schema=PAGE_SCHEMA,
    )


def _rows(table: pa.Table, part: int | None) -> pa.Table:
    """Pages (url, title, text) with their lookup key and load part."""
    table = table.select(["url", "title", "text"])
    keys = pa.array([url_key(u) for u in table.column("url").to_pylist()], pa.int64())
    parts = (
        pa.nulls(table.num_rows, pa.int64())
        if part is None
        else pa.array([part] * table.num_rows, pa.int64())
    )
    return table.append_column("key", keys).append_column("part", parts)


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # no transaction was open
        con.execute("ROLLBACK")
