"""/search and /visit end to end on a real tantivy + DuckDB environment."""

from __future__ import annotations

import re

import httpx
import pytest

from conf import Settings
from env_service.formats import CALL_SEPARATOR, VISIT_NOT_ACCESSIBLE_EVIDENCE
from env_service.schemas import SERVICE_NAME
from env_service.stores.factory import web_identity

from .conftest import app_client

ITEM_RE = re.compile(r"^(\d+)\. \[([^\]]*)\]\((\S+)\)\n(.+)$")


def _items(text: str) -> list[tuple[int, str, str, str]]:
    header, _, body = text.partition("## Web Results\n")
    assert header.startswith("A Google search for '")
    out = []
    for chunk in body.split("\n\n"):
        m = ITEM_RE.match(chunk)
        assert m, f"bad item layout: {chunk!r}"
        out.append((int(m[1]), m[2], m[3], m[4]))
    return out


async def test_search_text_matches_reference_layout(client: httpx.AsyncClient) -> None:
    r = await client.post("/search", json={"query": "danube vienna", "top_k": 3})
    assert r.status_code == 200, r.text
    data = r.json()
    (q,) = data["results"]
    assert data["text"] == q["text"]
    n = len(q["results"])
    assert 1 <= n <= 3
    assert q["text"].startswith(f"A Google search for 'danube vienna' found {n} results:\n\n")
    items = _items(q["text"])
    assert [i for i, *_ in items] == list(range(1, n + 1))
    first = q["results"][0]
    assert first["url"] == "https://example.org/wiki/danube" and first["title"] == "Danube"
    assert items[0][1:] == (first["title"], first["url"], first["snippet"])
    assert "Danube" in first["snippet"] and "Vienna" in first["snippet"]
    assert len(first["snippet"]) <= 120
    scores = [res["score"] for res in q["results"]]
    assert scores == sorted(scores, reverse=True)


async def test_passages_fold_to_one_result_per_page(client: httpx.AsyncClient) -> None:
    # Each topic page holds its fact in two passages: the page must still appear once.
    r = await client.post("/search", json={"query": "nobel prize physics", "top_k": 10})
    urls = [res["url"] for res in r.json()["results"][0]["results"]]
    assert len(urls) == len(set(urls))
    assert {"https://example.org/wiki/curie", "https://example.org/wiki/bohr"} <= set(urls)


async def test_several_queries_dedup_across_the_call(client: httpx.AsyncClient) -> None:
    r = await client.post("/search", json={"query": ["curie", "nobel prize physics"], "top_k": 5})
    data = r.json()
    first, second = data["results"]
    assert data["text"] == first["text"] + CALL_SEPARATOR + second["text"]
    first_urls = {res["url"] for res in first["results"]}
    second_urls = {res["url"] for res in second["results"]}
    assert "https://example.org/wiki/curie" in first_urls
    assert not first_urls & second_urls
    assert "https://example.org/wiki/bohr" in second_urls


async def test_zero_results_query_gets_the_sentence(client: httpx.AsyncClient) -> None:
    r = await client.post("/search", json={"query": ["xylophonezzz", "danube"]})
    first, second = r.json()["results"]
    assert first["results"] == []
    assert first["text"] == "No results found for 'xylophonezzz'. Try with a more general query."
    assert second["results"]
    assert r.json()["text"].startswith(first["text"] + CALL_SEPARATOR + "A Google search")


async def test_search_masks_canonical_urls(client: httpx.AsyncClient) -> None:
    body = {"query": "danube vienna", "top_k": 10}
    assert "https://example.org/wiki/danube" in (await client.post("/search", json=body)).text
    # Another spelling of the same page (http, www, trailing slash, tracking, fragment).
    masked = {**body, "mask_urls": ["http://WWW.example.org/wiki/danube/?utm_source=x#top"]}
    r = await client.post("/search", json=masked)
    assert r.status_code == 200
    assert "example.org/wiki/danube" not in r.text


async def test_visit_returns_reference_layout(client: httpx.AsyncClient) -> None:
    goal = "Which cities does the Danube flow through?"
    r = await client.post("/visit", json={"url": "https://example.org/wiki/danube", "goal": goal})
    assert r.status_code == 200, r.text
    (res,) = r.json()["results"]
    assert res["found"] is True and res["title"] == "Danube"
    assert "Budapest" in res["content"]
    text = res["text"]
    prefix = (
        "The useful information in https://example.org/wiki/danube for user goal "
        f"{goal} as follows: \n\nEvidence in page: \n"
    )
    assert text.startswith(prefix) and text.endswith("\n\n")
    evidence, _, summary = text[len(prefix) :].partition("\n\nSummary: \n")
    assert "Vienna Budapest" in evidence
    assert summary.startswith("Danube: ") and "Danube" in summary
    # deterministic
    again = await client.post(
        "/visit", json={"url": "https://example.org/wiki/danube", "goal": goal}
    )
    assert again.json() == r.json()


async def test_visit_looks_up_by_canonical_url(client: httpx.AsyncClient) -> None:
    spelled = "HTTP://www.Example.org/wiki/k2/?utm_campaign=z#section"
    r = await client.post("/visit", json={"url": [spelled], "goal": "height"})
    (res,) = r.json()["results"]
    assert res["found"] is True
    assert res["url"] == spelled and res["canonical_url"] == "https://example.org/wiki/k2"
    assert res["text"].startswith(f"The useful information in {spelled} for user goal height")


