"""Shared fixtures for the trainer tests: a small real local web (tantivy + DuckDB behind the
env_service app on a local port) and a local Ray dashboard (the tiny policy: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from conf import load_settings
from env_service.stores.base import Page
from literesearcher.testing import free_port, serve_local_web


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
    with serve_local_web(settings, PAGES, words=24, overlap=4) as url:
        yield LocalWeb(url, SOURCE, MIRROR)


@pytest.fixture(scope="session")
def ray_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local Ray instance with its dashboard: the Job Submission API at the returned URL."""
    import ray

    port = free_port()
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
