"""`literesearcher serve`: the local web (search/visit) over HTTP with uvicorn.

One worker serves the app in this process. With `env_service.workers` (or `--workers`) above
one, uvicorn starts that many worker processes on the same socket; each builds the app with
`env_service.app:app_factory` from the settings this command resolved, passed as JSON in the
environment variable `env_service.app.SETTINGS_ENV`. Every worker opens the stores read-only
and keeps its own response LRU and Prometheus counters (use the Redis cache to share hits).
uvicorn picks httptools and uvloop when they are installed (`--http`/`--loop` auto).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from conf import Settings


def register(sub: Any, help_text: str) -> None:
    p = sub.add_parser(
        "serve",
        help=help_text,
        description="Serve the built local web: POST /search, POST /visit, GET /health, "
        "/ready, /metrics. Binds env_service.host (127.0.0.1 by default); an API key is "
        "required when the variable named by env_service.api_key_env is set.",
    )
    p.add_argument("--host", default=None, help="bind address (default: env_service.host)")
    p.add_argument("--port", type=int, default=None, help="port (default: env_service.port)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: env_service.workers); about one per core",
    )
    p.add_argument(
        "--http",
        choices=["auto", "httptools", "h11"],
        default="auto",
        help="HTTP parser (auto: httptools when installed, else the pure-Python h11)",
    )
    p.add_argument(
        "--loop",
        choices=["auto", "uvloop", "asyncio"],
        default="auto",
        help="event loop (auto: uvloop when installed)",
    )
    p.add_argument("--log-level", default="warning", help="uvicorn log level")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from env_service.app import SETTINGS_ENV, create_app
    from env_service.http_protocol import http_protocol

    workers = args.workers if args.workers is not None else settings.env_service.workers
    if workers < 1:
        raise SystemExit(f"--workers must be at least 1, got {workers}")
    options: dict[str, Any] = {
        "host": args.host or settings.env_service.host,
        "port": args.port or settings.env_service.port,
        "log_level": args.log_level,
        "access_log": False,  # per-request logging costs more than the lookup itself
        # Pooled clients keep connections open between tool calls; a short keep-alive races
        # with the next request under load and surfaces as a connection reset.
        "timeout_keep_alive": 75,
        # TCP_NODELAY on every connection, also in worker processes (env_service/http_protocol)
        "http": http_protocol(args.http),
        "loop": args.loop,
    }
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
        return 0
    # Worker processes are spawned: they rebuild the app from the resolved settings.
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    uvicorn.run("env_service.app:app_factory", factory=True, workers=workers, **options)
    return 0