async def test_visit_not_found_masked_and_bad_urls(client: httpx.AsyncClient) -> None:
    urls = [
        "https://example.org/wiki/nile",
        "https://example.org/wiki/atlantis",
        "https://example.org/wiki/rhine",
        "not a url at all",
    ]
    r = await client.post(
        "/visit", json={"url": urls, "goal": "g", "mask_urls": ["example.org/wiki/rhine"]}
    )
    assert r.status_code == 200
    data = r.json()
    assert [res["found"] for res in data["results"]] == [True, False, False, False]
    for res in data["results"][1:]:
        assert VISIT_NOT_ACCESSIBLE_EVIDENCE in res["text"]
        assert res["content"] == "" and res["title"] == ""
    assert data["text"] == CALL_SEPARATOR.join(res["text"] for res in data["results"])


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"query": ""}, 422, "query[0] is empty"),
        ({"query": []}, 422, "at least one query"),
        ({"query": ["a", "  "]}, 422, "query[1] is empty"),
        ({"query": ["a", "b", "c", "d", "e"]}, 422, "too many queries: 5 > max_queries_per_call=4"),
        ({"query": 5}, 422, "query"),
        ({"query": "a", "top_k": "ten"}, 422, "top_k"),
        ({"query": "a", "top_k": 0}, 422, "top_k"),
        ({"query": "a", "mode": "magic"}, 422, "mode"),
        ({"query": "a", "mode": "dense"}, 422, "not available"),
        ({"query": "a", "unexpected": 1}, 422, "unexpected"),
        (
            {"query": "a", "mask_urls": ["https://x.org/" + "a" * 300]},
            422,
            "mask_urls[0] is too long",
        ),
        ({"query": "x" * 2000}, 422, "query[0] is too long"),
    ],
)
async def test_search_rejects_bad_requests(
    client: httpx.AsyncClient, body: dict[str, object], status: int, message: str
) -> None:
    r = await client.post("/search", json=body)
    assert r.status_code == status
    assert message in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"url": [], "goal": "g"}, "at least one URL"),
        ({"url": "https://a.org/x"}, "goal"),
        ({"url": "https://a.org/" + "x" * 300, "goal": "g"}, "url[0] is too long"),
        ({"url": ["https://a.org/x"] * 11, "goal": "g"}, "too many URLs"),
        ({"url": [1], "goal": "g"}, "url"),
    ],
)
async def test_visit_rejects_bad_requests(
    client: httpx.AsyncClient, body: dict[str, object], message: str
) -> None:
    r = await client.post("/visit", json=body)
    assert r.status_code == 422
    assert message in r.json()["detail"]


async def test_invalid_json_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/search", content=b'{"query": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["detail"]


async def test_response_cache_serves_identical_bytes(settings: Settings) -> None:
    cached = settings.model_copy(deep=True)
    cached.cache.enabled = True
    async with app_client(cached) as c:
        body = {"query": ["everest height"], "mask_urls": ["https://example.org/wiki/everest"]}
        first = await c.post("/search", json=body)
        second = await c.post("/search", json=body)
        assert first.content == second.content
        # the mask is part of the key: a different mask is a different answer
        other = await c.post("/search", json={"query": ["everest height"]})
        assert other.content != first.content
        visit = {"url": "https://example.org/wiki/nile", "goal": "length"}
        assert (await c.post("/visit", json=visit)).content == (
            await c.post("/visit", json=visit)
        ).content
        metrics = (await c.get("/metrics")).text
    assert 'env_cache_lookups_total{result="hit",route="search"} 1.0' in metrics
    assert 'env_cache_lookups_total{result="miss",route="search"} 2.0' in metrics
    assert 'env_cache_lookups_total{result="hit",route="visit"} 1.0' in metrics
    assert "env_cache_hit_ratio 0.4" in metrics


async def test_health_ready_and_metrics(client: httpx.AsyncClient, settings: Settings) -> None:
    health = (await client.get("/health")).json()
    assert health == {"status": "ok", "service": SERVICE_NAME, "web": web_identity(settings)}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert ready.json()["checks"] == {"lexical_index": "ok", "page_store": "ok"}
    assert ready.json()["counts"]["lexical_index"] > 32  # passages of the 32 pages
    await client.post("/search", json={"query": ""})
    metrics = (await client.get("/metrics")).text
    assert 'env_requests_total{route="/search",status="422"} 1.0' in metrics
    assert 'env_request_seconds_count{route="/ready"} 1.0' in metrics


async def test_api_key_is_enforced_when_set(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITERESEARCHER_TEST_ENV_KEY_UNSET", "s3cret")
    async with app_client(settings) as c:
        assert (await c.get("/health")).status_code == 200
        denied = await c.post("/search", json={"query": "danube"})
        assert denied.status_code == 401
        ok = await c.post("/search", json={"query": "danube"}, headers={"X-API-Key": "s3cret"})
        assert ok.status_code == 200
        bearer = await c.get("/ready", headers={"Authorization": "Bearer s3cret"})
        assert bearer.status_code == 200
