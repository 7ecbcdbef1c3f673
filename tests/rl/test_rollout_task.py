"""The Prefect `rollout` task's body end to end: the tiny local policy, the real env_service
(tantivy + DuckDB, over HTTP through EnvClient) and the catalog."""

from __future__ import annotations

from pathlib import Path

from conf import load_settings
from data_catalog import Catalog
from env_service.stores.base import Page
from literesearcher.testing import serve_local_web
from rl.rollout import rollout

PAGES = [
    Page("https://example.org/eiffel", "Eiffel Tower", "The Eiffel Tower is 330 metres tall."),
    Page("https://example.org/paris", "Paris", "Paris is the capital of France on the Seine."),
]


async def test_rollout_task_with_tiny_policy_and_real_env_service(
    tmp_path: Path, tiny_policy: Path
) -> None:
    settings = load_settings(
        "local",
        [
            f"data_root={tmp_path}",
            "cache.enabled=false",
            f"llm.local_policy_path={tiny_policy}",
            "llm.device=cpu",
            "rl.max_turns=2",
            "rl.max_tokens_per_turn=8",
            "rl.concurrency=2",
            "rl.part_size=2",
            "rl.date=2026-05-01",
        ],
    )
    tasks = [
        {"id": "a", "question": "How tall is the Eiffel Tower?", "answers": ["330 metres"],
         "mask_urls": ["https://example.org/eiffel"], "capability": "direct"},
        {"id": "b", "question": "Capital of France?", "answers": ["Paris"]},
    ]  # fmt: skip
    with serve_local_web(settings, PAGES, words=32, overlap=4) as url:
        settings.env_service.url = url
        result = await rollout.fn(tasks, None, 2, settings=settings, progress=False)
    assert result.episodes_run == 4 and result.rollouts.rows == 4
    assert result.rollouts.params["policy"].startswith("local:")
    catalog = Catalog.from_settings(settings)
    rows = catalog.read("rollouts", result.rollouts.version).to_arrow_table().to_pylist()
    assert sorted((r["task_id"], r["sample_idx"]) for r in rows) == [
        ("a", 0), ("a", 1), ("b", 0), ("b", 1),
    ]  # fmt: skip
    assert all(r["judge_method"] in ("exact_match", "no_answer") for r in rows)
    assert all(t["completion_tokens"] <= 8 for r in rows for t in r["turns"])
    rates = catalog.read("pass_rates", result.pass_rates.version).to_arrow_table().to_pylist()
    assert {r["task_id"]: r["k"] for r in rates} == {"a": 2, "b": 2}
