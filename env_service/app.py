"""The local web over HTTP: `POST /search`, `POST /visit`, `GET /health|/ready|/metrics`.

Statuses tell the truth: 400 for a body that is not JSON, 422 for a request that is JSON but
wrong (types, empty query, too many queries, oversize URL), 401 for a bad API key, 503 when a
page store or index is down (and the next request tries again, so the service recovers by
itself when the engine returns).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import anyio
import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from conf import Settings
from env_service.embedder import Encoder, QueryEmbedder, bge_m3_encoder
from env_service.extract import ExtractiveExtractor, LLMExtractor
from env_service.metrics import MetricsMiddleware, ServiceMetrics
from env_service.schemas import SERVICE_NAME, RequestLimitError, SearchRequest, VisitRequest
from env_service.search import VECTOR_MODES, SearchService
from env_service.stores.base import Cache, LexicalIndex, PageStore, StoreUnavailable, VectorIndex
from env_service.stores.cache import LRUCache, open_cache
from env_service.stores.factory import web_identity
from env_service.tokens import token_counter
from env_service.visit import VisitService
from literesearcher.urls import try_canonical_url

log = logging.getLogger(__name__)
JSON = "application/json"
T = TypeVar("T")
# `literesearcher serve --workers N` passes its resolved settings (JSON) to the worker
# processes in this environment variable; `app_factory` reads them.
SETTINGS_ENV = "LITERESEARCHER_SERVE_SETTINGS"
# Response header telling whether the response cache answered (absent with the cache off).
CACHE_HEADER = "x-cache"
_HIT = {CACHE_HEADER: "hit"}
_MISS = {CACHE_HEADER: "miss"}


class AuthError(Exception):
    pass


@dataclass
class Runtime:
    settings: Settings
    search: SearchService
    visit: VisitService
    pages: PageStore
    lexical: LexicalIndex
    vectors: VectorIndex | None
    cache: Cache | None
    embedder: QueryEmbedder | None
    metrics: ServiceMetrics
    api_key: str | None
    closers: list[Callable[[], Any]] = field(default_factory=list)
    # None: store calls run on the event loop; else in at most this many worker threads (few
    # threads: with many, the GIL hand-offs between them cost more than the calls).
    limiter: anyio.CapacityLimiter | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self.limiter is None:
            return fn(*args)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)


async def runtime(request: Request) -> Runtime:
    """The opened stores of this app, after the API key check (async: FastAPI would run a
    plain function in its thread pool, a thread hop per request)."""
    rt: Runtime = request.app.state.runtime
    if rt.api_key is not None:
        given = request.headers.get("x-api-key") or ""
        auth = request.headers.get("authorization", "")
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:]
        if not hmac.compare_digest(given.encode(), rt.api_key.encode()):
            raise AuthError()
    return rt


RuntimeDep = Annotated[Runtime, Depends(runtime)]


def create_app(settings: Settings, *, encoder: Encoder | None = None) -> FastAPI:
    """The service app; stores open in the lifespan. `encoder` overrides the BGE-M3 encoder."""
    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = await anyio.to_thread.run_sync(_open_runtime, settings, metrics, encoder)
        app.state.runtime = rt
        try:
            yield
        finally:
            if rt.embedder is not None:
                await rt.embedder.aclose()
            if rt.visit.llm is not None:
                await rt.visit.llm.aclose()
            for close in reversed(rt.closers):
                try:
                    close()
                except Exception as exc:  # one engine failing to close must not hide others
                    log.warning("closing %s failed: %s", close, exc)

    app = FastAPI(title="LiteResearcher local web", version="1", lifespan=lifespan)
    app.add_middleware(MetricsMiddleware, metrics=lambda: metrics)
    _install_error_handlers(app)

    web = web_identity(settings)

    @app.get("/health")
    async def health() -> dict[str, str]:
        # `service` tells env_service apart from any other server answering /health on the
        # port, `web` which local web it serves (`env_service.serving.ensure_env_service`).
        return {"status": "ok", "service": SERVICE_NAME, "web": web}

    @app.get("/ready")
    async def ready(rt: RuntimeDep) -> JSONResponse:
        checks, counts = await rt.run(_check_stores, rt)
        if rt.visit.llm is not None:
            try:
                await rt.visit.llm.ping()
                checks["llm"] = "ok"
            except httpx.HTTPError as exc:
                checks["llm"] = f"unavailable: {exc}"
        ok = all(v == "ok" for v in checks.values())
        body = {"ready": ok, "checks": checks, "counts": counts}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def prometheus(rt: RuntimeDep) -> Response:
        return Response(rt.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/search")
    async def search(req: SearchRequest, rt: RuntimeDep) -> Response:
        cfg = rt.settings.env_service
        req.check_limits(
            max_queries=cfg.max_queries_per_call,
            max_query_chars=cfg.max_query_chars,
            max_url_chars=cfg.max_url_chars,
        )
        mode = req.mode or rt.settings.index.retrieval_mode
        rt.search.check_mode(mode)
        top_k = req.top_k or cfg.top_k
        mask = _canonical_mask(req.mask_urls)
        key = _cache_key("search", req.query, top_k, mode, sorted(mask))
        cached = await _cache_get(rt, "search", key)
        if cached is not None:
            return Response(cached, media_type=JSON, headers=_HIT)
        embeddings = None
        if mode in VECTOR_MODES:
            if rt.embedder is None:
                raise RequestLimitError(f"mode {mode!r} needs a query embedder; none is loaded")
            embeddings = await rt.embedder.embed_many(req.query)

        def compute() -> bytes:
            resp = rt.search.search(
                req.query, top_k=top_k, mode=mode, mask=mask, embeddings=embeddings
            )
            body = resp.model_dump_json().encode()
            if rt.cache is not None:
                rt.cache.set(key, body)
            return body

        return Response(await rt.run(compute), media_type=JSON, headers=_cache_headers(rt))

    @app.post("/visit")
    async def visit(req: VisitRequest, rt: RuntimeDep) -> Response:
        cfg = rt.settings.env_service
        req.check_limits(
            max_urls=cfg.max_urls_per_call,
            max_url_chars=cfg.max_url_chars,
            max_goal_chars=cfg.max_goal_chars,
        )
        mask = _canonical_mask(req.mask_urls)
        extractor = "llm" if rt.visit.llm is not None else "extractive"
        key = _cache_key("visit", req.url, req.goal, sorted(mask), extractor)
        cached = await _cache_get(rt, "visit", key)
        if cached is not None:
            return Response(cached, media_type=JSON, headers=_HIT)
        if rt.visit.llm is None:

            def compute() -> bytes:
                resp = rt.visit.visit_extractive(req.url, req.goal, mask)
                body = resp.model_dump_json().encode()
                if rt.cache is not None:
                    rt.cache.set(key, body)
                return body

            return Response(await rt.run(compute), media_type=JSON, headers=_cache_headers(rt))
        lookups = await rt.run(rt.visit.lookup, req.url, mask)
        body = (await rt.visit.finish_with_llm(lookups, req.goal)).model_dump_json().encode()
        if rt.cache is not None:
            await rt.run(rt.cache.set, key, body)
        return Response(body, media_type=JSON, headers=_cache_headers(rt))

    return app


def app_factory() -> FastAPI:
    """The app of one `serve --workers N` worker process, from the settings in SETTINGS_ENV."""
    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise RuntimeError(
            f"{SETTINGS_ENV} is not set: start worker processes with `literesearcher serve`"
        )
    return create_app(Settings.model_validate_json(raw))


def _cache_headers(rt: Runtime) -> dict[str, str] | None:
    return None if rt.cache is None else _MISS


def _open_runtime(settings: Settings, metrics: ServiceMetrics, encoder: Encoder | None) -> Runtime:
    from env_service.stores.factory import open_lexical_index, open_page_store, open_vector_index

    closers: list[Callable[[], Any]] = []
    cfg = settings.env_service
    try:
        lexical = open_lexical_index(settings)
        closers.append(lexical.close)
        vectors = open_vector_index(settings)
        if vectors is not None:
            closers.append(vectors.close)
        pages = open_page_store(settings)
        closers.append(pages.close)
        cache = open_cache(settings)
        if cache is not None:
            closers.append(cache.close)
    except Exception:
        for close in reversed(closers):
            close()
        raise
    metrics.bind_cache(cache)
    embedder = None
    if vectors is not None:
        embedder = QueryEmbedder(
            encoder or bge_m3_encoder(settings),
            max_batch=cfg.embed_max_batch,
            max_wait_ms=cfg.embed_max_wait_ms,
        )
    extractive = ExtractiveExtractor(token_counter(cfg.tokenizer_path), cfg.visit_token_budget)
    llm = None
    if cfg.extractor:
        endpoint = settings.llm.endpoints.get(cfg.extractor)
        if endpoint is None:
            raise ValueError(
                f"env_service.extractor={cfg.extractor!r} names no entry in llm.endpoints"
            )
        llm = LLMExtractor(endpoint, extractive, on_fallback=metrics.extractor_fallbacks.inc)
    api_key = os.environ.get(cfg.api_key_env) or None
    return Runtime(
        settings=settings,
        search=SearchService(lexical, vectors, pages, settings.index.fusion, cfg.snippet_chars),
        visit=VisitService(pages, extractive, llm),
        pages=pages,
        lexical=lexical,
        vectors=vectors,
        cache=cache,
        embedder=embedder,
        metrics=metrics,
        api_key=api_key,
        closers=closers,
        limiter=anyio.CapacityLimiter(cfg.store_threads) if cfg.store_threads else None,
    )


def _check_stores(rt: Runtime) -> tuple[dict[str, str], dict[str, int]]:
    """Ping every store; the index reports how many passages it has loaded."""
    targets: dict[str, Any] = {"lexical_index": rt.lexical, "page_store": rt.pages}
    if rt.vectors is not None:
        targets["vector_index"] = rt.vectors
    checks: dict[str, str] = {}
    counts: dict[str, int] = {}
    for name, store in targets.items():
        try:
            store.ping()
            if name != "page_store":  # a row count of a large PostgreSQL table is a full scan
                counts[name] = store.count()
            checks[name] = "ok"
        except Exception as exc:  # readiness reports every failure, whatever its type
            checks[name] = f"unavailable: {exc}"
    return checks, counts


def _canonical_mask(urls: list[str]) -> frozenset[str]:
    return frozenset(c for c in map(try_canonical_url, urls) if c is not None)


def _cache_key(*parts: Any) -> str:
    raw = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(raw.encode("utf-8"), digest_size=16).hexdigest()


async def _cache_get(rt: Runtime, route: str, key: str) -> bytes | None:
    if rt.cache is None:
        return None
    # The in-process LRU is a dict lookup: no thread hop; Redis is I/O: off the event loop.
    if isinstance(rt.cache, LRUCache):
        value = rt.cache.get(key)
    else:
        value = await rt.run(rt.cache.get, key)
    rt.metrics.cache_result(route, value is not None)
    return value


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"detail": "request body is not valid JSON"}, status_code=400)
        parts = []
        for e in errors:
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
            parts.append(f"{where}: {msg}" if where else msg)
        detail = "; ".join(parts) or "invalid request"
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(RequestLimitError)
    async def over_limit(request: Request, exc: RequestLimitError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(AuthError)
    async def unauthorized(request: Request, exc: AuthError) -> JSONResponse:
        return JSONResponse(
            {"detail": "missing or wrong API key (send X-API-Key or Authorization: Bearer)"},
            status_code=401,
        )

    @app.exception_handler(StoreUnavailable)
    async def unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        log.warning("dependency unavailable on %s: %s", request.url.path, exc)
        return JSONResponse(
            {"detail": f"a backing store is unavailable, retry later: {exc}"},
            status_code=503,
            headers={"Retry-After": "1"},
        )
