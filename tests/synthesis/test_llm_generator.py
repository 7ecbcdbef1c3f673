"""Generator (a) and the rubric judge against a real local HTTP server speaking the OpenAI
chat-completions API with canned replies: this exercises our request building, the `openai`
client and our parsing for real; no real LLM is involved.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI, Request

from conf import load_settings
from conf.settings import LLMEndpoint
from env_service.stores.base import Page
from env_service.stores.duckdb_pages import DuckDBPageStore
from literesearcher.testing import serve_app
from tasks.synthesis.base import Generator
from tasks.synthesis.judge import RubricJudgeFilter
from tasks.synthesis.llm_client import StructuredLLM
from tasks.synthesis.llm_generator import LLMGenerator, linked_urls
from tasks.synthesis.schema import TaskRecord, task_id

SEED = Page(
    "https://wiki.example.org/Gebesoburg",
    "Gebesoburg",
    "Gebesoburg is a city in Zembria with an elevation of 1,928 m. It is twinned with "
    "[Foravuford](https://knowpedia.net/entry/foravuford) and appears in "
    "[a table](https://tables.example.com/cities#top) and [a dead link](https://nowhere.org/x).",
)
NEIGHBOURS = [
    Page("https://knowpedia.net/entry/foravuford", "Foravuford", "Foravuford lies in Zembria."),
    Page("https://tables.example.com/cities", "Cities", "Gebesoburg | 1,928 m\nForavuford | 44 m"),
]


class CannedLLM:
    """Records every request; `reply(prompt) -> str` decides each answer's content."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.reply: Callable[[str], str] = lambda prompt: "{}"
        self.app = FastAPI()

        @self.app.post("/v1/chat/completions")
        async def complete(request: Request) -> dict:
            body = await request.json()
            self.requests.append(body)
            content = self.reply(body["messages"][-1]["content"])
            return {
                "id": "cmpl-1",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }


@pytest.fixture(scope="module")
def canned() -> Iterator[tuple[CannedLLM, str]]:
    llm = CannedLLM()
    with serve_app(llm.app) as base:
        yield llm, f"{base}/v1"


@pytest.fixture
def client(canned) -> tuple[CannedLLM, StructuredLLM]:
    llm, url = canned
    llm.requests.clear()
    return llm, StructuredLLM(LLMEndpoint(base_urls=[url], model="synth-model", retries=0))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBPageStore]:
    s = DuckDBPageStore(tmp_path / "pages.duckdb", writable=True)
    s.upsert([SEED, *NEIGHBOURS])
    yield s
    s.close()


def test_links_are_canonical_and_deduplicated() -> None:
    assert linked_urls(SEED.text) == [
        "https://knowpedia.net/entry/foravuford",
        "https://tables.example.com/cities",
        "https://nowhere.org/x",
    ]


def test_direct_retrieval_builds_one_page_prompt_and_parses_json(client, store) -> None:
    llm, structured = client
    llm.reply = lambda prompt: (
        "<think>scan the page</think>```json\n"
        + json.dumps(
            {
                "tasks": [
                    {
                        "question": "What is the elevation of Gebesoburg?",
                        "answer": "1,928 m",
                        "time_anchor": "2025-01-01",
                    }
                ]
            }
        )
        + "\n```"
    )
    gen = LLMGenerator(structured, [SEED], store, published={SEED.url: "2025-01-01"},
                       created="2026-01-01T00:00:00+00:00")  # fmt: skip
    assert isinstance(gen, Generator)
    tasks = list(gen.generate(["direct_retrieval"], 5))
    assert tasks == [
        TaskRecord(
            id=task_id("direct_retrieval", "What is the elevation of Gebesoburg?", "1,928 m"),
            question="What is the elevation of Gebesoburg?",
            answers=["1,928 m"],
            capability="direct_retrieval",
            evidence_urls=[SEED.url],
            mask_urls=[SEED.url],
            language="en",
            time_anchor="2025-01-01",
            source="corpus",
            generator="llm:synth-model",
            created="2026-01-01T00:00:00+00:00",
        )
    ]
    (request,) = llm.requests
    assert request["model"] == "synth-model" and request["temperature"] == 0.0
    assert request["response_format"] == {"type": "json_object"}
    prompt = request["messages"][0]["content"]
    assert SEED.text in prompt and SEED.url in prompt and "2025-01-01" in prompt
    assert "$" not in prompt.replace("$n", "")  # every template field was filled


