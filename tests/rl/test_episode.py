from __future__ import annotations

import asyncio
from collections.abc import Callable

import pyarrow as pa
import pytest
from rl_testkit import (
    FakeWeb,
    ScriptedPolicy,
    answer_turn,
    backend_error,
    calls_turn,
    search_call,
    visit_call,
)

from rl.episode import TRUNCATION_MARK, AgentTask, EpisodeConfig, ToolEnvironment, run_episode
from rl.judge import Judge
from rl.protocol import (
    FORCED_ANSWER_NOTE,
    NO_ACTION_ERROR,
    Termination,
    render_raw,
    render_tool_turn,
)
from rl.tokens import approx_token_count
from rl.trajectory import TRAJECTORY_SCHEMA, Trajectory, trajectories_to_table

TASK = AgentTask(
    id="t1",
    question="How tall is the Eiffel Tower?",
    answers=["330 metres", "330 m"],
    mask_urls=["https://example.org/eiffel"],
    source="world",  # provenance: allowed and ignored
)
CFG = EpisodeConfig(max_turns=6, max_tokens_per_turn=64, max_context_tokens=4096, date="2026-05-01")


async def run(policy: ScriptedPolicy, web: FakeWeb, cfg: EpisodeConfig = CFG) -> Trajectory:
    return await run_episode(TASK, policy, web, cfg, approx_token_count, judge=Judge("exact_match"))


def test_fake_web_satisfies_the_tool_environment_protocol(web: FakeWeb) -> None:
    assert isinstance(web, ToolEnvironment)


def test_agent_task_accepts_one_answer_or_many_and_ignores_provenance() -> None:
    t = AgentTask.model_validate({"id": "x", "question": "q", "answers": "a", "capability": "c"})
    assert t.answers == ["a"] and t.mask_urls == []
    with pytest.raises(ValueError):
        AgentTask.model_validate({"id": "x", "question": "q", "answers": []})


async def test_answer_after_search_and_visit_passes_mask_urls_to_both_tools(web: FakeWeb) -> None:
    policy = ScriptedPolicy(
        [
            calls_turn(search_call("Eiffel Tower tall")),
            calls_turn(visit_call("https://example.org/eiffel", "height")),
            answer_turn("330 m"),
        ]
    )
    traj = await run(policy, web)
    assert traj.termination == Termination.ANSWER
    assert traj.answer == "330 m" and traj.correct is True and traj.reward == 1.0
    assert traj.judge_method == "exact_match" and traj.judge_error is None
    mask = ("https://example.org/eiffel",)
    assert web.searches == [(["Eiffel Tower tall"], mask)]
    assert web.visits == [(["https://example.org/eiffel"], "height", mask)]
    # The masked page is absent from search results; the tool text is the env's, verbatim.
    tool_msgs = [m for m in traj.messages if m["role"] == "tool"]
    assert "example.org/eiffel" not in tool_msgs[0]["content"]
    assert tool_msgs[1]["content"].startswith(
        "The useful information in https://example.org/eiffel"
    )
    assert [m["role"] for m in traj.messages] == [
        "system", "user", "assistant", "tool", "assistant", "tool", "assistant",
    ]  # fmt: skip
    # Per-turn exact generated text, timing, token counts; tool calls with latencies.
    assert [t.text for t in traj.turns] == [p for p in policy.turns]  # type: ignore[union-attr]
    assert all(t.gen_latency_s >= 0 and t.completion_tokens > 0 for t in traj.turns)
    assert traj.turns[1].prompt_tokens > traj.turns[0].prompt_tokens
    assert [(c.name, c.error) for c in traj.tool_calls] == [("search", None), ("visit", None)]
    assert traj.raw_text == render_raw(traj.messages, add_generation_prompt=False)
    assert traj.context_tokens == sum(
        approx_token_count(render_raw([m], False)) for m in traj.messages
    )
    # Completion mode: the policy saw exactly the raw rendering of the conversation so far.
    assert policy.prompts[-1] == render_raw(traj.messages[:-1])
    assert "2026-05-01" in traj.messages[0]["content"]


