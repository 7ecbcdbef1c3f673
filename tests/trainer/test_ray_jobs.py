"""The Ray job submission as data: the entrypoint is the exact OpenRLHF command, the runtime env
carries the env_service URL and stage limits, and Ray's own `ray job submit` CLI accepts it.
Then one live run: a local Ray instance with its dashboard (the Job Submission API), a job
that reads the env var from the runtime env, and a failing job (about 40 s on 2 cores).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from ray.dashboard.modules.job.cli import submit as ray_job_submit_cli

from conf import load_settings
from rl.openrlhf.jobs import RayJobFailed, job_spec, submit_and_wait
from rl.openrlhf.launcher import (
    ENV_URL_VAR,
    MAX_TURNS_VAR,
    StagePaths,
    build_train_ppo_ray_command,
    stage_env_vars,
)


def _spec(tmp_path: Path):
    settings = load_settings("cluster")
    stage = settings.curriculum.stages[1]
    paths = StagePaths.for_stage(stage.name, str(tmp_path / "stage1" / "hf"), tmp_path)
    cmd = build_train_ppo_ray_command(
        stage, paths, prompt_dataset="/data/stage 2.jsonl", tensorboard_dir="/tb"
    )
    env = stage_env_vars(stage, settings.env_service.base_url())
    return cmd, job_spec(cmd, name=stage.name, env_vars=env, attempt="a1"), settings


def test_job_spec_carries_the_exact_command_and_the_env_url(tmp_path: Path) -> None:
    cmd, spec, settings = _spec(tmp_path)
    assert shlex.split(spec.entrypoint) == cmd  # the space in the dataset path survives
    env = spec.runtime_env["env_vars"]
    assert env[ENV_URL_VAR] == settings.env_service.base_url() == "http://env-service:8765"
    assert env[MAX_TURNS_VAR] == "60"
    assert spec.submission_id == "literesearcher-stage2-a1"
    assert spec.metadata == {"literesearcher_stage": "stage2"}
    again = job_spec(cmd, name="stage2", env_vars=env, attempt="a2")
    assert again.submission_id != spec.submission_id


def test_ray_job_submit_cli_accepts_the_submission(tmp_path: Path) -> None:
    cmd, spec, settings = _spec(tmp_path)
    argv = spec.cli(settings.curriculum.ray_address)
    assert argv[:3] == ["ray", "job", "submit"]
    ctx = ray_job_submit_cli.make_context("submit", argv[3:])
    assert ctx.params["address"] == "http://ray-head:8265"
    assert ctx.params["submission_id"] == spec.submission_id
    assert json.loads(ctx.params["runtime_env_json"]) == spec.runtime_env
    assert list(ctx.params["entrypoint"]) == cmd


def test_job_failure_names_the_job_and_status() -> None:
    err = RayJobFailed("literesearcher-stage1-a1", "FAILED", "OOM")
    assert "literesearcher-stage1-a1" in str(err) and "FAILED" in str(err) and "OOM" in str(err)


@pytest.mark.slow
def test_submit_and_wait_runs_a_real_ray_job(ray_dashboard: str) -> None:
    script = "import os; print('env url is', os.environ['LITERESEARCHER_ENV_URL'])"
    spec = job_spec(
        ["python3", "-c", script], name="probe", env_vars={ENV_URL_VAR: "http://env:8765"}
    )
    lines: list[str] = []
    polls: list[int] = []
    status = submit_and_wait(
        spec, ray_dashboard, on_log=lines.append, poll_s=0.5, on_poll=lambda: polls.append(1)
    )
    assert status == "SUCCEEDED"
    assert "env url is http://env:8765" in lines
    assert polls

    failing = job_spec(["python3", "-c", "raise SystemExit(3)"], name="broken", env_vars={})
    with pytest.raises(RayJobFailed) as err:
        submit_and_wait(failing, ray_dashboard, on_log=None, poll_s=0.5)
    assert err.value.status == "FAILED" and err.value.submission_id == failing.submission_id
