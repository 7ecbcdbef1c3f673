"""Shared fixtures for the trainer tests: one tiny Qwen3 policy built locally, and a small real
local web (tantivy + DuckDB behind the env_service app on a local port)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from conf import load_settings
from env_service.app import create_app
from env_service.stores.base import Page
from env_service.stores.factory import open_lexical_index, open_page_store
from literesearcher.tiny_models import build_tiny_policy
from tasks.corpus.passages import split_passages


@pytest.fixture(scope="session")
def tiny_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_policy(tmp_path_factory.mktemp("tiny-policy"), seed=0)


@dataclass(frozen=True)
class LocalWeb:
    url: str
    source: str  # the page a Hubble task is made from (its mask URL)
    mirror: str  # another page with the same fact


SOURCE = "https://example.org/wiki/hubble"
MIRROR = "https://mirror.example.net/hubble-bio"
PAGES = [
    Page(SOURCE, "Edwin Hubble", "Edwin Hubble was born in 1889 in Marshfield Missouri."),
    Page(
        MIRROR,
        "Hubble biography",
        "The astronomer Edwin Hubble was born in Marshfield in 1889 and studied galaxies.",
    ),
    Page("https://example.org/wiki/curie", "Marie Curie", "Marie Curie won two Nobel Prizes."),
]


@pytest.fixture(scope="session")
def local_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWeb]:
    settings = load_settings(
        "local",
        [
            f"data_root={tmp_path_factory.mktemp('web')}",
            "cache.enabled=false",
            "env_service.api_key_env=LITERESEARCHER_TEST_ENV_KEY_UNSET",
        ],
    )
    lexical = open_lexical_index(settings, writable=True)
    for p in PAGES:
        lexical.add(split_passages(p.url, p.title, p.text, 24, 4))
    lexical.commit()
    lexical.close()
    store = open_page_store(settings, writable=True)
    store.upsert(PAGES)
    store.close()

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "env_service did not start"
        time.sleep(0.05)
    yield LocalWeb(f"http://127.0.0.1:{sock.getsockname()[1]}", SOURCE, MIRROR)
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="session")
def ray_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local Ray instance with its dashboard: the Job Submission API at the returned URL."""
    import ray

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = ray.init(
        num_cpus=1,
        include_dashboard=True,
        dashboard_port=port,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
    )
    try:
        yield f"http://{ctx.dashboard_url}"
    finally:
        ray.shutdown()
