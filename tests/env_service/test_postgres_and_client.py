"""The PostgreSQL page store behind the service (break and restore the real connection) and the
async client's retries, against real servers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from conf import Settings
from env_service.app import create_app
from env_service.client import EnvClient, EnvClientError, EnvUnreachableError
from env_service.stores.postgres_pages import PostgresPageStore
from literesearcher.testing import free_port, serve_app

from .conftest import BackgroundServer, app_client, demo_pages, make_settings

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DB = "literesearcher_envsvc_test"
PG_DSN = f"postgresql://postgres@127.0.0.1:5432/{PG_DB}"


def _admin(statement: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(statement)


def _allow_connections(allow: bool) -> None:
    _admin(f"ALTER DATABASE {PG_DB} WITH ALLOW_CONNECTIONS {str(allow).lower()}")
    if not allow:
        _admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{PG_DB}' AND pid <> pg_backend_pid()"
        )


@pytest.fixture(scope="module")
def pg_settings(env_root: Path) -> Iterator[Settings]:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PG_DB]).fetchone()
        if not exists:
            conn.execute(f"CREATE DATABASE {PG_DB}")
    _allow_connections(True)  # a previous run killed mid-test may have left it closed
    table = f"pages_{uuid.uuid4().hex[:12]}"
    store = PostgresPageStore(PG_DSN, table)
    store.upsert(demo_pages())
    try:
        yield make_settings(
            env_root,
            "page_store.backend=postgres",
            f"page_store.postgres_dsn={PG_DSN}",
            f"page_store.table={table}",
        )
    finally:
        _allow_connections(True)
        store.drop()
        store.close()


class Observed(httpx.AsyncBaseTransport):
    """A real transport that lets the test react to each response or connection error."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        on_response: Callable[[httpx.Response], None] = lambda r: None,
        on_error: Callable[[Exception], None] = lambda e: None,
    ) -> None:
        self.inner = inner
        self.on_response = on_response
        self.on_error = on_error
        self.statuses: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.TransportError as exc:
            self.on_error(exc)
            raise
        await response.aread()
        self.statuses.append(response.status_code)
        self.on_response(response)
        return response


@pytest.mark.postgres
async def test_visit_on_postgres_page_store(pg_settings: Settings) -> None:
    async with app_client(pg_settings) as c:
        ready = await c.get("/ready")
        assert ready.json()["checks"]["page_store"] == "ok"
        r = await c.post(
            "/visit",
            json={
                "url": ["http://www.example.org/wiki/bohr/", "https://example.org/wiki/curie"],
                "goal": "When did he receive the Nobel Prize?",
                "mask_urls": ["example.org/wiki/curie#bio"],
            },
        )
        bohr, curie = r.json()["results"]
        assert bohr["found"] is True and "1922" in bohr["text"]
        assert curie["found"] is False and "could not be accessed" in curie["text"]
        # user text is a bound parameter, never SQL: a quote-laden URL is just not found
        evil = "https://example.org/wiki/x'); DROP TABLE pages; --"
        r = await c.post("/visit", json={"url": evil, "goal": "g"})
        assert r.status_code == 200 and r.json()["results"][0]["found"] is False
        assert (await c.post("/visit", json={"url": "example.org/wiki/nile", "goal": "g"})).json()[
            "results"
        ][0]["found"]


@pytest.mark.postgres
@pytest.mark.slow  # the page store's pool waits its 10 s timeout before giving up
async def test_postgres_outage_is_503_and_client_retries_until_it_returns(
    pg_settings: Settings,
) -> None:
    service = app_client(pg_settings)
    async with service as http:
        assert (await http.post("/visit", json={"url": "example.org/wiki/k2", "goal": "g"})).json()[
            "results"
        ][0]["found"]
        outage: dict[str, str] = {}

        def restore_on_first_503(response: httpx.Response) -> None:
            if response.status_code == 503 and not outage:
                outage["detail"] = response.json()["detail"]
                _allow_connections(True)

        transport = Observed(httpx.ASGITransport(app=service.app), restore_on_first_503)
        client = EnvClient("http://env.test", retries=3, backoff_s=0.05, transport=transport)
        _allow_connections(False)
        try:
            resp = await client.visit("https://example.org/wiki/k2", "height of K2")
        finally:
            _allow_connections(True)
            await client.aclose()
        assert transport.statuses[0] == 503 and transport.statuses[-1] == 200
        assert "PostgreSQL page store unavailable" in outage["detail"]
        assert "retry later" in outage["detail"]
        assert resp.results[0].found is True and "second highest" in resp.text
        metrics = (await http.get("/metrics")).text
        assert 'env_requests_total{route="/visit",status="503"} 1.0' in metrics


async def test_client_retries_connection_errors_not_4xx(settings: Settings) -> None:
    port = free_port()
    server = BackgroundServer(create_app(settings), port)
    # The service is down on the first attempt; it comes up before the retry.
    transport = Observed(httpx.AsyncHTTPTransport(), on_error=lambda e: server.start())
    try:
        async with EnvClient(
            f"http://127.0.0.1:{port}", retries=2, backoff_s=0.01, transport=transport
        ) as client:
            resp = await client.search(["danube", "everest"], top_k=2)
            assert client.attempts == 2
            assert [q.query for q in resp.results] == ["danube", "everest"]
            assert resp.text.count("\n=======\n") == 1
            with pytest.raises(EnvClientError) as err:
                await client.search("")
            assert err.value.status == 422 and "query[0] is empty" in str(err.value)
            assert client.attempts == 3  # a 4xx is not retried
            report = await client.ready()
            assert report["ready"] is True
    finally:
        server.stop()


async def test_client_gives_up_after_retries() -> None:
    port = free_port()  # nothing listens there
    async with EnvClient(f"http://127.0.0.1:{port}", retries=2, backoff_s=0.01) as client:
        with pytest.raises(EnvUnreachableError, match=f"127.0.0.1:{port} is unreachable"):
            await client.visit("https://a.org", "g")
        assert client.attempts == 3


async def test_a_service_that_answers_503_is_not_unreachable() -> None:
    """A service that answers (503, not ready) stays an EnvClientError the model is shown."""
    app = FastAPI()

    @app.post("/visit")
    async def busy() -> JSONResponse:
        return JSONResponse({"detail": "not ready"}, status_code=503)

    with serve_app(app) as base:
        async with EnvClient(base, retries=1, backoff_s=0.01) as client:
            with pytest.raises(EnvClientError, match="after 2 attempts: 503") as err:
                await client.visit("https://a.org", "g")
    assert not isinstance(err.value, EnvUnreachableError)


def test_client_from_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.env_service.api_key_env, "k")
    client = EnvClient.from_settings(settings)
    assert str(client._http.base_url) == "http://127.0.0.1:8765"
    assert client._http.headers["X-API-Key"] == "k"
    assert client.retries == settings.env_service.client_retries
