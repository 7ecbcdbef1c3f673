"""The async episode runner: drives one task through `rl.protocol` with any `LLMBackend` and
any `ToolEnvironment` (the env_service client in production), and returns a `Trajectory`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from env_service.client import EnvUnreachableError
from rl.backends.base import BackendError, Generation, LLMBackend, SamplingParams
from rl.judge import Judge
from rl.protocol import (
    FORCED_ANSWER_NOTE,
    GENERATION_PROMPT,
    NO_ACTION_ERROR,
    Message,
    Termination,
    ToolCall,
    ToolCallError,
    initial_messages,
    parse_assistant_turn,
    render_message_raw,
    render_raw,
    render_tool_turn,
    with_forced_answer_note,
)
from rl.tokens import TokenCounter
from rl.trajectory import ToolCallRecord, Trajectory, TurnRecord

TRUNCATION_MARK = "\n[... cut to fit the context ...]"


class ToolResult(Protocol):
    @property
    def text(self) -> str: ...


@runtime_checkable
class ToolEnvironment(Protocol):
    """What the runner needs from the local web (`env_service.client.EnvClient` fits)."""

    async def search(
        self, queries: list[str], *, top_k: int | None = None, mask_urls: Sequence[str] = ()
    ) -> ToolResult: ...

    async def visit(
        self, urls: list[str], goal: str, *, mask_urls: Sequence[str] = ()
    ) -> ToolResult: ...


class AgentTask(BaseModel):
    """A task record as the runner consumes it; provenance fields are allowed and ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answers: list[str] = Field(min_length=1)
    mask_urls: list[str] = Field(default_factory=list)

    @field_validator("answers", "mask_urls", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


@dataclass(frozen=True)
class EpisodeConfig:
    max_turns: int = 40
    max_tokens_per_turn: int = 2048
    max_context_tokens: int = 32_768
    timeout_s: float = 1800.0
    max_malformed_turns: int = 3
    temperature: float = 0.7
    top_p: float = 1.0
    stop: tuple[str, ...] = ("<tool_response>",)
    prompt_mode: Literal["completion", "chat"] = "completion"
    date: str | None = None
    top_k: int | None = None
    logprobs: bool = False
    # The forced final-answer turn gets at least this many tokens (the last tool result is cut
    # from its end to make room); it gets up to max_tokens_per_turn when they fit.
    min_forced_tokens: int = 256
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> EpisodeConfig:
        r = settings.rl
        values: dict[str, Any] = {
            "max_turns": r.max_turns,
            "max_tokens_per_turn": r.max_tokens_per_turn,
            "max_context_tokens": r.max_context_tokens,
            "timeout_s": r.timeout_s,
            "max_malformed_turns": r.max_malformed_turns,
            "temperature": r.temperature,
            "top_p": r.top_p,
            "stop": tuple(r.stop),
            "prompt_mode": r.prompt_mode,
            "date": r.date,
            "top_k": settings.env_service.top_k,
        }
        return cls(**(values | overrides))

    def today(self) -> str:
        return self.date or dt.date.today().isoformat()


async def run_episode(
    task: AgentTask,
    policy: LLMBackend,
    env: ToolEnvironment,
    config: EpisodeConfig,
    count_tokens: TokenCounter,
    *,
    judge: Judge | None = None,
    sample_idx: int = 0,
    seed: int | None = None,
) -> Trajectory:
    """Run one episode to a `Termination`; score it with `judge` when given."""
    episode = _Episode(task, policy, env, config, count_tokens, sample_idx, seed)
    t0 = time.perf_counter()
    try:
        async with asyncio.timeout(config.timeout_s):
            termination = await episode.run()
    except TimeoutError:
        termination = Termination.TIMEOUT
    traj = episode.traj
    traj.termination = termination.value
    traj.messages = episode.messages
    traj.raw_text = render_raw(episode.messages, add_generation_prompt=False)
    traj.context_tokens = episode.context_tokens
    if judge is not None:
        verdict = await judge.score(task.question, traj.answer, task.answers)
        traj.reward, traj.correct = verdict.score, verdict.correct
        traj.judge_method, traj.judge_error = verdict.method.value, verdict.error
    traj.wall_s = time.perf_counter() - t0
    return traj


class _Episode:
    def __init__(
        self,
        task: AgentTask,
        policy: LLMBackend,
        env: ToolEnvironment,
        config: EpisodeConfig,
        count_tokens: TokenCounter,
        sample_idx: int,
        seed: int | None,
    ) -> None:
        self.task, self.policy, self.env, self.config = task, policy, env, config
        self.count = count_tokens
        self.seed = seed
        date = config.today()
        self.messages: list[Message] = initial_messages(task.question, date)
        # Chat-template segments are separated by special tokens, so counts add up exactly.
        self.context_tokens = sum(self.count(render_message_raw(m)) for m in self.messages)
        self.gen_prompt_tokens = self.count(GENERATION_PROMPT)
        self.traj = Trajectory(
            task_id=task.id,
            sample_idx=sample_idx,
            question=task.question,
            gold_answers=list(task.answers),
            policy=policy.name,
            date=date,
            started_at=time.time(),
        )

    def _append(self, message: Message) -> None:
        self.messages.append(message)
        self.context_tokens += self.count(render_message_raw(message))

    async def run(self) -> Termination:
        cfg = self.config
        malformed = 0
        for turn in range(cfg.max_turns):
            room = cfg.max_context_tokens - self.context_tokens - self.gen_prompt_tokens
            if room < cfg.max_tokens_per_turn:
                return await self._forced_final(turn)
            try:
                gen = await self._generate(self.messages, cfg.max_tokens_per_turn, turn)
            except BackendError as exc:
                self.traj.error = str(exc)
                return Termination.BACKEND_ERROR
            parsed = parse_assistant_turn(gen.text)
            if parsed.answer is not None:
                # The answer is final: calls written beside it are not run.
                self.traj.answer = parsed.answer
                return Termination.ANSWER
            if parsed.is_malformed:
                malformed += 1
                if malformed >= cfg.max_malformed_turns:
                    return Termination.MALFORMED_LIMIT
            else:
                malformed = 0
            t0 = time.perf_counter()
            responses = await self._run_calls(parsed.calls, turn) if parsed.calls else []
            self.traj.turns[-1].tool_latency_s = time.perf_counter() - t0
            self._append(
                {"role": "tool", "content": render_tool_turn(responses or [NO_ACTION_ERROR])}
            )
        return Termination.MAX_TURNS

    async def _forced_final(self, turn: int) -> Termination:
        """Context is nearly full: ask for the answer now, keeping the last tool result (cut
        from its end only when `min_forced_tokens` would not fit otherwise)."""
        forced = self._fit_forced(with_forced_answer_note(self.messages))
        self.messages = forced
        self.context_tokens = sum(self.count(render_message_raw(m)) for m in forced)
        room = self.config.max_context_tokens - self.context_tokens - self.gen_prompt_tokens
        budget = min(self.config.max_tokens_per_turn, room)
        if budget < self.config.min_forced_tokens:
            return Termination.CONTEXT_LIMIT
        try:
            gen = await self._generate(forced, budget, turn, forced=True)
        except BackendError as exc:
            self.traj.error = str(exc)
            return Termination.BACKEND_ERROR
        self.traj.answer = parse_assistant_turn(gen.text).answer
        return Termination.CONTEXT_LIMIT

    def _fit_forced(self, forced: list[Message]) -> list[Message]:
        cfg = self.config
        suffix = f"\n\n{FORCED_ANSWER_NOTE}"
        for _ in range(6):  # each pass cuts about the excess; token/char ratios vary a little
            used = sum(self.count(render_message_raw(m)) for m in forced)
            excess = used + self.gen_prompt_tokens + cfg.min_forced_tokens - cfg.max_context_tokens
            last = forced[-1]
            if excess <= 0 or last["role"] != "tool" or not last["content"].endswith(suffix):
                break
            result = last["content"][: -len(suffix)].removesuffix(TRUNCATION_MARK)
            if not result:
                break
            chars_per_token = len(result) / max(1, self.count(result))
            keep = max(0, len(result) - int((excess + 4) * chars_per_token) - 1)
            last["content"] = result[:keep] + TRUNCATION_MARK + suffix
        return forced

    async def _generate(
        self, messages: list[Message], max_tokens: int, turn: int, *, forced: bool = False
    ) -> Generation:
        cfg = self.config
        params = SamplingParams(
            max_tokens=max_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            stop=cfg.stop,
            seed=None if self.seed is None else self.seed + turn,
            logprobs=cfg.logprobs,
        )
        prompt_tokens = self.context_tokens + self.gen_prompt_tokens
        t0 = time.perf_counter()
        if cfg.prompt_mode == "chat":
            gen = await self.policy.chat(messages, params)
        else:
            gen = await self.policy.complete(render_raw(messages), params)
        latency = time.perf_counter() - t0
        completion = gen.completion_tokens
        if completion is None:
            completion = self.count(gen.text)
        self.traj.turns.append(
            TurnRecord(
                index=turn,
                text=gen.text,
                finish_reason=str(gen.finish_reason),
                prompt_tokens=prompt_tokens,
                completion_tokens=completion,
                gen_latency_s=latency,
                forced_answer=forced,
                token_ids=gen.token_ids,
                logprobs=gen.logprobs,
            )
        )
        self._append({"role": "assistant", "content": gen.text})
        return gen

    async def _run_calls(self, calls: list[ToolCall | ToolCallError], turn: int) -> list[str]:
        # Calls of one turn run concurrently; responses and records keep the written order.
        done = await asyncio.gather(*(self._run_call(c, turn) for c in calls))
        self.traj.tool_calls.extend(record for _, record in done)
        return [text for text, _ in done]

    async def _run_call(
        self, call: ToolCall | ToolCallError, turn: int
    ) -> tuple[str, ToolCallRecord]:
        if isinstance(call, ToolCallError):
            return call.message, ToolCallRecord(
                turn, "", call.raw, 0.0, call.message, len(call.message)
            )
        mask = self.task.mask_urls
        t0 = time.perf_counter()
        error: str | None = None
        try:
            if call.name == "search":
                result = await self.env.search(
                    call.queries, top_k=self.config.top_k, mask_urls=mask
                )
            else:
                result = await self.env.visit(call.urls, call.goal, mask_urls=mask)
            text = result.text
        except EnvUnreachableError:
            raise  # nothing serves the web: the run stops (and resumes) rather than score it
        except Exception as exc:  # the environment failed; the model is told, the episode goes on
            error = f"{type(exc).__name__}: {exc}"
            text = f"Error: the {call.name} tool failed ({error}). Try again or use other inputs."
        latency = time.perf_counter() - t0
        args = json.dumps(call.arguments, ensure_ascii=False)
        return text, ToolCallRecord(turn, call.name, args, latency, error, len(text))
