"""Dense, sparse and hybrid search on a real Milvus Lite collection, and query micro-batching.

The encoder is a small deterministic hashing encoder (bag of words into 64 dims plus hashed
sparse weights) used for both passages and queries: the routes, the fusion and the batching
are what is under test, not BGE-M3.
"""

from __future__ import annotations

import asyncio
import math
import re
import zlib
from pathlib import Path

import pytest

from conf import Settings
from env_service.embedder import QueryEmbedder, QueryEmbedding
from env_service.stores.base import EmbeddedPassage
from env_service.stores.factory import open_vector_index
from literesearcher.testing import write_local_web
from tasks.corpus.passages import split_passages

from .conftest import app_client, demo_pages, make_settings

DIM = 64
STOP = {"the", "and", "in", "of", "is", "to", "a", "at", "on"}


def hash_encode(texts: list[str]) -> list[QueryEmbedding]:
    out = []
    for text in texts:
        words = [w for w in re.findall(r"\w+", text.lower()) if w not in STOP]
        sparse: dict[int, float] = {}
        for w in words:
            tid = 1 + zlib.crc32(w.encode()) % 50_000
            sparse[tid] = sparse.get(tid, 0.0) + 1.0
        dense = [0.0] * DIM
        for tid, weight in sparse.items():
            dense[tid % DIM] += weight
        norm = math.sqrt(sum(x * x for x in dense)) or 1.0
        out.append(QueryEmbedding([x / norm for x in dense], sparse))
    return out


@pytest.fixture(scope="module")
def vector_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root: Path = tmp_path_factory.mktemp("vec")
    settings = make_settings(
        root,
        "index.retrieval_mode=hybrid",
        f"index.dense_dim={DIM}",
        "env_service.embed_max_wait_ms=20",
    )
    pages = demo_pages()
    write_local_web(settings, pages)
    vectors = open_vector_index(settings, writable=True)
    assert vectors is not None
    rows = []
    for page in pages:
        for p in split_passages(page.url, page.title, page.text, 24, 4):
            (emb,) = hash_encode([p.text])
            rows.append(EmbeddedPassage(p.passage_id, p.url, p.title, emb.dense, emb.sparse))
    vectors.upsert(rows)
    vectors.close()
    return settings


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid", "bm25"])
async def test_every_route_finds_the_page_with_a_snippet(
    vector_settings: Settings, mode: str
) -> None:
    async with app_client(vector_settings, encoder=hash_encode) as c:
        r = await c.post("/search", json={"query": "danube vienna budapest", "mode": mode})
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["mode"] == mode
        results = data["results"][0]["results"]
        assert results[0]["url"] == "https://example.org/wiki/danube"
        assert "Vienna" in results[0]["snippet"]  # vector hits take snippets from the page
        urls = [x["url"] for x in results]
        assert len(urls) == len(set(urls))


@pytest.mark.parametrize("method", ["rrf", "weighted"])
async def test_hybrid_fusion_method_comes_from_config(
    vector_settings: Settings, method: str
) -> None:
    cfg = vector_settings.model_copy(deep=True)
    cfg.index.fusion.method = method  # type: ignore[assignment]
    async with app_client(cfg, encoder=hash_encode) as c:
        r = await c.post(
            "/search",
            json={
                "query": "nobel prize physics",
                "top_k": 3,
                "mask_urls": ["example.org/wiki/bohr"],
            },
        )
        results = r.json()["results"][0]["results"]
    assert results[0]["url"] == "https://example.org/wiki/curie"
    assert all("bohr" not in x["url"] for x in results)
    if method == "rrf":
        assert results[0]["score"] < 3 / 60  # a sum of reciprocal ranks
    else:
        assert results[0]["score"] > 1.0  # normalized route scores, weighted and summed


async def test_concurrent_queries_are_embedded_in_batches(vector_settings: Settings) -> None:
    service = app_client(vector_settings, encoder=hash_encode)
    async with service as c:
        embedder: QueryEmbedder = service.app.state.runtime.embedder
        replies = await asyncio.gather(
            *(
                c.post("/search", json={"query": [f"danube {i}", "everest"], "mode": "dense"})
                for i in range(12)
            )
        )
    assert all(r.status_code == 200 for r in replies)
    assert embedder.embedded == 24
    assert embedder.batches < 12  # 24 queries from 12 requests, fewer encode calls than requests


async def test_embedder_errors_reach_the_waiting_requests() -> None:
    calls = 0

    def flaky(texts: list[str]) -> list[QueryEmbedding]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("encoder exploded")
        return hash_encode(texts)

    embedder = QueryEmbedder(flaky, max_batch=8, max_wait_ms=1)
    try:
        with pytest.raises(RuntimeError, match="exploded"):
            await embedder.embed_many(["a", "b"])
        (one,) = await embedder.embed_many(["danube"])  # the worker survived
        assert len(one.dense) == DIM
    finally:
        await embedder.aclose()
