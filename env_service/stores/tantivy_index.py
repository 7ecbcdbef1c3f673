"""LexicalIndex on tantivy: an embedded, on-disk BM25 engine (the `local` default).

Analyzer (must stay equivalent to `milvus_lexical.ANALYZER_PARAMS`): tantivy's `default`,
that is the simple tokenizer (splits on every non-alphanumeric character), a filter removing
tokens longer than 40 bytes, and lower-casing. Milvus's `standard` tokenizer is the same
tantivy tokenizer, with the `lowercase` and `length(40)` filters. No stemming (Milvus Lite
ignores the stemmer filter, so stemming would break equivalence between the profiles) and no
stop words (BM25's IDF already weighs them down). Scoring: BM25 with k1=1.2, b=0.75 (tantivy's
fixed values; Milvus's defaults are the same).

Fields: `passage_id` (raw, indexed: replacing a passage deletes its id then adds it), `url`
and `title` (raw, stored), `text` (analyzed, term frequencies without positions: BM25 needs no
positions, and the index is smaller and faster to build without them), `part` (raw, indexed,
not stored: the id of the shard load that added the passage). A build loads a shard with
`replace_part`: ONE delete term for the whole shard, then its passages, instead of one delete
term per passage (at commit tantivy applies every queued delete term to every segment, so
per-passage deletes cost work and memory that grow with the corpus). `add` still replaces by
passage id for callers that load loose passages. (`part` is a text field: tantivy-py 0.27
deletes by a u64 term silently match nothing.)

The schema is the index format: a writer opening an index of another schema (an older format,
e.g. one without `part`) removes it and starts empty, so formats are never mixed (the build's
load version changes with the format too, so its store marker reloads every shard). A reader
opens whatever schema is on disk.

User query text is never parsed as tantivy query syntax: it is reduced to its alphanumeric
runs (exactly what the tokenizer would keep) and lower-cased, so `AND`, `field:`, quotes or
brackets in a query cannot change its meaning or raise.

A writable index holds tantivy's writer lock (one writer per index, any number of readers in
other processes); a read-only one reloads its searcher at most every `reload_interval_s`, so
it sees what a writer in another process committed. Between reloads every query shares one
searcher. Searches collect the top documents only, without counting every match (tantivy's
default; the count visits every matching document and defeats block-max WAND pruning: at 1M
passages it added about 1 ms of CPU to the 4.6 ms of a typical 2-5 word query).
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import tantivy

from env_service.stores.base import Hit, Passage, StoreUnavailable

ANALYZER = "default"
_QUERY_JUNK_RE = re.compile(r"[\W_]+")


def build_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("passage_id", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("url", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("title", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("text", stored=True, tokenizer_name=ANALYZER, index_option="freq")
    sb.add_text_field("part", stored=False, tokenizer_name="raw", index_option="basic")
    return sb.build()


def sanitize_query(query: str) -> str:
    """The query's words, lower-cased, with every query-syntax character removed."""
    return _QUERY_JUNK_RE.sub(" ", query).lower().strip()


