"""Helpers for the curriculum tests: tasks with known success rates, a policy that solves each
exactly m of k times (in process and as an OpenAI-compatible server), and a real local web
(tantivy + DuckDB) holding the pages the tasks are about."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from rl_testkit import ScriptedPolicy, search_call

from conf import Settings
from env_service.stores.base import Page
from literesearcher.testing import write_local_web
from rl.protocol import render_assistant_turn
from tasks.synthesis.schema import TaskRecord, task_id

K = 4


@dataclass(frozen=True)
class Spec:
    capability: str
    subject: str
    answer: str
    solved: int  # correct answers out of K


# Each subject has a page; the policy searches it, then answers right `solved` times of K.
SPECS = [
    Spec("direct_retrieval", "Nuvola Tower", "212 m", 0),
    Spec("direct_retrieval", "Brisa Bridge", "1,204 m", 1),
    Spec("direct_retrieval", "Corvi Dam", "88 m", 3),
    Spec("aggregation", "Delta Mill", "Ana Rossi", 2),
    Spec("aggregation", "Echo Hall", "Bo Chen", 4),
    Spec("enumeration", "Fjord Labs", "7", 1),
    Spec("enumeration", "Gala Works", "12", 2),
    Spec("statistics", "Hera Port", "3.5", 3),
    Spec("statistics", "Iris Yard", "40", 0),
    Spec("cross_verification", "Juno Farm", "1931", 2),
    Spec("cross_verification", "Kilo Mine", "1902", 1),
    Spec("cross_verification", "Lumo Pier", "1977", 4),
]


def question(spec: Spec) -> str:
    return f"What is the recorded figure for {spec.subject}?"


def url(spec: Spec) -> str:
    return f"https://example.org/wiki/{spec.subject.replace(' ', '_')}"


def records() -> list[TaskRecord]:
    return [
        TaskRecord(
            id=task_id(s.capability, question(s), s.answer),
            question=question(s),
            answers=[s.answer],
            capability=s.capability,  # type: ignore[arg-type]
            evidence_urls=[url(s)],
            mask_urls=[url(s)],
            source="test",
            generator="test",
            created="2026-05-01T00:00:00Z",
        )
        for s in SPECS
    ]


def expected_pass_rates() -> dict[str, float]:
    by_q = {question(s): s for s in SPECS}
    return {r.id: by_q[r.question].solved / K for r in records()}


class KnownRates:
    """(raw conversation, assistant turn) -> turn: search first, then the answer, right on
    exactly `solved` of the K answer turns of each question (a counter per question)."""

    def __init__(self) -> None:
        self.answered: Counter[str] = Counter()

    def __call__(self, prompt: str, turn: int) -> str:
        spec = next(s for s in SPECS if question(s) in prompt)
        if turn == 0:
            return render_assistant_turn("search first", [search_call(spec.subject)])
        n = self.answered[spec.subject]
        self.answered[spec.subject] += 1
        right = n % K < spec.solved
        return render_assistant_turn("done", answer=spec.answer if right else "unknown")


def known_rates_policy() -> ScriptedPolicy:
    return ScriptedPolicy(KnownRates())


def build_local_web(settings: Settings) -> None:
    """The tasks' pages (plus one unrelated page) in the configured lexical index and store."""
    pages = [Page(url(s), s.subject, f"{s.subject} is a site. Its figure is {s.answer}.")
             for s in SPECS] + [Page("https://example.org/wiki/Other", "Other", "Nothing here.")]  # fmt: skip
    write_local_web(settings, pages, words=32, overlap=4)


def openai_app(script: KnownRates) -> Any:
    """An OpenAI-compatible `/v1/completions` server replaying `script` (the policy endpoint)."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/v1/completions")
    async def completions(body: dict[str, Any]) -> dict[str, Any]:
        prompt = body["prompt"]
        text = script(prompt, prompt.count("<|im_start|>assistant\n") - 1)
        return {"choices": [{"text": text, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5}}  # fmt: skip

    return app
