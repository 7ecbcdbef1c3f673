"""The curriculum flow end to end on the local trainer (tiny policy, real env_service, judge,
catalog, Prefect and MLflow), and on OpenRLHF's boundary: a live local Ray job whose entrypoint
stands in for `train_ppo_ray`/`train_sft` and writes what they write.

Stage data is written with the catalog, the way difficulty filtering and the teacher write it.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from mlflow import MlflowClient

import flows.train_curriculum as tc
from conf import load_settings
from data_catalog import Catalog, Manifest
from rl.episode import AgentTask
from rl.openrlhf.prompt_data import PromptRow
from rl.trajectory import Trajectory, trajectories_to_table
from tasks.curriculum.schema import STAGE_TASK_SCHEMA
from tasks.evaluation.compare import compare

# ---- inputs -------------------------------------------------------------------------------


def stage_tasks(source_url: str) -> list[AgentTask]:
    return [
        AgentTask(id="hubble", question="When was Edwin Hubble born?", answers=["1889"],
                  mask_urls=[source_url]),
        AgentTask(id="curie", question="How many Nobel Prizes did Curie win?", answers=["two"]),
    ]  # fmt: skip


def write_stage_data(catalog: Catalog, stage: str, tasks: list[AgentTask]) -> Manifest:
    rows = [
        {**t.model_dump(), "capability": "direct_retrieval", "k": 4, "n_correct": 2,
         "pass_rate": 0.5, "mean_tokens": 100.0, "token_bin": "<16K", "bucket": "mid"}
        for t in tasks
    ]  # fmt: skip
    with catalog.create("curriculum_stage", params={"stage": stage, "n": len(tasks)}) as w:
        w.write_table(pa.Table.from_pylist(rows, schema=STAGE_TASK_SCHEMA), "tasks.parquet")
        with (w.path / "prompts.jsonl").open("w", encoding="utf-8") as fh:
            for t in tasks:
                fh.write(PromptRow.from_task(t).model_dump_json() + "\n")
    assert w.manifest is not None
    return w.manifest


def write_sft_data(catalog: Catalog, n: int = 4) -> Manifest:
    def messages(i: int) -> list[Any]:
        call = '<tool_call>{"name": "search", "arguments": {"query": ["item"]}}</tool_call>'
        return [
            {"role": "system", "content": "Answer the question."},
            {"role": "user", "content": f"what is item {i}?"},
            {"role": "assistant", "content": call},
            {"role": "tool", "content": f"result {i}: the item is blue"},
            {"role": "assistant", "content": "<think>blue</think><answer>blue</answer>"},
        ]

    trajectories = [
        Trajectory(task_id=f"t{i}", sample_idx=0, question=f"what is item {i}?",
                   gold_answers=["blue"], policy="oracle-teacher", date="2025-03-01",
                   correct=True, reward=1.0, messages=messages(i))
        for i in range(n)
    ]  # fmt: skip
    with catalog.create("sft_data", params={"n": n}) as w:
        w.write_table(trajectories_to_table(trajectories), "trajectories.parquet")
    assert w.manifest is not None
    return w.manifest


STAGE = ("max_turns: 2, max_tokens_per_turn: 16, max_prompt_tokens: 2048, "
         "max_response_tokens: 256, lr: 1.0e-3, rollout_batch_size: 2, n_samples_per_prompt: 2, "
         "train_batch_size: 4")  # fmt: skip


def write_profile(path: Path, *, total_steps: int) -> str:
    """The local profile with stages small enough for a CPU test: 2 prompts x 2 samples, 2
    turns of 16 tokens; SFT one epoch of 2 steps."""
    path.write_text(
        f"""extends: local
curriculum:
  sft: {{enabled: true, epochs: 1, batch_size: 2, micro_batch_size: 2, lr: 1.0e-3,
        max_len: 1024}}
  local: {{device: cpu, total_steps: {total_steps}, save_every: 1, micro_batch_size: 4}}
  stages:
    - {{name: stage1, {STAGE}}}
    - {{name: stage2, temperature: 1.0, {STAGE}}}
