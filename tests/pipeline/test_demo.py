"""`literesearcher demo` end to end on a reduced configuration (tests/pipeline/tiny.yaml): every
stage runs for real (world, local web, env_service, synthesis, teacher, SFT, difficulty filter,
two RL stages, held-out eval); a second run, on a copy of the data root, is all cache;
`--from` redoes a stage onward."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from mlflow.tracking import MlflowClient

from conf import load_settings
from conf.settings import PIPELINE_STAGES
from data_catalog import Catalog
from flows.reproduce import STATE_FILE, forget_from
from literesearcher.testing import free_port

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "pipeline" / "tiny.yaml"


def _demo(data_root: Path, port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    """The demo with `data_root` given RELATIVE to the working directory, as the default
    (`.literesearcher`) is: paths built from it must not be joined to it twice."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(OMP_NUM_THREADS="1", MLFLOW_ENABLE_ASYNC_LOGGING="false")
    cmd = [sys.executable, "-m", "literesearcher.cli", "--profile", str(TINY),
           "--set", f"data_root={data_root.name}", "--set", f"env_service.port={port}",
           "demo", *extra]  # fmt: skip
    done = subprocess.run(cmd, cwd=data_root.parent, env=env, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert done.returncode == 0, f"demo failed:\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    return done


def _fresh(data_root: Path) -> dict[str, bool]:
    state = json.loads((data_root / "runs" / "demo" / STATE_FILE).read_text())
    return {stage: state["stages"][stage]["fresh"] for stage in PIPELINE_STAGES}


@pytest.mark.slow
def test_demo_runs_end_to_end_then_from_cache_then_from_a_stage(tmp_path: Path):
    data_root = tmp_path / "data"
    port = free_port()

    first = _demo(data_root, port)
    assert _fresh(data_root) == dict.fromkeys(PIPELINE_STAGES, True)
    out = first.stdout + first.stderr
    for row in ("sft", "stage1", "stage2", "guess"):
        assert f"\n{row} " in out, out[-3000:]
    assert "MLflow UI: .venv/bin/mlflow ui --backend-store-uri sqlite:///" in out

    # The teacher also solved the other world's tasks (`pipeline.teacher_worlds: 1`): its
    # world and tasks, its trajectories, and the merged SFT data the SFT stage trained on.
    state = json.loads((data_root / "runs" / "demo" / STATE_FILE).read_text())
    teacher = [name for name, _ in state["stages"]["teacher"]["created"]]
    assert sorted(teacher) == ["sft_data"] * 3 + ["tasks_filtered", "tasks_raw", "world"]
    catalog = Catalog(data_root / "catalog")
    merged = max(catalog.versions("sft_data"), key=lambda m: len(m.inputs))
    assert len(merged.stats["parts"]) == 2 and merged.rows == sum(merged.stats["parts"].values())

    # MLflow holds the lineage: per-step training metrics tagged with curriculum and stage,
    # and one eval run per checkpoint.
    client = MlflowClient(f"sqlite:///{data_root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("literesearcher")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    stage_runs = {r.data.tags.get("stage") for r in runs
                  if r.data.tags.get("curriculum") == "demo" and "train/reward" in r.data.metrics}  # fmt: skip
    assert {"stage1", "stage2"} <= stage_runs
    evaluated = {
        r.data.tags.get("stage") for r in runs if "eval/heldout/pass_at_1" in r.data.metrics
    }
    assert {"sft", "stage1", "stage2"} <= evaluated

    # A copy of the data root elsewhere (mtimes kept, as `cp -a` does) is all cache too: no
    # version's key holds an absolute path inside the data root (`Settings.portable`).
    moved = tmp_path / "moved"
    shutil.copytree(data_root, moved)
    _demo(moved, port)  # everything cached: no stage writes anything
    assert _fresh(moved) == dict.fromkeys(PIPELINE_STAGES, False)
    assert sorted(p.name for p in (moved / "catalog" / "checkpoints").iterdir()) == sorted(
        p.name for p in (data_root / "catalog" / "checkpoints").iterdir()
    )

    _demo(moved, port, "--from", "rl")  # the RL stages and the eval are redone
    fresh = _fresh(moved)
    assert fresh == {s: s in ("rl", "eval") for s in PIPELINE_STAGES}


def test_forget_from_removes_only_later_stages(tmp_path: Path):
    settings = load_settings(str(TINY), [f"data_root={tmp_path}"])
    catalog = Catalog.from_settings(settings)
    made = {}
    for stage, dataset in (("synthesize", "sft_data"), ("filter", "sft_data")):
        with catalog.create(dataset, params={"stage": stage}, code_version="t") as w:
            w.write_table(pa.table({"task_id": ["a"]}))
        assert w.manifest is not None
        made[stage] = w.manifest
    work = tmp_path / "checkpoints" / "stage1-x"
    work.mkdir(parents=True)
    state = {"stages": {
        "synthesize": {"created": [["sft_data", made["synthesize"].version]], "work_dirs": []},
        "filter": {"created": [["sft_data", made["filter"].version]], "work_dirs": []},
        "rl": {"created": [], "work_dirs": [str(work)]},
    }}  # fmt: skip
    path = tmp_path / "runs" / "demo" / STATE_FILE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(state))

    removed = forget_from(settings, "demo", "filter")
    assert removed == [f"sft_data@{made['filter'].version}", str(work)]
    assert catalog.manifest("sft_data", made["synthesize"].version, missing_ok=True)
    assert catalog.manifest("sft_data", made["filter"].version, missing_ok=True) is None
    assert not work.exists()
    assert set(json.loads(path.read_text())["stages"]) == {"synthesize"}
    with pytest.raises(ValueError, match="unknown stage"):
        forget_from(settings, "demo", "nope")