async def test_two_calls_in_one_turn_run_and_respond_in_order(web: FakeWeb) -> None:
    web.delay_s = 0.01
    policy = ScriptedPolicy(
        [
            calls_turn(visit_call("https://example.org/paris", "capital"), search_call("Paris")),
            answer_turn("330 m"),
        ]
    )
    traj = await run(policy, web)
    tool = next(m for m in traj.messages if m["role"] == "tool")["content"]
    assert tool.index("The useful information in https://example.org/paris") < tool.index(
        "A Google search for 'Paris'"
    )
    assert [c.name for c in traj.tool_calls] == ["visit", "search"]
    assert traj.turns[0].tool_latency_s >= 0.01


async def test_answer_beside_a_tool_call_ends_the_episode_without_running_it(web: FakeWeb) -> None:
    text = calls_turn(search_call("x")) + "\n<answer>330 metres</answer>"
    traj = await run(ScriptedPolicy([text]), web)
    assert traj.termination == Termination.ANSWER and traj.correct
    assert web.searches == [] and traj.tool_calls == []


async def test_malformed_json_is_fed_back_and_the_episode_continues(web: FakeWeb) -> None:
    bad = '<think>t</think><tool_call>{"name": "search", "arguments": {"query": ["x"]</tool_call>'
    traj = await run(ScriptedPolicy([bad, answer_turn("330 metres")]), web)
    assert traj.termination == Termination.ANSWER and traj.correct
    feedback = traj.messages[3]
    assert feedback["role"] == "tool" and feedback["content"].startswith(
        "Error: the tool call is not valid JSON"
    )
    assert traj.tool_calls[0].error is not None and traj.tool_calls[0].name == ""


async def test_max_turns(web: FakeWeb) -> None:
    traj = await run(ScriptedPolicy([calls_turn(search_call("Paris"))]), web)
    assert traj.termination == Termination.MAX_TURNS
    assert traj.num_turns == CFG.max_turns and len(web.searches) == CFG.max_turns
    assert traj.answer is None and traj.correct is False and traj.judge_method == "no_answer"


async def test_malformed_limit_after_consecutive_unusable_turns(web: FakeWeb) -> None:
    policy = ScriptedPolicy(
        ["just rambling", calls_turn(search_call("Paris")), "more", "<tool_call>{", "x"]
    )
    traj = await run(policy, web)
    # Turn 0 malformed, turn 1 valid (resets), turns 2-4 malformed: the limit (3) is hit at turn 4.
    assert traj.termination == Termination.MALFORMED_LIMIT
    assert traj.num_turns == 5
    assert traj.messages[3]["content"] == NO_ACTION_ERROR


def _forced_script(url: str) -> Callable[[str, int], str]:
    def script(prompt: str, turn: int) -> str:
        # The forced turn is recognisable by the note at the end of the prompt.
        if FORCED_ANSWER_NOTE in prompt:
            return answer_turn("330 metres")
        return calls_turn(visit_call(url, "height"))

    return script


async def test_context_limit_forces_a_final_answer_that_keeps_the_last_tool_result(
    web: FakeWeb,
) -> None:
    policy = ScriptedPolicy(_forced_script("https://example.org/paris"))
    cfg = EpisodeConfig(
        max_turns=50, max_tokens_per_turn=200, max_context_tokens=1200, min_forced_tokens=32,
        date="2026-05-01",
    )  # fmt: skip
    traj = await run(policy, web, cfg)
    assert traj.termination == Termination.CONTEXT_LIMIT
    assert traj.answer == "330 metres" and traj.correct
    assert traj.turns[-1].forced_answer and not any(t.forced_answer for t in traj.turns[:-1])
    last_tool = [m for m in traj.messages if m["role"] == "tool"][-1]["content"]
    expected = (await web.visit(["https://example.org/paris"], "height")).text
    kept = render_tool_turn([expected])
    assert last_tool == f"{kept}\n\n{FORCED_ANSWER_NOTE}"  # the result is kept whole
    budget = policy.params[-1].max_tokens
    assert cfg.min_forced_tokens <= budget <= cfg.max_tokens_per_turn
    assert traj.turns[-1].prompt_tokens + budget <= cfg.max_context_tokens


