"""A small real local web (tantivy + DuckDB, or PostgreSQL) built through the store
implementations, and the service app running on it."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from conf import Settings, load_settings
from env_service.app import create_app
from env_service.stores.base import Page
from literesearcher.testing import write_local_web

TOPICS = [
    (
        "danube",
        "Danube",
        "The Danube river flows through Vienna Budapest and Belgrade to the Black Sea",
    ),
    (
        "rhine",
        "Rhine",
        "The Rhine river rises in the Swiss Alps and reaches the North Sea at Rotterdam",
    ),
    (
        "nile",
        "Nile",
        "The Nile river is the longest river in Africa and flows into the Mediterranean",
    ),
    ("everest", "Mount Everest", "Mount Everest is the highest mountain on Earth at 8849 metres"),
    ("k2", "K2", "K2 is the second highest mountain and lies on the border of Pakistan and China"),
    (
        "curie",
        "Marie Curie",
        "Marie Curie won the Nobel Prize in Physics in 1903 and Chemistry in 1911",
    ),
    (
        "bohr",
        "Niels Bohr",
        "Niels Bohr received the Nobel Prize in Physics in 1922 for atomic structure",
    ),
    (
        "hubble",
        "Edwin Hubble",
        "Edwin Hubble was born in 1889 in Marshfield Missouri and studied galaxies",
    ),
]
FILLER = (
    "This page is part of a small encyclopedia used for testing the local web service and its "
    "ranking of passages by relevance to a query"
)


def demo_pages() -> list[Page]:
    """Pages with canonical URLs; each topic page is long enough to split into several passages."""
    pages = []
    for slug, title, fact in TOPICS:
        text = " ".join([fact, FILLER, FILLER, fact.replace("The ", "Again the "), FILLER])
        pages.append(Page(f"https://example.org/wiki/{slug}", title, text))
    for i in range(24):  # background pages that mention rivers and mountains loosely
        text = f"Notes number {i} about travel. {FILLER}. Rivers and mountains are nice {i}."
        pages.append(Page(f"https://notes.example.com/n/{i}", f"Travel notes {i}", text))
    return pages


def make_settings(root: Path, *extra: str) -> Settings:
    return load_settings(
        "local",
        [
            f"data_root={root}",
            "cache.enabled=false",
            "corpus.passage_words=24",
            "corpus.passage_overlap=4",
            "env_service.snippet_chars=120",
            "env_service.max_queries_per_call=4",
            "env_service.max_url_chars=200",
            "env_service.api_key_env=LITERESEARCHER_TEST_ENV_KEY_UNSET",
            *extra,
        ],
    )


@pytest.fixture(scope="session")
def env_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("env")
    write_local_web(make_settings(root), demo_pages())
    return root


@pytest.fixture
def settings(env_root: Path) -> Settings:
    return make_settings(env_root)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings) as c:
        yield c


class app_client:
    """An httpx client on the app in-process, with its lifespan run (stores opened)."""

    def __init__(self, settings: Settings, **app_kwargs: object) -> None:
        self.app = create_app(settings, **app_kwargs)  # type: ignore[arg-type]

    async def __aenter__(self) -> httpx.AsyncClient:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://env.test"
        )
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()
        await self._lifespan.__aexit__(None, None, None)


@pytest.fixture
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("LITERESEARCHER_TEST_ENV_KEY_UNSET", raising=False)
    yield


class BackgroundServer:
    """A real uvicorn server on loopback, in a thread."""

    def __init__(self, app: Any, port: int) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
