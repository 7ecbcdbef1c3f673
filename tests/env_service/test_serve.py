"""`literesearcher serve` starts the service on a built environment, which answers /ready and
/search.

Startup time is measured, not asserted here: the target (ready in under 10 s) is measured by
`bench/serve_startup.py`, beside the cost of importing the app alone."""

from __future__ import annotations

from pathlib import Path

import httpx

from conf import Settings
from literesearcher.testing import free_port, serve_app, serve_command, serve_subprocess


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
