"""`literesearcher serve` starts the service on a built environment, ready in under 10 s."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from literesearcher.testing import free_port


def test_serve_command_is_ready_fast(env_root: Path) -> None:
    port = free_port()
    cmd = [
        sys.executable, "-m", "literesearcher.cli",
        "--set", f"data_root={env_root}",
        "--set", "cache.enabled=false",
        "serve", "--port", str(port),
    ]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=dict(os.environ), stderr=subprocess.PIPE, text=True)
    try:
        ready = None
        while time.monotonic() - start < 10:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        elapsed = time.monotonic() - start
        assert ready is not None and ready.status_code == 200, "not ready within 10 s"
        assert ready.json()["ready"] is True
        assert elapsed < 10
        search = httpx.post(f"http://127.0.0.1:{port}/search", json={"query": "everest"})
        assert "Mount Everest" in search.json()["text"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
