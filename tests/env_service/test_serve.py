"""`literesearcher serve` starts the service on a built environment, which answers /ready and
/search.

Startup time is measured, not asserted here: the target (ready in under 10 s) is measured by
`bench/serve_startup.py`, beside the cost of importing the app alone."""

from __future__ import annotations

from pathlib import Path

import httpx

from literesearcher.testing import free_port, serve_command, serve_subprocess


def test_serve_command_comes_up_and_answers(env_root: Path) -> None:
    port = free_port()
    cmd = serve_command(env_root, port)
    with serve_subprocess(cmd, f"http://127.0.0.1:{port}/ready", timeout_s=60) as served:
        assert served.response.json()["ready"] is True
        search = httpx.post(f"http://127.0.0.1:{port}/search", json={"query": "everest"})
        assert "Mount Everest" in search.json()["text"]