def test_summary_reports_avg_at_k_and_each_capability(tmp_path: Path):
    from flows.reproduce import format_summary, summary_rows

    def group(questions: int, pass1: float, avg: float) -> dict[str, float]:
        return {"questions": questions, "pass_at_1": pass1, "avg_at_4": avg,
                "mean_tool_calls": 2.0, "mean_turns": 3.0}  # fmt: skip

    evals = {
        "sft": {"metrics": {"heldout/all": group(10, 0.1, 0.15),
                            "heldout/enumeration": group(4, 0.0, 0.0625),
                            "heldout/direct_retrieval": group(6, 1 / 6, 0.2083)}},
        "stage1": {"metrics": {"heldout/all": group(10, 0.2, 0.25),
                               "heldout/enumeration": group(4, 0.25, 0.25),
                               "heldout/direct_retrieval": group(6, 1 / 6, 0.25)}},
    }  # fmt: skip
    rows = summary_rows(evals, {"stage1": {"steps": 10, "seconds": 12.5}})
    assert rows[1]["avg_at_k"] == 0.25 and rows[1]["train_steps"] == 10
    assert rows[0]["by_capability"] == {
        "direct_retrieval": (6, 1 / 6, 0.2083),
        "enumeration": (4, 0.0, 0.0625),
    }
    settings = load_settings(
        str(TINY), [f"data_root={tmp_path}", "pipeline.eval_k=4", "rl.temperature=0.6"]
    )
    text = format_summary(rows, {"eval": 1.0}, settings)
    assert "temperature 0.6" in text and "4 sample(s) per question" in text
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("avg@4 by capability"))
    assert lines[header + 1].split() == ["checkpoint", "direct_retrieval", "enumeration"]
    assert lines[header + 2].split() == ["(6)", "(4)"]
    assert lines[header + 3].split() == ["sft", "0.208", "0.062"]
    assert lines[header + 4].split() == ["stage1", "0.250", "0.250"]
    assert next(line for line in lines if line.startswith("stage1 ")).split()[:3] == [
        "stage1",
        "0.200",
        "0.250",
    ]
    greedy = load_settings(str(TINY), [f"data_root={tmp_path}", "rl.temperature=0"])
    text = format_summary(rows, {"eval": 1.0}, greedy)
    assert "(greedy, 1 sample(s) per question)" in text and "pass@1 by capability" in text


