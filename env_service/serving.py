"""Make sure a flow has a local web to talk to: use the configured env_service when it answers,
else serve the app in this process (a uvicorn server in a daemon thread) for the block."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from conf import Settings
from env_service.schemas import SERVICE_NAME

log = logging.getLogger(__name__)


def env_service_health(url: str, timeout_s: float = 2.0) -> dict[str, Any] | None:
    """The /health report of the env_service at `url`, or None when none answers there
    (another server on the port, a Prefect temporary server say, does not count)."""
    try:
        resp = httpx.get(f"{url.rstrip('/')}/health", timeout=timeout_s)
        body = resp.json() if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    return body if isinstance(body, dict) and body.get("service") == SERVICE_NAME else None


def env_service_answers(url: str, timeout_s: float = 2.0) -> bool:
    """Whether an env_service answers GET {url}/health."""
    return env_service_health(url, timeout_s) is not None


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or on a free port when that one is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.bind((host, 0))
    return sock


def server_config(app: Any) -> uvicorn.Config:
    """The in-process server's config. Our own socket reads proto 0, so asyncio would leave
    Nagle on: the no-delay protocol (env_service/http_protocol.py) sets TCP_NODELAY."""
    from env_service.http_protocol import http_protocol

    return uvicorn.Config(app, log_level="warning", lifespan="on", http=http_protocol("auto"))


@contextlib.contextmanager
def serve_in_thread(
    app: Any,
    sock: socket.socket,
    startup_timeout_s: float = 60.0,
    failed: str = "the in-process server failed to start (see the log above)",
) -> Iterator[None]:
    """Serve an ASGI app with uvicorn (`server_config`) on a bound socket in a daemon thread;
    return once it accepts requests (`failed` if the thread dies first), stop it on exit."""
    server = uvicorn.Server(server_config(app))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="in-process-server"
    )
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(failed)
            if time.monotonic() > deadline:
                raise RuntimeError(f"the in-process server did not start in "
                                   f"{startup_timeout_s:.0f}s")  # fmt: skip
            time.sleep(0.05)
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def serve_env_service(
    settings: Settings,
    *,
    port: int | None = None,
    startup_timeout_s: float = 60.0,
    failed: str | None = None,
) -> Iterator[Settings]:
    """env_service for `settings` (its stores, index and cache) started in this process on
    `port` (default: the configured one; a free port when that is taken, or for 0); yields a
    copy of `settings` pointing at it and stops it on exit. `failed`: the error when the
    server dies while starting."""
    from env_service.app import create_app

    cfg = settings.env_service
    sock = _bind(cfg.host, cfg.port if port is None else port)
    host, bound = sock.getsockname()[:2]
    failed = failed or ("the in-process env_service failed to start (see the log above): are "
                        "the page store and index built? (`literesearcher build-env`)")  # fmt: skip
    try:
        with serve_in_thread(create_app(settings), sock, startup_timeout_s, failed):
            live = settings.model_copy(deep=True)
            live.env_service.url = f"http://{host}:{bound}"
            yield live
    finally:
        sock.close()


@contextlib.contextmanager
def ensure_env_service(settings: Settings, startup_timeout_s: float = 60.0) -> Iterator[Settings]:
    """Yield settings whose env_service URL answers: unchanged when the configured service is
    up and serves this web (`web_identity`), else a copy pointing at an in-process server
    started here and stopped on exit. A service named by `env_service.url` is used even when
    it reports another web, with a warning; one merely found on the port is not."""
    from env_service.stores.factory import web_identity

    url = settings.env_service.base_url()
    health = env_service_health(url)
    if health is not None:
        ours = health.get("web") == web_identity(settings)
        if ours or settings.env_service.url:
            if not ours:
                log.warning("env_service at %s serves another local web than these settings' "
                            "(another data root?); using it, as env_service.url names it", url)  # fmt: skip
            yield settings
            return
        log.warning("env_service at %s serves another local web (another data root's?); "
                    "serving this one's in this process", url)  # fmt: skip
    with serve_env_service(settings, startup_timeout_s=startup_timeout_s) as live:
        yield live
