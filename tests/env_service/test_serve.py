"""`literesearcher serve` starts the service on a built environment, which answers /ready and
/search.

Startup time is measured, not asserted here: the target (ready in under 10 s) is measured by
`bench/serve_startup.py`, beside the cost of importing the app alone."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from conf import Settings
from literesearcher.testing import free_port, serve_app, serve_command, serve_subprocess

from .conftest import demo_pages, make_settings, write_local_web


def test_serve_command_comes_up_and_answers(env_root: Path) -> None:
    port = free_port()
    cmd = serve_command(env_root, port)
    with serve_subprocess(cmd, f"http://127.0.0.1:{port}/ready", timeout_s=60) as served:
        assert served.response.json()["ready"] is True
        search = httpx.post(f"http://127.0.0.1:{port}/search", json={"query": "everest"})
        assert "Mount Everest" in search.json()["text"]


def test_another_server_on_the_port_is_not_taken_for_env_service(settings: Settings) -> None:
    """Something else answering GET /health with 200 on the configured port (a Prefect
    temporary server picks ports in that range) is not used as the local web: a flow serves its
    own env_service on a free port instead."""
    from fastapi import FastAPI

    from env_service.serving import ensure_env_service, env_service_answers

    other = FastAPI()

    @other.get("/health")
    async def health() -> bool:
        return True

    with serve_app(other) as base:
        port = int(base.rsplit(":", 1)[1])
        taken = settings.model_copy(deep=True)
        taken.env_service.port = port
        taken.env_service.url = base
        assert not env_service_answers(base)
        with ensure_env_service(taken) as live:
            assert live.env_service.url != base and env_service_answers(live.env_service.url)
            search = httpx.post(f"{live.env_service.url}/search", json={"query": "everest"})
            assert "Mount Everest" in search.json()["text"]


def test_a_service_of_another_web_is_not_taken_for_this_one(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An env_service left running for another data root, found on the configured port, is not
    used: the flow serves its own web. One named by env_service.url is used, with a warning."""
    from env_service.app import create_app
    from env_service.serving import ensure_env_service, env_service_health
    from env_service.stores.factory import web_identity

    ours = make_settings(tmp_path / "ours")
    write_local_web(ours, demo_pages())
    assert web_identity(ours) != web_identity(settings)
    with serve_app(create_app(settings)) as base:
        ours.env_service.port = int(base.rsplit(":", 1)[1])
        assert (env_service_health(base) or {}).get("web") == web_identity(settings)
        with caplog.at_level(logging.WARNING, logger="env_service.serving"):
            with ensure_env_service(ours) as live:
                assert live.env_service.url != base
                health = env_service_health(live.env_service.url) or {}
                assert health.get("web") == web_identity(ours)
            assert "serves another local web" in caplog.text
            named = ours.model_copy(deep=True)
            named.env_service.url = base
            with ensure_env_service(named) as used:
                assert used is named