""",
        encoding="utf-8",
    )
    return str(path)


def prepare(tmp_path: Path, local_web: Any, tiny_policy: Path, total_steps: int) -> tuple:
    profile = write_profile(tmp_path / "profile.yaml", total_steps=total_steps)
    overrides = [
        f"data_root={tmp_path / 'data'}",
        f"env_service.url={local_web.url}",
        'rl.date="2025-03-01"',
        f"llm.local_policy_path={tiny_policy}",
    ]
    settings = load_settings(profile, overrides)
    catalog = Catalog.from_settings(settings)
    tasks = stage_tasks(local_web.source)
    data = {s: write_stage_data(catalog, s, tasks) for s in ("stage1", "stage2")}
    data["sft"] = write_sft_data(catalog)
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri())
    return profile, overrides, settings, catalog, data, client


def stage_runs(client: MlflowClient, settings: Any, stage: str) -> list[Any]:
    """The stage's MLflow runs, oldest first."""
    exp = client.get_experiment_by_name(settings.mlflow.experiment)
    runs = client.search_runs([exp.experiment_id], f"tags.stage = '{stage}'")
    return sorted(runs, key=lambda r: r.info.start_time)


def reward_steps(client: MlflowClient, run: Any) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run.info.run_id, "train/reward"))


# ---- local trainer ------------------------------------------------------------------------


def test_curriculum_chains_stages_with_global_steps_lineage_and_registry(
    tiny_policy: Path, tmp_path: Path, local_web: Any, prefect_server: None
) -> None:
    profile, overrides, settings, catalog, data, client = prepare(
        tmp_path, local_web, tiny_policy, total_steps=2
    )
    result = tc.train_curriculum(profile=profile, overrides=[*overrides,
                                 "curriculum.keep_work_dirs=true"], name="c1")  # fmt: skip

    assert list(result["checkpoints"]) == ["sft", "stage1", "stage2"]
    ck = {s: catalog.manifest("checkpoints", v) for s, v in result["checkpoints"].items()}
    # Lineage: each stage reads its data and the previous stage's checkpoint.
    assert {r.version for r in ck["sft"].inputs} == {data["sft"].version}
    assert {r.version for r in ck["stage1"].inputs} == {data["stage1"].version, ck["sft"].version}
    assert {r.version for r in ck["stage2"].inputs} == {data["stage2"].version,
                                                        ck["stage1"].version}  # fmt: skip
    for stage, m in ck.items():
        assert m.params["curriculum"] == "c1" and m.params["stage"] == stage
        folder = Path(result["model_dirs"][stage])
        assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
        assert not (folder / "optimizer.pt").exists()  # resume state stays in the work dir
    assert result["final"]["checkpoint"] == ck["stage2"].version
    assert [ck[s].stats["steps"] for s in ck] == [2, 2, 2]
    # Stage 2 trained from stage 1's model: its first checkpoint records that start.
    state = json.loads((Path(ck["stage2"].stats["work_dir"]) / "checkpoints" / "step-000002"
                        / "trainer_state.json").read_text())  # fmt: skip
    assert state["config"]["init_model_path"] == result["model_dirs"]["stage1"]

    # MLflow: per-step train/* metrics at global steps (SFT 1-2, stage1 3-4, stage2 5-6).
    sft_run = stage_runs(client, settings, "sft")[-1]
    loss = client.get_metric_history(sft_run.info.run_id, "train/loss")
    assert sorted(m.step for m in loss) == [1, 2]
    run1, run2 = (
        stage_runs(client, settings, "stage1")[-1],
        stage_runs(client, settings, "stage2")[-1],
    )
    assert reward_steps(client, run1) == [3, 4] and reward_steps(client, run2) == [5, 6]
    for key in ("train/pass_rate", "train/turns", "train/tool_calls", "train/loss", "train/kl",
                "train/step_s"):  # fmt: skip
        assert key in run2.data.metrics, key
    assert run2.data.tags["curriculum"] == "c1" and run2.data.params["catalog_version"] == (
        ck["stage2"].version
    )
    # `literesearcher compare` reads the same metric and tags.
    rows = {(r.curriculum, r.stage): r for r in compare(client, settings.mlflow.experiment).rows}
    assert rows[("c1", "stage2")].values["train/reward"] == run2.data.metrics["train/reward"]
    assert result["stages"]["stage2"]["final_reward"] == pytest.approx(
        run2.data.metrics["train/reward"]
    )

    # Registry: one model version per stage, tagged for the nightly eval, loadable as HF files.
    versions = client.search_model_versions(f"name = '{settings.mlflow.registered_model}'")
    tags = sorted((v.tags["stage"], v.tags["catalog_version"], v.tags["curriculum"])
                  for v in versions)  # fmt: skip
    assert tags == sorted((s, m.version, "c1") for s, m in ck.items())
    newest = max(versions, key=lambda v: int(v.version))
    assert newest.source == f"runs:/{run2.info.run_id}/checkpoint"
    files = {f.path for f in client.list_artifacts(run2.info.run_id, "checkpoint")}
    assert "checkpoint/config.json" in files and "checkpoint/model.safetensors" in files

    # Re-running trains nothing: every stage is skipped, nothing new is registered.
    again = tc.train_curriculum(profile=profile, overrides=overrides, name="c1")
    assert again["checkpoints"] == result["checkpoints"]
    assert all(info["skipped"] for info in again["stages"].values())
    assert len(client.search_model_versions(f"name = '{settings.mlflow.registered_model}'")) == 3
    assert reward_steps(client, stage_runs(client, settings, "stage2")[-1]) == []
    # A run of stage 2 alone from stage 1's checkpoint finds it and keeps its global steps.
    alone = tc.train_curriculum(profile=profile, overrides=overrides, name="c1",
                                stages=["stage2"], base_model=ck["stage1"].version)  # fmt: skip
    assert alone["checkpoints"] == {"stage2": ck["stage2"].version}
    assert alone["stages"]["stage2"]["step_offset"] == 4