class TantivyIndex:
    """BM25 over passage text in a tantivy index directory."""

    def __init__(
        self,
        path: str | Path,
        *,
        writable: bool = False,
        heap_bytes: int = 256_000_000,
        num_threads: int = 0,
        reload_interval_s: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self.writable = writable
        self._heap_bytes = heap_bytes
        self._num_threads = num_threads
        self._reload_interval_s = reload_interval_s
        self._last_reload = 0.0
        self._lock = threading.Lock()
        self._writer: tantivy.IndexWriter | None = None
        self._index: tantivy.Index | None = None
        self._searcher_cache: tantivy.Searcher | None = None
        self._pending = 0
        try:
            self._open()
        except (ValueError, OSError) as exc:
            # A missing read-only index is reported at use (503), not at service start.
            if writable:
                raise StoreUnavailable(f"cannot open tantivy index at {self.path}: {exc}") from exc

    def _open(self) -> tantivy.Index:
        if self._index is not None:
            return self._index
        if self.writable:
            schema = build_schema()
            self.path.mkdir(parents=True, exist_ok=True)
            exists = tantivy.Index.exists(str(self.path))
            if exists and tantivy.Index.open(str(self.path)).schema != schema:
                _remove_index_files(self.path)  # another format: rebuilt, never mixed
            index = tantivy.Index(schema, path=str(self.path), reuse=True)
            self._writer = index.writer(heap_size=self._heap_bytes, num_threads=self._num_threads)
        else:
            if not tantivy.Index.exists(str(self.path)):
                raise StoreUnavailable(f"no tantivy index at {self.path}; run build-env first")
            index = tantivy.Index.open(str(self.path))
        self._index = index
        self._last_reload = time.monotonic()
        return index

    def _require_index(self) -> tantivy.Index:
        try:
            with self._lock:
                return self._open()
        except (ValueError, OSError) as exc:
            raise StoreUnavailable(f"tantivy index at {self.path} unavailable: {exc}") from exc

    def _require_writer(self) -> tantivy.IndexWriter:
        if not self.writable or self._writer is None:
            raise PermissionError("this tantivy index was opened read-only")
        return self._writer

    # ---- writing -----------------------------------------------------------------------
    def add(self, passages: Iterable[Passage]) -> int:
        """Add passages; an existing passage id is replaced (delete then add)."""
        writer = self._require_writer()
        n = 0
        for p in passages:
            writer.delete_documents_by_term("passage_id", p.passage_id)
            writer.add_document(_document(p))
            n += 1
        self._pending += n
        return n

    def replace_part(self, part: int, passages: Iterable[Passage]) -> int:
        """Replace everything an earlier load of `part` added (one delete term), uncommitted."""
        writer = self._require_writer()
        tag = str(part)
        writer.delete_documents_by_term("part", tag)
        n = 0
        for p in passages:
            writer.add_document(_document(p, part=tag))
            n += 1
        self._pending += n
        return n

    def commit(self) -> None:
        writer = self._require_writer()
        writer.commit()
        self._pending = 0
        self._require_index().reload()
        self._searcher_cache = None

    def clear(self) -> None:
        """Delete every document (a fresh build); committed at once."""
        writer = self._require_writer()
        writer.delete_all_documents()
        self.commit()

    # ---- reading -----------------------------------------------------------------------
    def _searcher(self) -> tuple[tantivy.Index, tantivy.Searcher]:
        index = self._require_index()
        now = time.monotonic()
        searcher = self._searcher_cache
        if searcher is not None and (
            self.writable or now - self._last_reload < self._reload_interval_s
        ):
            return index, searcher
        if not self.writable:
            index.reload()
            self._last_reload = now
        searcher = self._searcher_cache = index.searcher()
        return index, searcher

    def search(self, queries: Sequence[str], top_k: int) -> list[list[Hit]]:
        index, searcher = self._searcher()
        out: list[list[Hit]] = []
        for query in queries:
            text = sanitize_query(query)
            if not text or top_k <= 0:
                out.append([])
                continue
            parsed = index.parse_query(text, ["text"])
            hits = []
            for score, address in searcher.search(parsed, top_k, count=False).hits:
                doc = searcher.doc(address)
                hits.append(
                    Hit(
                        passage_id=doc.get_first("passage_id") or "",
                        url=doc.get_first("url") or "",
                        title=doc.get_first("title") or "",
                        text=doc.get_first("text") or "",
                        score=float(score),
                    )
                )
            out.append(hits)
        return out

    def count(self) -> int:
        return int(self._searcher()[1].num_docs)

    def ping(self) -> None:
        self._require_index()
        if not self.writable and not tantivy.Index.exists(str(self.path)):
            raise StoreUnavailable(f"tantivy index at {self.path} has gone")

    def close(self) -> None:
        if self._writer is not None:
            if self._pending:
                self._writer.rollback()  # uncommitted adds are dropped, as a crash would
            self._writer.wait_merging_threads()  # consumes the writer and frees its lock
            self._writer = None
        self._searcher_cache = None
        self._index = None


def _document(p: Passage, **extra: str) -> tantivy.Document:
    return tantivy.Document(passage_id=p.passage_id, url=p.url, title=p.title, text=p.text,
                            **extra)  # fmt: skip


def _remove_index_files(path: Path) -> None:
    """Delete a tantivy index directory's contents, meta.json first: a crash part-way leaves a
    directory that reads as no index."""
    (path / "meta.json").unlink(missing_ok=True)
    for child in path.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
