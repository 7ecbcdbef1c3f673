"""Helpers shared by the tests and the bench scripts: a free loopback port, an ASGI app served
on one in a thread, and a small real local web (lexical index + page store) from a few pages."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conf import Settings
    from env_service.stores.base import Page


def free_port() -> int:
    """A loopback port nothing listens on right now (bound, read, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_app(app: Any, startup_timeout_s: float = 20.0) -> Iterator[str]:
    """Serve an ASGI app on a free loopback port in a thread, configured as flows serve
    env_service (`env_service.serving.serve_in_thread`); yield the base URL."""
    from env_service.serving import serve_in_thread

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    try:
        with serve_in_thread(app, sock, startup_timeout_s, "the test server failed to start"):
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def write_local_web(
    settings: Settings,
    pages: Sequence[Page],
    *,
    words: int | None = None,
    overlap: int | None = None,
) -> None:
    """Write `pages` into the configured lexical index (passages of `words` words sharing
    `overlap`; default: the corpus settings) and page store."""
    from env_service.stores.factory import open_lexical_index, open_page_store
    from tasks.corpus.passages import split_passages

    words = settings.corpus.passage_words if words is None else words
    overlap = settings.corpus.passage_overlap if overlap is None else overlap
    lexical = open_lexical_index(settings, writable=True)
    try:
        for page in pages:
            lexical.add(split_passages(page.url, page.title, page.text, words, overlap))
        lexical.commit()
    finally:
        lexical.close()
    store = open_page_store(settings, writable=True)
    try:
        store.upsert(pages)
    finally:
        store.close()


@contextlib.contextmanager
def serve_local_web(
    settings: Settings,
    pages: Sequence[Page],
    *,
    words: int | None = None,
    overlap: int | None = None,
) -> Iterator[str]:
    """`write_local_web`, then the env_service app on it at a free port; yield its URL."""
    from env_service.app import create_app

    write_local_web(settings, pages, words=words, overlap=overlap)
    with serve_app(create_app(settings)) as url:
        yield url
