"""Helpers shared by the tests and the bench scripts: a free loopback port, an ASGI app served
on one in a thread, a server command run as a subprocess until it answers HTTP, and a small
real local web (lexical index + page store) from a few pages."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

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


def serve_command(data_root: str | Path, port: int, *settings: str) -> list[str]:
    """`literesearcher serve` on `port` for the local web under `data_root` (response cache
    off), with more `--set key=value` `settings`, run by this interpreter."""
    sets = [a for s in ("cache.enabled=false", *settings) for a in ("--set", s)]
    return [sys.executable, "-m", "literesearcher.cli", "--set", f"data_root={data_root}",
            *sets, "serve", "--port", str(port)]  # fmt: skip


@dataclass
class ServedProcess:
    """A server `serve_subprocess` started: the process, the response that showed it ready,
    and the seconds from launch to that response."""

    proc: subprocess.Popen[bytes]
    response: httpx.Response
    startup_s: float


def _status_200(response: httpx.Response) -> bool:
    return response.status_code == 200


@contextlib.contextmanager
def serve_subprocess(
    cmd: Sequence[str],
    url: str,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    log: Path | None = None,
    timeout_s: float = 60.0,
    ready: Callable[[httpx.Response], bool] = _status_200,
    poll_s: float = 0.05,
    stop_timeout_s: float = 20.0,
) -> Iterator[ServedProcess]:
    """Run `cmd` in a new process group (stdout and stderr to `log`, else a temporary file) and
    GET `url` until `ready(response)` (default: status 200); yield the process. RuntimeError
    with the exit code and the output's tail if it exits or `timeout_s` passes first. On exit
    the group gets SIGTERM, SIGKILL after `stop_timeout_s`, and the process is reaped."""
    import httpx

    with log.open("w+b") if log is not None else tempfile.TemporaryFile() as out:
        start = time.monotonic()
        proc = subprocess.Popen(
            list(cmd), env=None if env is None else dict(env), cwd=cwd,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        failure, last = None, "nothing"
        try:
            while True:
                try:
                    response = httpx.get(url, timeout=2)
                    if ready(response):
                        break
                    last = f"HTTP {response.status_code}"
                except httpx.HTTPError as e:
                    last = type(e).__name__
                code = proc.poll()
                if code is not None:
                    failure = f"exited with code {code}"
                elif time.monotonic() - start > timeout_s:
                    failure = f"was not ready at {url} within {timeout_s:.0f} s (last: {last})"
                if failure is not None:
                    break
                time.sleep(poll_s)
            if failure is None:
                yield ServedProcess(proc, response, time.monotonic() - start)
        finally:
            _stop_group(proc, stop_timeout_s)
        if failure is not None:  # stopped: the output is complete, and safe to read back
            out.seek(0)
            tail = out.read()[-4000:].decode(errors="replace")
            raise RuntimeError(f"`{shlex.join(cmd)}` {failure}; its output:\n{tail}")


def _stop_group(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM to the process group `proc` leads; SIGKILL to what is left of it after
    `timeout_s` (the leader, or workers it left behind); reap the leader."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout_s)
    # a group outlives its leader while members remain, and its id is not reused meanwhile
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


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
