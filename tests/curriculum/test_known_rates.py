"""The difficulty filter, given a scripted policy with known success rates, keeps exactly the
right tasks: pass@k rollouts through the real env_service (tantivy + DuckDB over HTTP), and
`ensure_env_service` starting that service when none answers."""

from __future__ import annotations

import socket
from pathlib import Path

from curriculum_testkit import SPECS, K, build_local_web, expected_pass_rates, known_rates_policy
from curriculum_testkit import records as task_records

from conf import load_settings
from data_catalog import Catalog
from env_service.client import EnvClient
from env_service.serving import ensure_env_service, env_service_answers
from rl.episode import EpisodeConfig
from rl.judge import Judge
from rl.rollout import rollout_async
from rl.tokens import approx_token_count
from tasks.curriculum.difficulty import ALWAYS_SOLVED, UNSOLVED, classify
from tasks.curriculum.stage_data import agent_task


async def test_known_success_rates_keep_exactly_the_partially_solved_tasks(
    tmp_path: Path,
) -> None:
    taken = socket.socket()  # the configured port is taken (bound, not serving HTTP)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    settings = load_settings("local", [f"data_root={tmp_path}", "cache.enabled=false",
                                       f"env_service.port={port}"])  # fmt: skip
    build_local_web(settings)
    records = task_records()
    assert not env_service_answers(settings.env_service.base_url())
    with ensure_env_service(settings) as live:
        assert live.env_service.url != settings.env_service.base_url()
        assert env_service_answers(live.env_service.url)
        with ensure_env_service(live) as same:
            assert same is live  # an answering service is used as it is
        async with EnvClient.from_settings(live) as env:
            result = await rollout_async(
                [agent_task(r) for r in records], known_rates_policy(), env, K,
                catalog=Catalog.from_settings(settings),
                config=EpisodeConfig(max_turns=3, date="2026-05-01"),
                count_tokens=approx_token_count, judge=Judge("exact_match"),
                policy_id="known-rates", concurrency=4, progress=False,
            )  # fmt: skip
    assert not env_service_answers(live.env_service.url)  # stopped on exit
    taken.close()
    catalog = Catalog.from_settings(settings)
    rows = catalog.read("pass_rates", result.pass_rates.version).to_arrow_table().to_pylist()
    assert {r["task_id"]: r["pass_rate"] for r in rows} == expected_pass_rates()
    episodes = catalog.read("rollouts", result.rollouts.version).to_arrow_table().to_pylist()
    assert all(e["num_tool_calls"] == 1 for e in episodes)  # every episode searched the web
    found = classify(rows, {r.id: r.capability for r in records},
                     token_edges=[16_384], pass_edges=[0.5])  # fmt: skip
    by_id = {r.id: s for r, s in zip(records, SPECS, strict=True)}
    assert {t.task_id for t in found.kept} == {i for i, s in by_id.items() if 0 < s.solved < K}
    assert sum(found.dropped[UNSOLVED].values()) == sum(s.solved == 0 for s in SPECS) == 2
    assert sum(found.dropped[ALWAYS_SOLVED].values()) == sum(s.solved == K for s in SPECS) == 2