def test_failed_stage_resumes_from_its_checkpoint_and_finished_stages_are_skipped(
    tiny_policy: Path,
    tmp_path: Path,
    local_web: Any,
    prefect_server: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    profile, overrides, settings, catalog, _data, client = prepare(
        tmp_path, local_web, tiny_policy, total_steps=3
    )
    real_logger = tc.metrics_logger
    failures: dict[int, int] = {}  # stage1 step -> failures still to inject there

    def failing_logger(tracking: Any) -> Any:
        log = real_logger(tracking)
        stage = client.get_run(tracking.run_id).data.tags["stage"]

        def on_metrics(step: int, metrics: dict[str, float]) -> None:
            if stage == "stage1" and failures.get(step, 0) > 0:
                failures[step] -= 1
                raise RuntimeError(f"injected failure at stage1 step {step}")
            log(step, metrics)

        return on_metrics

    monkeypatch.setattr(tc, "metrics_logger", failing_logger)
    stages = ["sft", "stage1"]

    # Run 1, no retries: SFT finishes, stage1 breaks at step 2 (step 1 is checkpointed).
    failures[2] = 1
    with pytest.raises(RuntimeError, match="injected failure at stage1 step 2"):
        tc.train_curriculum(profile=profile, overrides=[*overrides,
                            "curriculum.stage_retries=0"], stages=stages)  # fmt: skip
    sft_versions = catalog.versions("checkpoints")
    assert [m.params["stage"] for m in sft_versions] == ["sft"]
    first = stage_runs(client, settings, "stage1")
    assert len(first) == 1 and first[0].info.status == "FAILED"
    assert reward_steps(client, first[0]) == [2 + 1]  # global step: SFT took 2

    # Run 2, one Prefect retry: SFT is skipped; stage1 resumes at step 2, breaks at step 3,
    # and the retry resumes at step 3. No step is trained twice.
    failures[3] = 1
    result = tc.train_curriculum(profile=profile, overrides=[*overrides,
                                 "curriculum.stage_retries=1"], stages=stages)  # fmt: skip
    assert result["stages"]["sft"]["skipped"] and not result["stages"]["stage1"]["skipped"]
    assert result["checkpoints"]["sft"] == sft_versions[0].version
    assert failures == {2: 0, 3: 0}
    second = stage_runs(client, settings, "stage1")[-1]
    assert second.info.status == "FINISHED"
    assert reward_steps(client, second) == [2 + 2, 2 + 3]
    ck = catalog.manifest("checkpoints", result["checkpoints"]["stage1"])
    assert ck.stats["steps"] == 3
    # Committed stages' work dirs (intermediate checkpoints, optimizer state) are removed; the
    # committed models, hard-linked out of them, stay whole.
    from transformers import AutoModelForCausalLM

    assert Path(sft_versions[0].stats["work_dir"]).parent.is_dir()
    assert not Path(sft_versions[0].stats["work_dir"]).exists()
    assert not Path(ck.stats["work_dir"]).exists()
    for stage in stages:
        model = AutoModelForCausalLM.from_pretrained(result["model_dirs"][stage])
        assert model.config.num_hidden_layers == 2
    assert len(stage_runs(client, settings, "sft")) == 2  # a run per flow run, the 2nd skipped
    assert stage_runs(client, settings, "sft")[-1].data.tags.get("skipped") == "true"


def test_an_empty_stage_fails_clearly_or_is_skipped_when_asked(
    tiny_policy: Path, tmp_path: Path, local_web: Any, prefect_server: None
) -> None:
    profile, overrides, _settings, catalog, _data, _client = prepare(
        tmp_path, local_web, tiny_policy, total_steps=1
    )
    empty = write_stage_data(catalog, "stage1", [])
    assert empty.rows == 0
    curriculum = {"stage1": empty.version}
    with pytest.raises(ValueError, match="holds no tasks"):
        tc.train_curriculum(profile=profile, overrides=[*overrides, "curriculum.stage_retries=0"],
                            stages=["stage1"], curriculum=curriculum, base_model=str(tiny_policy))  # fmt: skip
    assert catalog.versions("checkpoints") == []

    result = tc.train_curriculum(
        profile=profile, overrides=[*overrides, "curriculum.skip_empty_stages=true"],
        stages=["stage1"], curriculum=curriculum, base_model=str(tiny_policy),
    )  # fmt: skip
    ck = catalog.manifest("checkpoints", result["checkpoints"]["stage1"])
    assert ck is not None and ck.stats["steps"] == 0
    assert ck.stats["final_metrics"] == {"skipped_empty": 1.0}
    # The stage's model is the one it started from, byte for byte.
    committed = Path(result["model_dirs"]["stage1"]) / "model.safetensors"
    assert committed.read_bytes() == (tiny_policy / "model.safetensors").read_bytes()


def test_stage_order_and_inputs_are_checked_with_clear_errors(
    tiny_policy: Path, tmp_path: Path
) -> None:
    settings = load_settings("local", [f"data_root={tmp_path}", "curriculum.sft.enabled=true"])
    assert tc.stage_order(settings, None) == ["sft", "stage1", "stage2"]
    assert tc.stage_order(settings, ["stage2"]) == ["stage2"]
    with pytest.raises(ValueError, match="unknown stages"):
        tc.stage_order(settings, ["stage9"])
    with pytest.raises(ValueError, match="curriculum order"):
        tc.stage_order(settings, ["stage2", "stage1"])
    catalog = Catalog.from_settings(settings)
    with pytest.raises(LookupError, match="no curriculum_stage version"):
        tc.stage_data(catalog, "stage1", None)
    with pytest.raises(LookupError, match="no sft_data version 'nope'"):
        tc.stage_data(catalog, "sft", "nope")
    with pytest.raises(FileNotFoundError, match="models/tiny-policy"):  # the profile's default
        tc.resolve_base(catalog, settings, None)
    unset = settings.model_copy(update={"llm": settings.llm.model_copy(
        update={"local_policy_path": None})})  # fmt: skip
    with pytest.raises(ValueError, match="no base model"):
        tc.resolve_base(catalog, unset, None)
    with pytest.raises(FileNotFoundError, match="neither a checkpoints version"):
        tc.resolve_base(catalog, settings, str(tmp_path))
    assert tc.resolve_base(catalog, settings, str(tiny_policy)) == (None, str(tiny_policy))


def test_train_command_prints_a_stage_table_and_rejects_unknown_stages(
    tiny_policy: Path, tmp_path: Path, prefect_server: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from literesearcher.cli import main

    profile = write_profile(tmp_path / "profile.yaml", total_steps=2)
    base = ["--profile", profile, "--set", f"data_root={tmp_path / 'data'}"]
    catalog = Catalog.from_settings(load_settings(profile, [f"data_root={tmp_path / 'data'}"]))
    sft = write_sft_data(catalog)
    argv = [*base, "train", "--stages", "sft", "--name", "cli", "--base-model", str(tiny_policy)]
    assert main([*argv, "--sft-data", sft.version]) == 0
    out = capsys.readouterr().out
    version = catalog.latest("checkpoints")
    assert version is not None and version.params["curriculum"] == "cli"
    assert "sft" in out and version.version in out and "final model:" in out
    assert main([*base, "train", "--stages", "stage9"]) == 2
    assert "unknown stages" in capsys.readouterr().out


# ---- OpenRLHF on Ray ----------------------------------------------------------------------

STAND_IN = '''#!{python}
"""Stands in for `python -m openrlhf.cli.train_ppo_ray` and `deepspeed ... train_sft`: reads
the flags OpenRLHF reads and writes what it writes (TensorBoard scalars, the HF model)."""
import argparse, json, os, shutil, sys
from pathlib import Path

argv = sys.argv[1:]
p = argparse.ArgumentParser()
p.add_argument("--actor.model_name_or_path", "--model.model_name_or_path", dest="model")
p.add_argument("--data.prompt_dataset", "--data.dataset", dest="data")
p.add_argument("--ckpt.output_dir", dest="hf")
p.add_argument("--logger.tensorboard_dir", dest="tb")
p.add_argument("--logger.wandb.run_name", dest="run")
p.add_argument("--ckpt.load_enable", dest="resume", action="store_true")
args, _ = p.parse_known_args(argv)
sft = "openrlhf.cli.train_sft" in argv
if sft:
    import pyarrow.parquet as pq
    rows = pq.read_metadata(args.data).num_rows
else:
    rows = sum(1 for line in open(args.data) if line.strip())
from torch.utils.tensorboard import SummaryWriter
writer = SummaryWriter(os.path.join(args.tb, args.run))
for step in (1, 2, 3):
    writer.add_scalar("train/gpt_loss" if sft else "train/reward", rows / 10 + step / 100, step)
writer.close()
shutil.copytree(args.model, args.hf, dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("_*.json", "launched_with.json"))
launched = {{"module": "train_sft" if sft else "train_ppo_ray", "model": args.model,
            "data": args.data, "rows": rows, "resume": args.resume,
            "env_url": os.environ.get("LITERESEARCHER_ENV_URL")}}
(Path(args.hf) / "launched_with.json").write_text(json.dumps(launched))
print("stand-in trained", args.run)
'''


@pytest.mark.slow
def test_openrlhf_curriculum_runs_each_stage_as_a_ray_job(
    tiny_policy: Path, tmp_path: Path, ray_dashboard: str, prefect_server: None
) -> None:
    script = tmp_path / "openrlhf-stand-in"
    script.write_text(STAND_IN.format(python=sys.executable), encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    profile = write_profile(tmp_path / "profile.yaml", total_steps=2)
    overrides = [
        f"data_root={tmp_path / 'data'}",
        f"llm.local_policy_path={tiny_policy}",
        "env_service.url=http://env-service.test:8765",
        "curriculum.trainer=openrlhf",
        f"curriculum.ray_address={ray_dashboard}",
        f"curriculum.python={script}",
        f"curriculum.deepspeed={script}",
        "curriculum.poll_s=0.5",
    ]
    settings = load_settings(profile, overrides)
    catalog = Catalog.from_settings(settings)
    tasks = stage_tasks("https://example.org/wiki/hubble")
    data = {s: write_stage_data(catalog, s, tasks[: 1 if s == "stage1" else 2])
            for s in ("stage1", "stage2")}  # fmt: skip
    data["sft"] = write_sft_data(catalog, n=4)

    result = tc.train_curriculum(profile=profile, overrides=overrides, name="ray")

    dirs = result["model_dirs"]
    launched = {
        s: json.loads((Path(d) / "launched_with.json").read_text()) for s, d in dirs.items()
    }
    assert launched["sft"]["module"] == "train_sft" and launched["sft"]["rows"] == 4
    assert launched["sft"]["model"] == str(tiny_policy)
    assert launched["stage1"]["module"] == "train_ppo_ray"
    # Each stage starts from the previous stage's model and reads its own prompt file.
    assert (
        launched["stage1"]["model"] == dirs["sft"] and launched["stage2"]["model"] == dirs["stage1"]
    )
    assert launched["stage1"]["data"] == str(catalog.path(data["stage1"]) / "prompts.jsonl")
    assert (launched["stage1"]["rows"], launched["stage2"]["rows"]) == (1, 2)
    assert all(v["resume"] for v in launched.values())
    assert launched["stage2"]["env_url"] == "http://env-service.test:8765"
    for d in dirs.values():
        assert (Path(d) / "config.json").is_file() and (Path(d) / "model.safetensors").is_file()

    # TensorBoard scalars reached MLflow at global steps (SFT 1-3, stage1 4-6, stage2 7-9).
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri())
    sft_run = stage_runs(client, settings, "sft")[-1]
    assert sorted(m.step for m in client.get_metric_history(sft_run.info.run_id,
                                                            "train/gpt_loss")) == [1, 2, 3]  # fmt: skip
    run1, run2 = (
        stage_runs(client, settings, "stage1")[-1],
        stage_runs(client, settings, "stage2")[-1],
    )
    assert reward_steps(client, run1) == [4, 5, 6] and reward_steps(client, run2) == [7, 8, 9]
    assert run2.data.metrics["train/reward"] == pytest.approx(0.23)
    assert result["stages"]["stage2"] == {
        **result["stages"]["stage2"], "steps": 3, "step_offset": 6, "skipped": False,
    }  # fmt: skip
    assert result["stages"]["stage2"]["final_reward"] == pytest.approx(0.23)
    ck = catalog.manifest("checkpoints", result["final"]["checkpoint"])
    assert ck.params["trainer"] == "openrlhf" and ck.params["stage"] == "stage2"
    versions = client.search_model_versions(f"name = '{settings.mlflow.registered_model}'")
    assert sorted(v.tags["stage"] for v in versions) == ["sft", "stage1", "stage2"]


def test_sft_code_version_covers_the_sft_loop_not_grpo(monkeypatch: pytest.MonkeyPatch) -> None:
    """A change to GRPO code (local_grpo, rollouts, grpo) must not retrain the SFT cold start;
    both stages' digests cover the shared sequence and checkpoint code."""
    from rl.trainer import checkpoints, grpo, local_grpo, rollouts, sequences, sft

    seen: dict[str, list[Any]] = {}

    def record(*objects: Any) -> str:
        key = f"v{len(seen)}"
        seen[key] = list(objects)
        return key

    monkeypatch.setattr(tc, "code_version", record)
    sft_objects = seen[tc.trainer_code_version("local", tc.SFT)]
    grpo_objects = seen[tc.trainer_code_version("local", "stage1")]
    for module in (local_grpo, grpo, rollouts):
        assert module not in sft_objects and module in grpo_objects
    assert sft in sft_objects and sft not in grpo_objects
    for module in (checkpoints, sequences):
        assert module in sft_objects and module in grpo_objects


def test_sft_key_ignores_grpo_only_local_fields(tiny_policy: Path, tmp_path: Path) -> None:
    """An RL-only knob (ppo_epochs, dynamic_filtering_max_rounds) must not retrain the SFT cold
    start; a field the SFT loop reads (weight_decay) does; how often a loop saves and how many
    saves it keeps retrain neither (the weights are the same)."""
    from datetime import UTC, datetime

    data = Manifest(name="sft_data", version="v1", key="k", content_digest="d",
                    created=datetime.now(UTC))  # fmt: skip

    def keys(*overrides: str) -> tuple[str, str]:
        settings = load_settings("local", [f"data_root={tmp_path}", *overrides])
        sft = tc.stage_spec(settings, tc.SFT, data, None, str(tiny_policy), "c").key
        grpo = tc.stage_spec(settings, "stage1", data, None, str(tiny_policy), "c").key
        return sft, grpo

    sft, grpo = keys()
    sft_rl, grpo_rl = keys("curriculum.local.ppo_epochs=3",
                           "curriculum.local.dynamic_filtering_max_rounds=2")  # fmt: skip
    assert sft_rl == sft and grpo_rl != grpo
    assert keys("curriculum.local.weight_decay=0.1")[0] != sft
    assert keys("curriculum.local.save_every=3", "curriculum.local.keep_last=5") == (sft, grpo)


def test_rl_stage_key_ignores_the_evaluation_sampling(tiny_policy: Path, tmp_path: Path) -> None:
    """The held-out evaluation's temperature / top_p / k (rl.*) must not retrain an RL stage,
    which samples at its own; an rl field the episodes read (max_malformed_turns) does."""
    from datetime import UTC, datetime

    data = Manifest(name="curriculum_stage", version="v1", key="k", content_digest="d",
                    created=datetime.now(UTC))  # fmt: skip

    def key(*overrides: str) -> str:
        settings = load_settings("local", [f"data_root={tmp_path}", *overrides])
        return tc.stage_spec(settings, "stage1", data, None, str(tiny_policy), "c").key

    plain = key()
    assert key("rl.temperature=0", "rl.top_p=0.95", "rl.k=4", "rl.part_size=16") == plain
    assert key("rl.max_malformed_turns=5") != plain
    assert key("rl.date=2024-01-01") != plain


def test_stage_key_names_a_base_model_inside_data_root_relative_to_it(
    tiny_policy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copied data root keeps its SFT checkpoint: the base model's path in the key is relative
    to data_root; a model outside it keeps its absolute path (another dir, another key)."""
    import shutil
    from datetime import UTC, datetime

    data = Manifest(name="sft_data", version="v1", key="k", content_digest="d",
                    created=datetime.now(UTC))  # fmt: skip

    def key(root: Path, model: Path) -> str:
        settings = load_settings("local", [f"data_root={root}"])
        return tc.stage_spec(settings, tc.SFT, data, None, str(model), "c").key

    for root in (tmp_path / "a", tmp_path / "b"):
        shutil.copytree(tiny_policy, root / "models" / "policy")
    a, b = (key(tmp_path / r, tmp_path / r / "models" / "policy") for r in ("a", "b"))
    assert a == b
    monkeypatch.chdir(tmp_path)  # a relative data_root, the model path relative to the cwd
    assert key(Path("a"), Path("a") / "models" / "policy") == a
    outside = tmp_path / "other-policy"
    shutil.copytree(tiny_policy, outside)
    assert key(tmp_path / "a", outside) != key(tmp_path / "a", tiny_policy)
