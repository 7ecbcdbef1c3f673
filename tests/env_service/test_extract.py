"""Visit extraction: the deterministic extractive fallback and the LLM path through a real
OpenAI-compatible HTTP server (a small rule-based responder stands in for the model)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from conf import Settings
from conf.settings import LLMEndpoint
from env_service.extract import ExtractiveExtractor, LLMExtractor, parse_extraction
from env_service.stores.base import Page
from env_service.tokens import RegexTokens
from literesearcher.testing import free_port

from .conftest import BackgroundServer, app_client

LONG_PAGE = Page(
    "https://example.org/wiki/danube",
    "Danube",
    " ".join(
        [
            "The Danube is a river in Europe.",
            *[f"Sentence number {i} is about nothing in particular at all." for i in range(60)],
            "The Danube flows through Vienna, Budapest and Belgrade.",
            *[f"More filler text number {i} that does not matter." for i in range(60)],
        ]
    ),
)


def test_regex_tokens_count_and_truncate() -> None:
    tokens = RegexTokens()
    assert tokens.count("Hello, world! It's 2024.") == 9
    assert tokens.truncate("one two, three four", 3) == "one two,"
    assert tokens.truncate("short", 10) == "short"


def test_extractive_evidence_ranks_passages_for_the_goal_within_budget() -> None:
    ex = ExtractiveExtractor(RegexTokens(), token_budget=200)
    out = ex.extract(LONG_PAGE, "Which cities does the Danube flow through?")
    assert "Vienna, Budapest and Belgrade" not in out.content  # beyond the 200-token budget
    wide = ExtractiveExtractor(RegexTokens(), token_budget=5000)
    out = wide.extract(LONG_PAGE, "Which cities does the Danube flow through?")
    assert "Vienna, Budapest and Belgrade" in out.evidence
    assert "Sentence number 30" not in out.evidence  # unrelated groups are left out
    assert RegexTokens().count(out.evidence) <= 5000
    assert out.summary == "Danube: The Danube flows through Vienna, Budapest and Belgrade."
    assert wide.extract(LONG_PAGE, "Which cities does the Danube flow through?") == out


def test_extractive_without_matching_terms_gives_the_opening() -> None:
    ex = ExtractiveExtractor(RegexTokens(), token_budget=30)
    out = ex.extract(LONG_PAGE, "zebra")
    assert out.evidence.startswith("The Danube is a river in Europe.")
    assert RegexTokens().count(out.evidence) <= 30


def test_parse_extraction_accepts_json_and_rejects_junk() -> None:
    reply = '<think>hmm {"no": 1}</think>Here: {"evidence": ["a", "b"], "summary": "s"}'
    assert parse_extraction(reply) == ("a\nb", "s")
    for bad in ("no json", '{"evidence": "x"}', "{not json}"):
        with pytest.raises(ValueError):
            parse_extraction(bad)


def fake_llm_app(received: list[str]) -> FastAPI:
    """OpenAI-compatible chat endpoint: quotes the page lines that mention the goal's last word."""
    app = FastAPI()

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"data": [{"id": "extractor"}]}

    @app.post("/v1/chat/completions")
    def chat(body: dict[str, Any]) -> dict[str, Any]:
        prompt = body["messages"][0]["content"]
        received.append(prompt)
        if "BROKEN" in prompt:
            content = "I cannot produce JSON today."
        else:
            page = prompt.split("## Page\n", 1)[1].split("\n\n## User goal", 1)[0]
            goal = prompt.split("## User goal\n", 1)[1].split("\n", 1)[0]
            word = re.findall(r"\w+", goal)[-1].lower()
            hits = [s for s in re.split(r"(?<=\.)\s+", page) if word in s.lower()]
            content = json.dumps({"evidence": hits, "summary": f"LLM found {len(hits)} lines."})
        return {"choices": [{"message": {"role": "assistant", "content": content}}]}

    return app


@pytest.fixture
def llm_server() -> Iterator[tuple[BackgroundServer, list[str]]]:
    received: list[str] = []
    server = BackgroundServer(fake_llm_app(received), free_port())
    server.start()
    yield server, received
    server.stop()


async def test_llm_extractor_uses_endpoint_and_falls_back(
    llm_server: tuple[BackgroundServer, list[str]],
) -> None:
    server, received = llm_server
    endpoint = LLMEndpoint(base_urls=[f"{server.url}/v1"], model="extractor", retries=0)
    llm = LLMExtractor(endpoint, ExtractiveExtractor(RegexTokens(), token_budget=5000))
    try:
        await llm.ping()
        out = await llm.extract(LONG_PAGE, "Which cities does it flow through")
        assert out.source == "llm" and out.summary == "LLM found 1 lines."
        assert out.evidence == "The Danube flows through Vienna, Budapest and Belgrade."
        assert "## User goal\nWhich cities does it flow through" in received[-1]
        broken = Page(LONG_PAGE.url, "Danube", "BROKEN " + LONG_PAGE.text)
        out = await llm.extract(broken, "Danube cities")
        assert out.source == "extractive" and llm.failures == 1
    finally:
        await llm.aclose()


async def test_visit_with_llm_configured_in_the_service(
    settings: Settings, llm_server: tuple[BackgroundServer, list[str]]
) -> None:
    server, received = llm_server
    cfg = settings.model_copy(deep=True)
    cfg.llm.endpoints = {
        "extractor": LLMEndpoint(base_urls=[f"{server.url}/v1"], model="m", retries=0)
    }
    cfg.env_service.extractor = "extractor"
    cfg.env_service.visit_token_budget = 64
    async with app_client(cfg) as c:
        assert (await c.get("/ready")).json()["checks"]["llm"] == "ok"
        goal = "how tall is the mountain"
        r = await c.post("/visit", json={"url": "example.org/wiki/everest", "goal": goal})
        (res,) = r.json()["results"]
        assert res["found"] and "Summary: \nLLM found" in res["text"]
        assert "highest mountain" in res["text"]
        # the page reached the LLM truncated to the token budget
        page = received[-1].split("## Page\n", 1)[1].split("\n\n## User goal", 1)[0]
        assert RegexTokens().count(page) == 64


async def test_service_reports_unreachable_llm_and_still_answers(settings: Settings) -> None:
    cfg = settings.model_copy(deep=True)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    cfg.llm.endpoints = {"extractor": LLMEndpoint(base_urls=[dead], model="m", retries=0)}
    cfg.env_service.extractor = "extractor"
    async with app_client(cfg) as c:
        ready = await c.get("/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["llm"].startswith("unavailable")
        r = await c.post("/visit", json={"url": "example.org/wiki/everest", "goal": "height"})
        assert r.status_code == 200 and "8849" in r.json()["text"]
        assert "env_extractor_fallbacks_total 1.0" in (await c.get("/metrics")).text