def test_constant_guess_is_the_commonest_answers_score(tmp_path: Path):
    import pyarrow.parquet as pq

    from flows.reproduce import constant_guess, format_summary, summary_rows
    from tasks.synthesis.schema import TaskRecord, to_table

    def task(i: int, capability: str, answer: str) -> TaskRecord:
        return TaskRecord(id=f"t{i}", question=f"q{i}", answers=[answer],
                          capability=capability, evidence_urls=["u"], mask_urls=[],
                          language="en", time_anchor="2025-01-01", source="s", generator="g",
                          created="2025-01-01T00:00:00+00:00")  # fmt: skip

    answers = [("enumeration", "2"), ("enumeration", "2"), ("enumeration", "3"),
               ("enumeration", "4"), ("direct_retrieval", "a"), ("direct_retrieval", "b")]  # fmt: skip
    path = tmp_path / "heldout.parquet"
    pq.write_table(to_table([task(i, c, a) for i, (c, a) in enumerate(answers)]), path)
    guess = constant_guess(str(path))
    # "2" to all four enumeration questions: 2 right; any one name to the two others: 1 right
    assert guess == {"enumeration": 0.5, "direct_retrieval": 0.5, "all": 0.5}

    evals = {"sft": {"metrics": {
        "heldout/all": {"questions": 6, "pass_at_1": 0.1},
        "heldout/enumeration": {"questions": 4, "pass_at_1": 0.0},
        "heldout/direct_retrieval": {"questions": 2, "pass_at_1": 0.5},
    }}}  # fmt: skip
    settings = load_settings(str(TINY), [f"data_root={tmp_path}", "rl.temperature=0"])
    lines = format_summary(summary_rows(evals, {}), {"eval": 1.0}, settings, guess).splitlines()
    guess_rows = [line.split() for line in lines if line.startswith("guess ")]
    assert guess_rows[0][:3] == ["guess", "0.500", "0.500"]
    assert guess_rows[1] == ["guess", "0.500", "0.500"]  # direct_retrieval, enumeration


def test_teacher_options_reach_the_teacher(tmp_path: Path):
    """`pipeline.teacher_quotes` / `teacher_answers_as_page` / `teacher_grounded` and the
    service's top_k and the policy's date make the teacher's config (and so its data's key)."""
    from flows.reproduce import teacher_config
    from rl.teacher import QUOTE_TEMPLATE, TeacherConfig

    plain = teacher_config(load_settings("local", [f"data_root={tmp_path}", "rl.date=2025-03-04"]))
    assert plain == TeacherConfig(date="2025-03-04", top_k=plain.top_k)
    reading = teacher_config(load_settings("demo", [
        f"data_root={tmp_path}", "pipeline.teacher_quotes=true",
        "pipeline.teacher_answers_as_page=true"]))  # fmt: skip
    assert reading.quote == QUOTE_TEMPLATE and reading.answer_as_page and reading.require_grounded
    assert (reading.date, reading.top_k) == ("2025-01-01", 3)


def test_the_teacher_can_leave_the_probed_tasks_to_rl(tmp_path: Path):
    """`pipeline.teacher_skips_probed`: the teacher demonstrates only training tasks the
    difficulty probe does not roll out, so RL's tasks are ones SFT never showed."""
    from flows.reproduce import teacher_pool
    from tasks.curriculum.difficulty import probe_subset
    from tasks.synthesis.schema import TaskRecord

    pool = [TaskRecord(id=f"t{i:03d}", question=f"q{i}?", answers=["a"], capability="enumeration",
                       source="virtual_world", generator="ground_truth", created="2026-01-01")
            for i in range(40)]  # fmt: skip

    def settings(*extra: str):
        return load_settings("local", [f"data_root={tmp_path}", *extra])

    assert teacher_pool(settings(), pool) == pool  # the default: every training task
    skip = settings("pipeline.teacher_skips_probed=true", "curriculum.difficulty.max_tasks=25")
    taught = teacher_pool(skip, pool)
    probed = probe_subset([t.id for t in pool], 25, skip.curriculum.difficulty.seed)
    assert len(taught) == 15 and not {t.id for t in taught} & probed
    limited = settings("pipeline.teacher_skips_probed=true", "curriculum.difficulty.max_tasks=25",
                       "pipeline.teacher_tasks=4")  # fmt: skip
    assert teacher_pool(limited, pool) == taught[:4]
    with pytest.raises(ValueError, match="none is left for the teacher"):
        teacher_pool(settings("pipeline.teacher_skips_probed=true",
                              "curriculum.difficulty.max_tasks=null"), pool)  # fmt: skip
    # The probe takes only the capabilities the RL stages select: the others stay the teacher's.
    mixed = [t.model_copy(update={"capability": "aggregation"}) if i % 2 else t
             for i, t in enumerate(pool)]  # fmt: skip
    aggregation = settings("pipeline.teacher_skips_probed=true",
                           "curriculum.difficulty.max_tasks=null",
                           "curriculum.stages=[{name: s1, select: {capabilities: [aggregation]}}]")  # fmt: skip
    assert teacher_pool(aggregation, mixed) == [t for t in mixed if t.capability == "enumeration"]
