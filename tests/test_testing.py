"""`literesearcher.testing.serve_subprocess`: ready on the expected answer, a clear error with
the output when the server dies or is not ready in time, its whole process group stopped."""

from __future__ import annotations

import os
import sys

import pytest

from literesearcher.testing import free_port, serve_subprocess


def _http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]


def test_yields_once_ready_and_stops_the_process_group() -> None:
    port = free_port()
    with serve_subprocess(_http_server(port), f"http://127.0.0.1:{port}/") as served:
        assert served.response.status_code == 200 and served.startup_s > 0
        assert served.proc.poll() is None
    assert served.proc.returncode is not None  # reaped
    with pytest.raises(ProcessLookupError):  # nothing of its group is left
        os.killpg(served.proc.pid, 0)


def test_a_server_that_exits_raises_with_its_code_and_output() -> None:
    cmd = [sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"]
    with (
        pytest.raises(RuntimeError, match=r"exited with code 3(.|\n)*boom"),
        serve_subprocess(cmd, f"http://127.0.0.1:{free_port()}/"),
    ):
        pytest.fail("not ready")


def test_not_ready_in_time_raises_with_the_last_answer() -> None:
    port = free_port()
    never = serve_subprocess(
        _http_server(port), f"http://127.0.0.1:{port}/", ready=lambda r: False, timeout_s=1
    )
    with pytest.raises(RuntimeError, match=r"not ready .* within 1 s \(last: HTTP 200\)"), never:
        pytest.fail("not ready")
