import json

import pytest
from mlflow import MlflowClient

from conf import load_settings
from literesearcher.cli import main
from tasks.evaluation.compare import compare, metric_matches
from tasks.evaluation.metrics import SampleResult, aggregate
from tasks.evaluation.tracking import eval_metrics
from tasks.tracking import Tracker


def _run(client, exp_id, curriculum, stage, metrics, steps=1):
    run = client.create_run(exp_id, tags={"curriculum": curriculum, "stage": stage})
    for step in range(steps):
        for key, value in metrics.items():
            client.log_metric(run.info.run_id, key, value - (steps - 1 - step) * 0.1, step=step)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _populate(settings):
    client = MlflowClient(settings.mlflow_tracking_uri())
    exp = client.create_experiment(settings.mlflow.experiment)
    # train runs log a reward curve: the last value is the final reward
    _run(client, exp, "baseline", "stage1", {"train/reward": 0.5}, steps=3)
    _run(client, exp, "mixed", "stage1", {"train/reward": 0.6}, steps=3)
    _run(client, exp, "mixed", "stage2", {"train/reward": 0.7}, steps=2)
    _run(
        client, exp, "baseline", "stage1", {"eval/gaia/pass_at_1": 0.10, "eval/gaia/avg_at_4": 0.12}
    )
    _run(client, exp, "mixed", "stage2",
         {"eval/gaia/pass_at_1": 0.25, "eval/gaia/cap/level-1/pass_at_1": 0.5})  # fmt: skip
    client.create_run(exp, tags={"flow": "smoke"})  # not a curriculum run: ignored
    return client


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One populated sqlite store for the module (creating one costs seconds)."""
    settings = load_settings("local", [f"data_root={tmp_path_factory.mktemp('mlflow')}"])
    _populate(settings)
    return settings


def test_compare_groups_by_curriculum_and_stage(store):
    client = MlflowClient(store.mlflow_tracking_uri())
    result = compare(client, store.mlflow.experiment)
    table = {(r.curriculum, r.stage): r for r in result.rows}
    assert list(table) == [("baseline", "stage1"), ("mixed", "stage1"), ("mixed", "stage2")]
    assert table[("baseline", "stage1")].values == {
        "train/reward": 0.5, "eval/gaia/pass_at_1": 0.10, "eval/gaia/avg_at_4": 0.12,
    }  # fmt: skip
    assert table[("baseline", "stage1")].runs == 2
    assert table[("mixed", "stage2")].values["eval/gaia/pass_at_1"] == 0.25
    # per-capability scores are not in the default columns
    assert "eval/gaia/cap/level-1/pass_at_1" not in result.metrics


def test_compare_cli_prints_the_table(store, capsys):
    overrides = ["--set", f"data_root={store.data_root}"]
    assert main([*overrides, "compare"]) == 0
    out = capsys.readouterr().out
    assert "baseline" in out and "mixed" in out and "eval/gaia/pass_at_1" in out
    assert main([*overrides, "compare", "--json", "--metric", "eval/*/cap/*/pass_at_1"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r for r in rows if "eval/gaia/cap/level-1/pass_at_1" in r] == [
        {
            "curriculum": "mixed",
            "stage": "stage2",
            "runs": 2,
            "eval/gaia/cap/level-1/pass_at_1": 0.5,
        }
    ]


def test_compare_unknown_experiment_fails_clearly(store, capsys):
    overrides = ["--set", f"data_root={store.data_root}"]
    assert main([*overrides, "compare", "--experiment", "nope"]) == 1
    assert "no experiment named 'nope'" in capsys.readouterr().out


def test_metric_patterns_match_per_segment():
    assert metric_matches("eval/gaia/pass_at_1", "eval/*/pass_at_1")
    assert not metric_matches("eval/gaia/cap/x/pass_at_1", "eval/*/pass_at_1")
    assert metric_matches("eval/gaia/avg_at_8", "eval/*/avg_at_*")


def _curriculum(settings, name: str, rewards: dict[str, list[float]]) -> None:
    """Log as the curriculum flow does: a parent run, a nested run per stage tagged with the
    curriculum and stage, `train/*` per step (steps continue across stages)."""
    tracker = Tracker.start(settings, f"curriculum-{name}", tags={"curriculum": name})
    step = 0
    for stage, values in rewards.items():
        with tracker.stage(stage, tags={"curriculum": name}) as run:
            for value in values:
                run.log_metrics({"train/reward": value, "train/pass_rate": value / 2}, step=step)
                step += 1
    tracker.finish()


def _evaluation(settings, curriculum: str, stage: str, correct: list[bool]) -> None:
    """An evaluation run of a stage's checkpoint, tagged as the evaluate flow tags it."""
    samples = [
        SampleResult(f"q{i}", "gaia", "level-1", 0, ok, "exact_match", "answer", 2, 1, 10)
        for i, ok in enumerate(correct)
    ]
    tags = {"flow": "evaluate", "curriculum": curriculum, "stage": stage}
    tracker = Tracker.start(settings, f"eval-{stage}", tags=tags, log_config=False)
    tracker.log_metrics(tracker.run_id, eval_metrics(aggregate(samples, k=1)))
    tracker.finish()


def test_compare_reads_the_curriculum_flows_stage_runs_and_eval_runs(settings, capsys):
    _curriculum(settings, "baseline", {"stage1": [0.1, 0.3], "stage2": [0.4, 0.5, 0.45]})
    _curriculum(settings, "mixed", {"stage1": [0.2, 0.6], "stage2": [0.7, 0.8]})
    _evaluation(settings, "baseline", "stage2", [True, False, False, False])
    _evaluation(settings, "mixed", "stage2", [True, True, False, False])

    result = compare(MlflowClient(settings.mlflow_tracking_uri()), settings.mlflow.experiment)
    table = {(r.curriculum, r.stage): r.values for r in result.rows}
    # the parent runs carry the curriculum tag but no stage and no metric: no row
    assert list(table) == [
        ("baseline", "stage1"), ("baseline", "stage2"), ("mixed", "stage1"), ("mixed", "stage2"),
    ]  # fmt: skip
    assert table[("baseline", "stage1")] == {"train/reward": 0.3, "train/pass_rate": 0.15}
    # the last step's reward, not the best one; the eval score beside it
    assert table[("baseline", "stage2")] == {
        "train/reward": 0.45, "train/pass_rate": 0.225,
        "eval/gaia/pass_at_1": 0.25, "eval/gaia/avg_at_1": 0.25,
    }  # fmt: skip
    assert table[("mixed", "stage2")]["eval/gaia/pass_at_1"] == 0.5
    assert table[("mixed", "stage2")]["train/reward"] == 0.8

    assert main(["--set", f"data_root={settings.data_root}", "compare", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {(r["curriculum"], r["stage"], r["runs"]) for r in rows} == {
        ("baseline", "stage1", 1), ("baseline", "stage2", 2),
        ("mixed", "stage1", 1), ("mixed", "stage2", 2),
    }  # fmt: skip
