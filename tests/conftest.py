"""Shared fixtures. Prefect and MLflow point at a throw-away folder for the whole session.

The runtime is configured at import time, before any test module imports Prefect (Prefect
reads its settings when first imported).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conf import Settings, load_settings
from flows.runtime import configure_runtime

SESSION_ROOT = Path(tempfile.mkdtemp(prefix="literesearcher-tests-"))
configure_runtime(load_settings("local", [f"data_root={SESSION_ROOT}"]), force=True)

PG_DSN = os.environ.get("LITERESEARCHER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LITERESEARCHER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The local profile rooted in this test's temporary folder."""
    return load_settings("local", [f"data_root={tmp_path}"])


@pytest.fixture(scope="session")
def tiny_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Qwen3 policy in HF format, built once per session."""
    from literesearcher.tiny_models import build_tiny_policy

    return build_tiny_policy(tmp_path_factory.mktemp("tiny-policy"), seed=0)


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One temporary Prefect API for the session (flows run against it in-process)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """A reachable PostgreSQL; fails (never skips) with what is needed when it is absent."""
    import psycopg

    try:
        psycopg.connect(PG_DSN, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is needed at {PG_DSN} ({exc}). Start it with "
            "'bash scripts/services.sh start' or set LITERESEARCHER_TEST_PG_DSN.",
            pytrace=False,
        )
    return PG_DSN


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A reachable Redis; fails (never skips) with what is needed when it is absent."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is needed at {REDIS_URL} ({exc}). Start it with "
            "'bash scripts/services.sh start' or set LITERESEARCHER_TEST_REDIS_URL.",
            pytrace=False,
        )
    return REDIS_URL
