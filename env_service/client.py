"""Async client of the local web: what the episode runner and the rollouts call.

One pooled `httpx.AsyncClient` per client; retries with exponential backoff on 503 and on
connection errors only. A 4xx is the caller's mistake: it raises at once, never retried.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import httpx

from conf import Settings
from env_service.schemas import SearchResponse, VisitResponse

# Connection-level failures worth another try; a read timeout is not (the work may be running).
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


class EnvClientError(RuntimeError):
    """The service refused the request (4xx) or stayed unavailable after all retries."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EnvUnreachableError(EnvClientError):
    """No attempt reached the service (connection refused or timed out): it is down or the
    URL is wrong. Unlike a refused request this is not the model's doing, so an episode
    stops on it (`rl.episode`) instead of showing it to the model as a tool error."""


# Failures that mean nothing answered at all.
_UNREACHABLE: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout)


class EnvClient:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 3,
        max_connections: int = 256,
        backoff_s: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self.retries = retries
        self.backoff_s = backoff_s
        self.attempts = 0  # requests sent, retries included (tests and logs read it)
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> EnvClient:
        cfg = settings.env_service
        return cls(
            cfg.base_url(),
            api_key=os.environ.get(cfg.api_key_env) or None,
            timeout_s=cfg.client_timeout_s,
            retries=cfg.client_retries,
        )

    async def __aenter__(self) -> EnvClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def search(
        self,
        queries: list[str] | str,
        *,
        top_k: int | None = None,
        mask_urls: Sequence[str] = (),
        mode: str | None = None,
    ) -> SearchResponse:
        body: dict[str, Any] = {"query": queries, "mask_urls": list(mask_urls)}
        if top_k is not None:
            body["top_k"] = top_k
        if mode is not None:
            body["mode"] = mode
        resp = await self._request("POST", "/search", json=body)
        return SearchResponse.model_validate_json(resp.content)

    async def visit(
        self, urls: list[str] | str, goal: str, *, mask_urls: Sequence[str] = ()
    ) -> VisitResponse:
        body = {"url": urls, "goal": goal, "mask_urls": list(mask_urls)}
        resp = await self._request("POST", "/visit", json=body)
        return VisitResponse.model_validate_json(resp.content)

    async def ready(self) -> dict[str, Any]:
        """The service's readiness report (a 503 'not ready' is returned, not raised)."""
        resp = await self._request("GET", "/ready", ok_statuses=(200, 503), retry_503=False)
        data: dict[str, Any] = resp.json()
        return data

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        ok_statuses: tuple[int, ...] = (200,),
        retry_503: bool = True,
    ) -> httpx.Response:
        last: str = ""
        unreachable = True  # every attempt so far failed to connect
        for attempt in range(self.retries + 1):
            if attempt:
                # Full jitter keeps many rollouts from retrying in lockstep.
                await asyncio.sleep(random.uniform(0, self.backoff_s * 2 ** (attempt - 1)))
            self.attempts += 1
            try:
                resp = await self._http.request(method, path, json=json)
            except RETRYABLE_ERRORS as exc:
                last = f"{type(exc).__name__}: {exc}"
                unreachable = unreachable and isinstance(exc, _UNREACHABLE)
                continue
            unreachable = False
            if resp.status_code in ok_statuses:
                return resp
            if resp.status_code == 503 and retry_503:
                last = f"503: {_detail(resp)}"
                continue
            raise EnvClientError(
                f"{method} {path} failed with {resp.status_code}: {_detail(resp)}",
                resp.status_code,
            )
        if unreachable:
            raise EnvUnreachableError(
                f"env_service at {self._http.base_url} is unreachable ({method} {path}, "
                f"{self.retries + 1} attempts: {last}): is it running? (`literesearcher serve`)"
            )
        raise EnvClientError(
            f"{method} {path} failed after {self.retries + 1} attempts: {last}", 503
        )


def _detail(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("detail", resp.text))
    except ValueError:
        return resp.text[:500]
