"""Test helpers for tests/rl: a scripted policy (tests only) and an in-test ToolEnvironment in
the reference text formats (serving an app on a local port: literesearcher.testing)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from env_service.formats import SearchItem, join_calls, search_text, visit_text
from rl.backends.base import BackendError, Generation, SamplingParams
from rl.protocol import Message, render_assistant_turn, render_raw

if TYPE_CHECKING:
    from rl.rollout import RolloutResult


def search_call(*queries: str) -> dict[str, object]:
    return {"name": "search", "arguments": {"query": list(queries)}}


def visit_call(url: str, goal: str) -> dict[str, object]:
    return {"name": "visit", "arguments": {"url": [url], "goal": goal}}


# A script gets the conversation so far as raw text and the assistant turn index.
Script = Callable[[str, int], str | BaseException]


class ScriptedPolicy:
    """An LLMBackend that replays turns: a list of texts (the last one repeats) or a function
    of (raw conversation, turn index). An exception in the script is raised by the call."""

    def __init__(
        self,
        turns: Sequence[str | BaseException] | Script,
        *,
        delay_s: float = 0.0,
        name: str = "scripted",
    ) -> None:
        self.name = name
        self.turns = turns
        self.delay_s = delay_s
        self.prompts: list[str] = []
        self.chats: list[list[Message]] = []
        self.params: list[SamplingParams] = []

    def _next(self, context: str) -> Generation:
        turn = context.count("<|im_start|>assistant\n") - 1
        if callable(self.turns):
            out = self.turns(context, turn)
        else:
            out = self.turns[min(turn, len(self.turns) - 1)]
        if isinstance(out, BaseException):
            raise out
        return Generation(text=out, finish_reason="stop", completion_tokens=None)

    async def chat(self, messages: list[Message], params: SamplingParams) -> Generation:
        self.chats.append([dict(m) for m in messages])
        self.params.append(params)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self._next(render_raw(messages))

    async def complete(self, prompt: str, params: SamplingParams) -> Generation:
        self.prompts.append(prompt)
        self.params.append(params)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self._next(prompt)

    async def aclose(self) -> None:
        return None


@dataclass
class ToolText:
    text: str


@dataclass
class FakeWeb:
    """A ToolEnvironment over a few pages, answering in the reference text layouts."""

    pages: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {
            "https://example.org/eiffel": ("Eiffel Tower", "The Eiffel Tower is 330 metres tall."),
            "https://example.org/paris": ("Paris", "Paris is the capital of France."),
            "https://example.cn/beijing": ("北京", "北京是中华人民共和国的首都。"),
        }
    )
    delay_s: float = 0.0
    fail_with: BaseException | None = None
    searches: list[tuple[list[str], tuple[str, ...]]] = field(default_factory=list)
    visits: list[tuple[list[str], str, tuple[str, ...]]] = field(default_factory=list)

    async def search(
        self, queries: list[str], *, top_k: int | None = None, mask_urls: Sequence[str] = ()
    ) -> ToolText:
        self.searches.append((list(queries), tuple(mask_urls)))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_with is not None:
            raise self.fail_with
        texts = []
        for q in queries:
            words = set(q.lower().split())
            items = [
                SearchItem(url, title, body)
                for url, (title, body) in self.pages.items()
                if url not in mask_urls and (words & set(body.lower().split()) or q in body)
            ][: top_k or 10]
            texts.append(search_text(q, items))
        return ToolText(join_calls(texts))

    async def visit(self, urls: list[str], goal: str, *, mask_urls: Sequence[str] = ()) -> ToolText:
        self.visits.append((list(urls), goal, tuple(mask_urls)))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        texts = []
        for url in urls:
            _, body = self.pages.get(url, ("", "(no such page)"))
            if url in mask_urls:
                body = "(masked)"
            texts.append(visit_text(url, goal, body, body))
        return ToolText(join_calls(texts))


def answer_turn(answer: str, think: str = "I know it now.") -> str:
    return render_assistant_turn(think, answer=answer)


def calls_turn(*calls: dict[str, object], think: str = "Let me look.") -> str:
    return render_assistant_turn(think, list(calls))


def backend_error(message: str = "server down") -> BackendError:
    return BackendError(message)


# ---- rollouts: one definition shared by the test and the worker process it kills ----------

ROLLOUT_TASKS = [
    {"id": "easy", "question": "Capital of France?", "answers": ["Paris"], "family": "x"},
    {"id": "mixed", "question": "Height of the Eiffel Tower?", "answers": ["330 m"]},
    {"id": "hard", "question": "Who knows?", "answers": ["nobody"]},
    {
        "id": "zh",
        "question": "中国的首都?",
        "answers": ["北京"],
        "mask_urls": ["https://example.cn/beijing"],
    },
]
ROLLOUT_K = 3


def rollout_policy(delay_s: float = 0.0) -> ScriptedPolicy:
    """Searches once, then answers: right for 'easy' and 'zh', right on 1 sample of 3 for
    'mixed' (decided by the seed-dependent prompt count), never for 'hard'."""
    state = {"mixed": 0}

    def script(prompt: str, turn: int) -> str:
        if turn == 0:
            return render_assistant_turn("search", [search_call("Paris")])
        if "Capital of France?" in prompt:
            return render_assistant_turn("ok", answer="Paris")
        if "中国的首都?" in prompt:
            return render_assistant_turn("好", answer="北京")
        if "Eiffel" in prompt:
            state["mixed"] += 1
            return render_assistant_turn(
                "hm", answer="330 m" if state["mixed"] % 3 == 1 else "300 m"
            )
        return render_assistant_turn("no idea", answer="somebody")

    return ScriptedPolicy(script, delay_s=delay_s)


async def rollout_fixture_run(
    catalog_root: Path, *, delay_s: float = 0.0, part_size: int = 1
) -> RolloutResult:
    from data_catalog import Catalog
    from rl.episode import AgentTask, EpisodeConfig
    from rl.judge import Judge
    from rl.rollout import rollout_async
    from rl.tokens import approx_token_count

    tasks = [AgentTask.model_validate(t) for t in ROLLOUT_TASKS]
    return await rollout_async(
        tasks, rollout_policy(delay_s), FakeWeb(), ROLLOUT_K,
        catalog=Catalog(catalog_root), config=EpisodeConfig(max_turns=4, date="2026-05-01"),
        count_tokens=approx_token_count, judge=Judge("exact_match"), policy_id="scripted",
        concurrency=2, part_size=part_size, progress=False,
    )  # fmt: skip