def test_multi_page_uses_linked_neighbourhood_and_model_giveaways(client, store) -> None:
    llm, structured = client
    reply = {"tasks": [{
        "question": "Which city twinned with Foravuford lies 1,928 m high?",
        "answer": "Gebesoburg",
        "evidence_urls": ["https://knowpedia.net/entry/foravuford",
                          "https://tables.example.com/cities", "https://invented.org/page"],
        "giveaway_urls": ["https://tables.example.com/cities#row"],
    }]}  # fmt: skip
    llm.reply = lambda prompt: json.dumps(reply)
    gen = LLMGenerator(structured, [SEED], store)
    (task,) = gen.generate(["aggregation"], 3)
    prompt = llm.requests[0]["messages"][0]["content"]
    for page in (SEED, *NEIGHBOURS):
        assert page.url in prompt and page.title in prompt
    assert "https://nowhere.org/x\nTitle" not in prompt  # a dead link is not a neighbour
    assert "Aggregation:" in prompt
    assert task.evidence_urls == sorted(reply["tasks"][0]["evidence_urls"][:2])
    assert task.mask_urls == ["https://tables.example.com/cities"]


def test_bad_replies_are_counted_and_skipped(client, store) -> None:
    llm, structured = client
    llm.reply = lambda prompt: "I cannot help with that."
    gen = LLMGenerator(structured, [SEED, SEED], store)
    assert list(gen.generate(["direct_retrieval"], 2)) == []
    assert gen.errors["bad_reply"] == 2
    lonely = LLMGenerator(structured, [NEIGHBOURS[0]], store)
    assert list(lonely.generate(["statistics"], 1)) == []
    assert lonely.errors["no_neighbours"] == 1


def make(question: str) -> TaskRecord:
    return TaskRecord(id=task_id("direct_retrieval", question, "x"), question=question,
                      answers=["x"], capability="direct_retrieval", source="t", generator="t",
                      created="2026-01-01")  # fmt: skip


def test_rubric_judge_drops_by_failed_criterion(client) -> None:
    llm, structured = client
    ok = dict.fromkeys(("independent", "specific", "unambiguous", "answerable",
                        "not_open_ended", "time_specific"), True)  # fmt: skip

    def verdict(prompt: str) -> str:
        prompt = prompt.split("Question: ", 1)[1].split("\n", 1)[0]  # the rubric's own text aside
        if "open question" in prompt:
            return json.dumps({**ok, "not_open_ended": False})
        if "this page" in prompt:
            return json.dumps({**ok, "independent": False})
        if "garbled" in prompt:
            return "no json here"
        return json.dumps(ok)

    llm.reply = verdict
    judge = RubricJudgeFilter(structured)
    tasks = [make("Good question?"), make("Why is the open question?"),
             make("What does this page say?"), make("garbled?")]  # fmt: skip
    kept = list(judge(tasks))
    assert [t.question for t in kept] == ["Good question?", "garbled?"]
    assert dict(judge.stats.dropped) == {"open_ended": 1, "not_independent": 1}
    assert judge.judge_errors == 1
    assert "Good question?" in llm.requests[0]["messages"][0]["content"]


def test_rubric_judge_skips_with_reason_without_endpoint(tmp_path) -> None:
    settings = load_settings("local", [f"data_root={tmp_path}"])
    judge = RubricJudgeFilter(StructuredLLM.from_settings(settings, "judge"))
    tasks = [make("A?"), make("B?")]
    assert list(judge(tasks)) == tasks
    assert judge.stats.as_dict()["skipped"] == "no judge endpoint configured"
