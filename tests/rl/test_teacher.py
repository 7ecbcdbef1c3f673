"""The oracle teacher: trajectories through the real env_service over a generated world, in the
protocol's shape, judge-verified, never touching a masked page, and stored for SFT."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conf import load_settings
from data_catalog import Catalog
from env_service.app import create_app
from env_service.client import EnvClient
from literesearcher.testing import serve_app
from literesearcher.world import generate_world
from rl.judge import Judge, normalize_answer
from rl.protocol import extract_answer, parse_assistant_turn, render_raw, render_tool_turn
from rl.teacher import (
    QUOTE_TEMPLATE,
    TeacherConfig,
    choose_visit,
    evidence_quote,
    grounded,
    merge_sft_data,
    page_spelling,
    read_sft_messages,
    search_result_urls,
    sft_params,
    teacher_trajectories,
    write_sft_data,
)
from rl.trainer.sequences import check_matches_full_render, tokenize_episode
from tasks.synthesis import world_web
from tasks.synthesis.ground_truth import GroundTruthGenerator
from tasks.synthesis.schema import TaskRecord

CAPS = ["direct_retrieval", "aggregation", "enumeration", "cross_verification", "statistics"]


@pytest.fixture(scope="module")
def world_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[TaskRecord]]]:
    root = tmp_path_factory.mktemp("teacher")
    world, web = root / "world", root / "web"
    generate_world(world, pages=400, seed=3)
    world_web.build_world_web(world, web)
    tasks = list(GroundTruthGenerator(world, seed=3).generate(CAPS, 6))  # type: ignore[arg-type]
    settings = load_settings(
        "local",
        [
            f"data_root={root}",
            f"page_store.duckdb_path={web / 'pages.duckdb'}",
            f"index.tantivy_path={web / 'lexical'}",
            "cache.enabled=false",
            "env_service.top_k=4",
            "env_service.api_key_env=LITERESEARCHER_TEST_ENV_KEY_UNSET",
        ],
    )
    with serve_app(create_app(settings)) as url:
        yield url, tasks


def _teach(url: str, tasks: list[TaskRecord], config: TeacherConfig, **kw: Any) -> Any:
    async def go() -> Any:
        async with EnvClient(url) as env:
            return await teacher_trajectories(tasks, env, config, progress=False, **kw)

    return asyncio.run(go())


def test_teacher_trajectories_follow_the_protocol_and_are_correct(world_env: Any) -> None:
    url, tasks = world_env
    assert {t.capability for t in tasks} == set(CAPS)
    result = _teach(url, tasks, TeacherConfig(date="2025-02-03", top_k=4))
    by_id = {t.id: t for t in tasks}
    assert result.stats["kept"] == len(result.trajectories) == len(tasks)
    for traj in result.trajectories:
        task = by_id[traj.task_id]
        roles = [m["role"] for m in traj.messages]
        assert roles == ["system", "user", "assistant", "tool", "assistant", "tool", "assistant"]
        assert "Current date: 2025-02-03" in traj.messages[0]["content"]
        turns = [
            parse_assistant_turn(m["content"]) for m in traj.messages if m["role"] == "assistant"
        ]
        assert all(t.think for t in turns) and not any(t.is_malformed for t in turns)
        assert [c.name for c in turns[0].valid_calls] == ["search"]
        assert turns[0].valid_calls[0].queries == [task.question]
        assert [c.name for c in turns[1].valid_calls] == ["visit"]
        assert turns[2].answer == task.answers[0] and not turns[2].calls
        assert extract_answer(traj.messages) == task.answers[0] == traj.answer
        assert traj.correct is True and traj.reward == 1.0 and traj.judge_method == "exact_match"
        assert traj.raw_text == render_raw(traj.messages, add_generation_prompt=False)
        assert [c.name for c in traj.tool_calls] == ["search", "visit"]
        assert [t.text for t in traj.turns] == [
            m["content"] for m in traj.messages if m["role"] == "assistant"
        ]


def test_tool_responses_are_the_real_env_output_and_masks_hold(world_env: Any) -> None:
    url, tasks = world_env
    result = _teach(url, tasks, TeacherConfig(top_k=4))
    by_id = {t.id: t for t in tasks}
    masked_tasks = 0

    async def replay() -> None:
        nonlocal masked_tasks
        async with EnvClient(url) as env:
            for traj in result.trajectories:
                task = by_id[traj.task_id]
                search = parse_assistant_turn(traj.messages[2]["content"]).valid_calls[0]
                visit = parse_assistant_turn(traj.messages[4]["content"]).valid_calls[0]
                again = await env.search(search.queries, top_k=4, mask_urls=task.mask_urls)
                assert traj.messages[3]["content"] == render_tool_turn([again.text])
                page = await env.visit(visit.urls, visit.goal, mask_urls=task.mask_urls)
                assert traj.messages[5]["content"] == render_tool_turn([page.text])
                assert all(r.found for r in page.results)  # a real page, not an error text
                shown = search_result_urls(again.text)
                assert len(shown) == len(again.results[0].results)
                if task.mask_urls:
                    masked_tasks += 1
                    assert not set(visit.urls) & set(task.mask_urls)
                    assert not set(shown) & set(task.mask_urls)
                evidence = set(task.evidence_urls) - set(task.mask_urls)
                assert set(visit.urls) <= evidence or not evidence

    asyncio.run(replay())
    assert masked_tasks > 0


def test_choose_visit_prefers_a_listed_evidence_page_and_never_a_masked_one() -> None:
    task = TaskRecord(
        id="t", question="q?", answers=["a"], capability="direct_retrieval",
        evidence_urls=["https://a.org/1", "https://b.org/2", "https://c.org/3"],
        mask_urls=["https://a.org/1"], source="s", generator="g", created="now",
    )  # fmt: skip
    shown = ["https://x.org/9", "https://c.org/3", "https://a.org/1"]
    assert choose_visit(task, shown) == (["https://c.org/3"], 2, "evidence_in_results")
    assert choose_visit(task, ["https://x.org/9"]) == (["https://b.org/2"], None,
                                                       "evidence_unlisted")  # fmt: skip
    only_masked = task.model_copy(update={"evidence_urls": ["https://a.org/1"]})
    assert choose_visit(only_masked, shown) == (["https://x.org/9"], 1, "top_result")
    assert choose_visit(only_masked, ["https://a.org/1"])[2] == "nothing_to_visit"


def test_grounded_matches_whole_normalized_tokens() -> None:
    assert grounded(["1,234"], ["The population is 1234 people."])
    assert grounded(["Sefezaport"], ["Companies headquartered in sefezaport."])
    assert not grounded(["23"], ["It has 123 employees."])


VISIT = """The useful information in https://w.org/n for user goal In what year? as follows: \n
Evidence in page: \n# Niveko Industries Niveko Industries is a company in the textiles industry. \
Niveko Industries was established in 1903. [Jonas Koropas](https://o.org/jk) is the founder. \
- [Tigeto Systems](https://w.org/t): logistics company, founded 1965 - [Dogame Labs](https://o.org/d)\
: biotechnology company, founded 1931\n
Summary: \nNiveko Industries - Wikiverse: Niveko Industries is a company in the textiles industry.\n
"""


def test_evidence_quote_cuts_the_shortest_stating_piece_after_the_answer() -> None:
    assert evidence_quote(VISIT, ["1903"]) == "Niveko Industries was established in 1903"
    # The summary is searched first; case is the page's; the answer ends the quote.
    assert evidence_quote(VISIT, ["TEXTILES"]) == (
        "Niveko Industries - Wikiverse: Niveko Industries is a company in the textiles"
    )
    # A list item; a name that opens its piece is quoted with the whole piece.
    assert evidence_quote(VISIT, ["1931"]) == (
        "[Dogame Labs](https://o.org/d): biotechnology company, founded 1931"
    )
    assert evidence_quote(VISIT, ["Jonas Koropas"]) == (
        "[Jonas Koropas](https://o.org/jk) is the founder."
    )
    assert evidence_quote(VISIT, ["1850"]) is None  # not stated: no quote
    assert evidence_quote(VISIT, ["1903"], max_chars=20) is None  # too long to quote


def test_page_spelling_keeps_the_space_the_page_puts_before_the_answer() -> None:
    assert page_spelling(VISIT, ["1903"]) == " 1903"
    assert page_spelling(VISIT, ["tigeto systems"]) == "Tigeto Systems"  # opens a link: no space
    assert page_spelling(VISIT, ["In what year"]) is None  # the header's goal is not the page
    assert page_spelling(VISIT, ["1850"]) is None


def test_answers_as_page_tokenize_as_the_page_and_parse_the_same(world_env: Any) -> None:
    url, tasks = world_env
    config = TeacherConfig(require_grounded=True, answer_as_page=True)
    result = _teach(url, tasks, config)
    plain = _teach(url, tasks, TeacherConfig(require_grounded=True))
    assert len(result.trajectories) == len(plain.trajectories) > 0
    spaced = 0
    for traj, before in zip(result.trajectories, plain.trajectories, strict=True):
        written = traj.messages[6]["content"].split("<answer>", 1)[1].removesuffix("</answer>")
        assert written == page_spelling(traj.messages[5]["content"], traj.gold_answers)
        assert traj.answer == written.strip() and traj.correct
        assert normalize_answer(traj.answer) == normalize_answer(before.answer or "")
        spaced += written.startswith(" ")
    assert spaced > 0
    assert sft_params(tasks, config) != sft_params(tasks, TeacherConfig(require_grounded=True))
    assert "answer_as_page" not in sft_params(tasks, TeacherConfig())["teacher"]


def test_quoting_teacher_answers_with_its_quotes_last_words(world_env: Any) -> None:
    url, tasks = world_env
    config = TeacherConfig(require_grounded=True, quote=QUOTE_TEMPLATE)
    result = _teach(url, tasks, config)
    plain = _teach(url, tasks, TeacherConfig(require_grounded=True))
    assert [t.task_id for t in result.trajectories] == [t.task_id for t in plain.trajectories]
    quoted = 0
    for traj in result.trajectories:
        think = parse_assistant_turn(traj.messages[6]["content"]).think
        quote = evidence_quote(traj.messages[5]["content"], traj.gold_answers)
        if quote is None:
            assert think == config.conclude
            continue
        quoted += 1
        assert think == QUOTE_TEMPLATE.format(quote=quote) and quote in traj.messages[5]["content"]
        assert traj.correct and traj.answer is not None
        assert quote.endswith(traj.answer) or quote.startswith(("[", traj.answer))
    assert quoted >= len(result.trajectories) // 2
    # Teacher data written before quotes existed keeps its key; quoting data gets another.
    assert "quote" not in sft_params(tasks, TeacherConfig())["teacher"]
    assert sft_params(tasks, config) != sft_params(tasks, TeacherConfig(require_grounded=True))


def test_teacher_visiting_the_top_results_reads_only_urls_the_search_listed(
    world_env: Any,
) -> None:
    """visit_results=N: one visit call to the top N results in rank order, never a URL the
    search did not list (the evidence-page teacher visits unlisted evidence pages too)."""
    url, tasks = world_env
    config = TeacherConfig(require_grounded=True, visit_results=2, top_k=4)
    result = _teach(url, tasks, config)
    assert result.trajectories and result.stats["visit.top_results"] == len(result.trajectories)
    for traj in result.trajectories:
        turn = parse_assistant_turn(traj.messages[4]["content"])
        assert turn.think == "I will read the top 2 results."
        (call,) = turn.valid_calls
        listed = search_result_urls(traj.messages[3]["content"])
        assert call.name == "visit" and call.arguments["url"] == listed[:2]
        assert grounded(traj.gold_answers, [traj.messages[5]["content"]]) and traj.correct
    assert "visit_results" not in sft_params(tasks, TeacherConfig())["teacher"]
    assert "pick_results" not in sft_params(tasks, TeacherConfig())["teacher"]
    assert sft_params(tasks, config)["teacher"]["visit_results"] == 2


def test_wrong_or_ungrounded_trajectories_are_dropped(world_env: Any) -> None:
    url, tasks = world_env
    # A gold answer that normalizes to nothing can never be judged correct.
    bad = tasks[0].model_copy(update={"id": "bad", "answers": ["!!!"]})
    result = _teach(url, [bad, tasks[1]], TeacherConfig(), judge=Judge("exact_match"))
    assert [t.task_id for t in result.trajectories] == [tasks[1].id]
    assert result.stats["dropped.judged_wrong"] == 1

    strict = _teach(url, tasks, TeacherConfig(require_grounded=True))
    loose = _teach(url, tasks, TeacherConfig())
    assert 0 < len(strict.trajectories) < len(loose.trajectories)
    assert strict.stats["dropped.not_grounded"] == len(tasks) - len(strict.trajectories)
    for traj in strict.trajectories:
        assert grounded(traj.gold_answers, [traj.messages[5]["content"]])


def test_sft_data_round_trips_into_the_sft_trainer_input(
    world_env: Any, tmp_path: Path, tiny_policy: Path
) -> None:
    from transformers import AutoTokenizer

    url, tasks = world_env
    config = TeacherConfig(top_k=4)
    result = _teach(url, tasks, config)
    catalog = Catalog(tmp_path / "catalog")
    params = sft_params(tasks, config)
    manifest = write_sft_data(catalog, result.trajectories, [], params, result.stats)
    assert manifest.name == "sft_data" and manifest.rows == len(result.trajectories)
    assert manifest.files == ["trajectories.parquet"]
    assert manifest.stats["kept"] == len(result.trajectories)
    assert json.loads(json.dumps(manifest.params))["teacher"]["top_k"] == 4
    again = write_sft_data(catalog, result.trajectories[:1], [], params)
    assert again.version == manifest.version and again.rows == manifest.rows

    table = catalog.to_arrow("sft_data", manifest.version)
    assert set(table.schema.names) >= {"messages", "correct", "num_tool_calls", "raw_text"}
    messages = read_sft_messages(catalog, manifest)
    assert messages == [t.messages for t in result.trajectories]

    tokenizer = AutoTokenizer.from_pretrained(tiny_policy)
    episode = tokenize_episode(messages[0], tokenizer)
    check_matches_full_render(messages[0], tokenizer, episode)
    assert 0 < episode.num_trained_tokens < len(episode)

    with pytest.raises(ValueError, match="no teacher trajectories"):
        write_sft_data(catalog, [], [], {"other": 1})


def test_merged_sft_data_holds_every_part_in_order_and_is_found_again(
    world_env: Any, tmp_path: Path
) -> None:
    url, tasks = world_env
    catalog = Catalog(tmp_path / "catalog")
    config = TeacherConfig(top_k=4)
    halves = [tasks[: len(tasks) // 2], tasks[len(tasks) // 2 :]]
    parts = []
    for half in halves:
        result = _teach(url, half, config)
        parts.append(write_sft_data(catalog, result.trajectories, [], sft_params(half, config)))
    merged = merge_sft_data(catalog, parts)
    assert merged.version not in {p.version for p in parts}
    assert merged.rows == sum(p.rows for p in parts)
    assert merged.stats["parts"] == {p.version: p.rows for p in parts}
    assert read_sft_messages(catalog, merged) == [
        m for p in parts for m in read_sft_messages(catalog, p)
    ]
    assert merge_sft_data(catalog, parts).version == merged.version  # found, not rewritten
    assert len(catalog.versions("sft_data")) == 3
    assert merge_sft_data(catalog, parts[:1]) is parts[0]
    with pytest.raises(ValueError, match="at least one"):
        merge_sft_data(catalog, [])