async def test_forced_answer_cuts_a_huge_last_tool_result_from_its_end(web: FakeWeb) -> None:
    web.pages["https://example.org/long"] = ("Long", "word " * 3000)
    policy = ScriptedPolicy(_forced_script("https://example.org/long"))
    cfg = EpisodeConfig(
        max_turns=50, max_tokens_per_turn=128, max_context_tokens=3000, min_forced_tokens=64,
        date="2026-05-01",
    )  # fmt: skip
    traj = await run(policy, web, cfg)
    assert traj.termination == Termination.CONTEXT_LIMIT and traj.answer == "330 metres"
    last_tool = traj.messages[-2]["content"]
    assert last_tool.startswith("The useful information in https://example.org/long")
    assert last_tool.endswith(f"{TRUNCATION_MARK}\n\n{FORCED_ANSWER_NOTE}")
    assert traj.turns[-1].prompt_tokens + policy.params[-1].max_tokens <= cfg.max_context_tokens
    assert policy.params[-1].max_tokens >= cfg.min_forced_tokens


async def test_timeout_returns_the_partial_trajectory(web: FakeWeb) -> None:
    policy = ScriptedPolicy([calls_turn(search_call("Paris"))], delay_s=0.05)
    cfg = EpisodeConfig(max_turns=100, timeout_s=0.3, date="2026-05-01")
    traj = await run(policy, web, cfg)
    assert traj.termination == Termination.TIMEOUT
    assert 1 <= traj.num_turns < 100 and traj.wall_s < 2
    assert traj.raw_text == render_raw(traj.messages, add_generation_prompt=False)


async def test_backend_error_ends_the_episode_with_the_reason(web: FakeWeb) -> None:
    policy = ScriptedPolicy([calls_turn(search_call("Paris")), backend_error("HTTP 503")])
    traj = await run(policy, web)
    assert traj.termination == Termination.BACKEND_ERROR
    assert traj.error == "HTTP 503" and traj.num_turns == 1


async def test_a_failing_tool_is_reported_to_the_model_not_fatal(web: FakeWeb) -> None:
    web.fail_with = ConnectionError("env down")
    policy = ScriptedPolicy([calls_turn(search_call("Paris")), answer_turn("330 m")])
    traj = await run(policy, web)
    assert traj.termination == Termination.ANSWER
    assert traj.tool_calls[0].error == "ConnectionError: env down"
    assert "search tool failed" in traj.messages[3]["content"]


async def test_an_unreachable_env_service_stops_the_episode(web: FakeWeb) -> None:
    """Nothing serving the web is not the model's failure: no episode is scored on it."""
    from env_service.client import EnvUnreachableError

    web.fail_with = EnvUnreachableError("env_service at http://x is unreachable")
    policy = ScriptedPolicy([calls_turn(search_call("Paris")), answer_turn("330 m")])
    with pytest.raises(EnvUnreachableError, match="unreachable"):
        await run(policy, web)


async def test_chat_mode_sends_messages_to_the_backend(web: FakeWeb) -> None:
    policy = ScriptedPolicy([calls_turn(search_call("Paris")), answer_turn("330 m")])
    cfg = EpisodeConfig(prompt_mode="chat", date="2026-05-01", temperature=0.3, stop=("<x>",))
    traj = await run(policy, web, cfg)
    assert traj.termination == Termination.ANSWER and not policy.prompts
    assert [m["role"] for m in policy.chats[-1]] == ["system", "user", "assistant", "tool"]
    assert policy.params[0].temperature == 0.3 and policy.params[0].stop == ("<x>",)


async def test_episodes_run_concurrently(web: FakeWeb) -> None:
    policy = ScriptedPolicy([calls_turn(search_call("Paris")), answer_turn("330 m")], delay_s=0.1)
    trajs = await asyncio.gather(*(run(policy, web) for _ in range(10)))
    assert all(t.termination == Termination.ANSWER for t in trajs)
    assert max(t.wall_s for t in trajs) < 1.0  # 10 x 0.2 s sequential would be 2 s


async def test_trajectory_record_matches_the_catalog_schema(web: FakeWeb) -> None:
    traj = await run(ScriptedPolicy([calls_turn(search_call("Paris")), answer_turn("北京")]), web)
    table = trajectories_to_table([traj])
    assert table.schema.equals(TRAJECTORY_SCHEMA)
    row = table.to_pylist()[0]
    assert row["termination"] == "answer" and row["answer"] == "北京" and row["num_turns"] == 2
    assert row["tool_calls"][0]["name"] == "search"
    back = Trajectory.from_record(row)
    assert back.messages == traj.messages and back.turns[0].text == traj.turns[0].text
    assert isinstance(pa.Table.from_pylist([back.to_record()], schema=TRAJECTORY_SCHEMA), pa.Table)
