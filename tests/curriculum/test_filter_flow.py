"""The `filter_difficulty` flow end to end (real Prefect, catalog, env_service started by the
flow, an OpenAI-compatible policy endpoint with known success rates, MLflow), its cache, and
the `literesearcher filter` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from curriculum_testkit import SPECS, K, build_local_web
from curriculum_testkit import records as task_records
from mlflow import MlflowClient

from conf import load_settings
from data_catalog import Catalog
from literesearcher.cli import main
from literesearcher.testing import free_port
from tasks.curriculum.difficulty import is_heldout, probe_subset
from tasks.curriculum.stage_data import load_stage_tasks, stage_prompt_path
from tasks.evaluation.loaders import load_benchmark
from tasks.synthesis.schema import TASK_SCHEMA, to_table

SEED, FRACTION = 1, 0.25
STAGES = ("[{name: stage1}, {name: stage2, select: {capabilities: [enumeration, "
          "cross_verification], max_tasks: 2}}]")  # fmt: skip


def _overrides(root: Path, policy_url: str) -> list[str]:
    # Nothing serves on the free port; the flow starts env_service on it (or on another one).
    return [
        f"data_root={root}", "cache.enabled=false", "rl.max_turns=3", "rl.concurrency=4",
        "rl.date=2026-05-01", f"rl.k={K}", f"env_service.port={free_port()}",
        f'llm.endpoints={{policy: {{base_urls: ["{policy_url}"], model: known-rates}}}}',
        f"curriculum.difficulty.seed={SEED}",
        f"curriculum.difficulty.heldout_fraction={FRACTION}", f"curriculum.stages={STAGES}",
        "rl.temperature=0.0", "curriculum.difficulty.temperature=0.9",
    ]  # fmt: skip


def _write_tasks(catalog: Catalog) -> str:
    with catalog.create("tasks_filtered", params={"test": "known-rates"}) as w:
        w.write_table(to_table(task_records()))
    assert w.manifest is not None
    return w.manifest.version


def test_flow_writes_heldout_and_stage_datasets_and_is_cached(
    prefect_server, tmp_path: Path, policy_server: str
) -> None:
    from flows.filter_difficulty import filter_difficulty

    overrides = _overrides(tmp_path, policy_server)
    settings = load_settings("local", overrides)
    build_local_web(settings)
    catalog = Catalog.from_settings(settings)
    tasks_version = _write_tasks(catalog)
    records = task_records()
    by_id = {r.id: s for r, s in zip(records, SPECS, strict=True)}
    held = {i for i in by_id if is_heldout(i, FRACTION, SEED)}
    expected = {i for i, s in by_id.items() if 0 < s.solved < K and i not in held}
    assert held and expected

    result = filter_difficulty(profile="local", overrides=overrides)
    assert result["kept"] == len(expected)
    assert result["dropped"] == {
        "always_solved": sum(s.solved == K for i, s in by_id.items() if i not in held),
        "unsolved": sum(s.solved == 0 for i, s in by_id.items() if i not in held),
    }
    assert sum(result["per_bucket"].values()) == len(expected)

    heldout = catalog.manifest("tasks_heldout", result["heldout"])
    assert heldout is not None and heldout.inputs[0].version == tasks_version
    held_table = catalog.read("tasks_heldout", heldout.version).to_arrow_table()
    assert held_table.schema.names == TASK_SCHEMA.names
    assert set(held_table["id"].to_pylist()) == held
    loaded = load_benchmark("heldout", catalog.path(heldout) / "tasks.parquet")
    assert {item.id for item in loaded.items} == held  # the evaluate flow's heldout format

    rollouts = catalog.read("rollouts", result["rollouts"]).to_arrow_table()
    assert set(rollouts["task_id"].to_pylist()) == set(by_id) - held  # held out: never rolled
    assert rollouts.num_rows == K * (len(by_id) - len(held))

    s1 = catalog.manifest("curriculum_stage", result["stages"]["stage1"])
    s2 = catalog.manifest("curriculum_stage", result["stages"]["stage2"])
    assert s1 is not None and s2 is not None
    assert s1.params["stage"] == "stage1" and s2.params["stage"] == "stage2"
    assert "parts" not in s1.params["select"]  # whole: the cache key from before parts existed
    assert {t.id for t in load_stage_tasks(catalog, s1)} == expected
    stage2 = load_stage_tasks(catalog, s2)
    allowed = {i for i in expected if by_id[i].capability in ("enumeration", "cross_verification")}
    assert len(stage2) == 2 and {t.id for t in stage2} <= allowed
    prompts = [json.loads(x) for x in stage_prompt_path(catalog, s2).read_text().splitlines()]
    assert [p["question"] for p in prompts] == [t.question for t in stage2]
    assert all(p["messages"][1] == {"role": "user", "content": p["question"]} for p in prompts)
    assert all("2026-05-01" in p["messages"][0]["content"] for p in prompts)

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri())
    run = client.get_run(result["mlflow_run_id"])
    children = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result['mlflow_run_id']}'",
    )
    by_name = {c.info.run_name: c for c in children}
    assert set(by_name) == {"heldout_split", "rollouts", "difficulty", "stage:stage1",
                            "stage:stage2"}  # fmt: skip
    diff = by_name["difficulty"]
    assert diff.data.metrics["kept"] == len(expected)
    kept_caps = {by_id[i].capability for i in expected}
    assert all(diff.data.metrics[f"kept.{c}"] >= 1 for c in kept_caps)
    artifacts = {a.path for a in client.list_artifacts(diff.info.run_id)}
    assert {"pass_rate_histogram.svg", "pass_rate_histogram.json", "buckets.json"} <= artifacts
    assert by_name["stage:stage2"].data.metrics["tasks"] == 2

    again = filter_difficulty(profile="local", overrides=overrides)
    assert {k: again[k] for k in ("stages", "heldout", "rollouts", "pass_rates")} == {
        k: result[k] for k in ("stages", "heldout", "rollouts", "pass_rates")
    }
    assert len(catalog.versions("curriculum_stage")) == 2  # nothing rewritten
    assert len(catalog.versions("rollouts")) == 1
    # pass@k sampled at the difficulty filter's temperature, not the (greedy) rl one
    sealed = catalog.manifest("rollouts", result["rollouts"])
    assert sealed is not None and sealed.params["episode"]["temperature"] == 0.9


def test_flow_rolls_out_at_most_max_tasks(
    prefect_server, tmp_path: Path, policy_server: str
) -> None:
    from flows.filter_difficulty import filter_difficulty

    overrides = [*_overrides(tmp_path, policy_server), "curriculum.difficulty.max_tasks=4"]
    settings = load_settings("local", overrides)
    build_local_web(settings)
    catalog = Catalog.from_settings(settings)
    _write_tasks(catalog)
    by_id = {r.id: s for r, s in zip(task_records(), SPECS, strict=True)}
    pool = [i for i in by_id if not is_heldout(i, FRACTION, SEED)]
    probed = probe_subset(pool, 4, SEED)
    assert len(probed) == 4 < len(pool)

    result = filter_difficulty(profile="local", overrides=overrides)
    rollouts = catalog.read("rollouts", result["rollouts"]).to_arrow_table()
    assert set(rollouts["task_id"].to_pylist()) == probed
    s1 = catalog.manifest("curriculum_stage", result["stages"]["stage1"])
    assert s1 is not None
    assert {t.id for t in load_stage_tasks(catalog, s1)} == {
        i for i in probed if 0 < by_id[i].solved < K
    }


def test_flow_splits_the_kept_tasks_between_stages_by_part(
    prefect_server, tmp_path: Path, policy_server: str
) -> None:
    from flows.filter_difficulty import filter_difficulty

    stages = ("[{name: stage1, select: {part: 1, parts: 2}}, "
              "{name: stage2, select: {part: 2, parts: 2}}]")  # fmt: skip
    overrides = [*_overrides(tmp_path, policy_server), f"curriculum.stages={stages}"]
    settings = load_settings("local", overrides)
    build_local_web(settings)
    catalog = Catalog.from_settings(settings)
    _write_tasks(catalog)
    by_id = {r.id: s for r, s in zip(task_records(), SPECS, strict=True)}
    expected = {
        i for i, s in by_id.items() if 0 < s.solved < K and not is_heldout(i, FRACTION, SEED)
    }

    result = filter_difficulty(profile="local", overrides=overrides)
    halves = []
    for name in ("stage1", "stage2"):
        manifest = catalog.manifest("curriculum_stage", result["stages"][name])
        assert manifest is not None and manifest.params["select"]["parts"] == 2
        halves.append({t.id for t in load_stage_tasks(catalog, manifest)})
    assert halves[0] and halves[1] and not halves[0] & halves[1]
    assert halves[0] | halves[1] == expected


def test_flow_probes_only_the_capabilities_the_stages_select(
    prefect_server, tmp_path: Path, policy_server: str
) -> None:
    from flows.filter_difficulty import filter_difficulty

    chosen = ["enumeration", "cross_verification"]
    stages = (f"[{{name: stage1, select: {{capabilities: [{chosen[0]}]}}}}, "
              f"{{name: stage2, select: {{capabilities: [{chosen[1]}]}}}}]")  # fmt: skip
    overrides = [*_overrides(tmp_path, policy_server), f"curriculum.stages={stages}"]
    settings = load_settings("local", overrides)
    assert settings.curriculum.selected_capabilities() == sorted(chosen)
    build_local_web(settings)
    catalog = Catalog.from_settings(settings)
    _write_tasks(catalog)
    pool = [r for r in task_records() if not is_heldout(r.id, FRACTION, SEED)]
    wanted = {r.id for r in pool if r.capability in chosen}
    assert wanted and len(wanted) < len(pool)

    result = filter_difficulty(profile="local", overrides=overrides)
    rollouts = catalog.read("rollouts", result["rollouts"]).to_arrow_table()
    assert set(rollouts["task_id"].to_pylist()) == wanted


def test_cli_filter_runs_the_flow(
    prefect_server, tmp_path: Path, policy_server: str, capsys
) -> None:
    overrides = _overrides(tmp_path, policy_server)
    settings = load_settings("local", overrides)
    build_local_web(settings)
    version = _write_tasks(Catalog.from_settings(settings))
    argv = ["--profile", "local"]
    for o in overrides:
        argv += ["--set", o]
    code = main([*argv, "filter", "--tasks", version, "-k", str(K)])
    assert code == 0
    printed = capsys.readouterr().out
    out, _ = json.JSONDecoder().raw_decode(printed[printed.index('{\n  "stages"') :])
    assert set(out["stages"]) == {"stage1", "stage2"} and out["kept"] > 0
    assert main([*argv, "filter", "-k", "1"]) == 2


def test_flow_without_tasks_says_what_to_run(prefect_server, tmp_path: Path) -> None:
    from flows.filter_difficulty import filter_difficulty

    with pytest.raises(ValueError, match="literesearcher synthesize"):
        filter_difficulty(profile="local", overrides=[f"data_root={tmp_path}"])
