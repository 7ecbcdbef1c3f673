"""prefect.yaml for real: a Prefect server, a process work pool, `prefect deploy`, a worker,
`prefect deployment run --watch`; the second run's tasks come back from the cache, and so do
those of a run restarted with `prefect flow-run retry`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
import yaml

from conf import load_settings
from literesearcher.testing import free_port, serve_subprocess

REPO = Path(__file__).resolve().parents[2]
PREFECT = [sys.executable, "-m", "prefect"]


def test_prefect_yaml_declares_every_deployment():
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in spec["deployments"]}
    assert set(deployments) == {
        "reproduce", "build-environment", "synthesize-tasks", "filter-difficulty",
        "train-curriculum", "evaluate", "nightly-eval", "smoke",
    }  # fmt: skip
    pool = load_settings("local").prefect.work_pool
    assert {d["work_pool"]["name"] for d in deployments.values()} == {pool}
    assert deployments["nightly-eval"]["schedules"][0]["cron"] == "0 3 * * *"
    assert deployments["reproduce"]["entrypoint"] == "flows/reproduce.py:reproduce"
    for d in deployments.values():  # entrypoints name a flow function in flows/
        path, func = d["entrypoint"].split(":")
        assert path.startswith("flows/") and func.isidentifier()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture
def prefect_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A real `prefect server start` on a free loopback port; killed afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_LOCAL_STORAGE_PATH=str(tmp_path / "prefect-results"),
        PREFECT_RESULTS_PERSIST_BY_DEFAULT="true",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="2",
        PWD=str(REPO),
        MLFLOW_ENABLE_ASYNC_LOGGING="false",
    )
    with serve_subprocess(
        [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        f"{env['PREFECT_API_URL']}/health", env=env, cwd=REPO, log=tmp_path / "server.log",
        timeout_s=120, poll_s=1, stop_timeout_s=15,
    ):  # fmt: skip
        yield env


def _cli(env: dict[str, str], *args: str, timeout: float = 90) -> str:
    done = subprocess.run(
        [*PREFECT, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


async def _task_states(api_url: str, flow_run_id: UUID) -> tuple[str, dict[str, str]]:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async with PrefectClient(api_url) as client:
        run = await client.read_flow_run(flow_run_id)
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    assert run.state is not None
    return run.state.name, {t.task_key.split("-")[0]: t.state.name for t in tasks if t.state}


async def _wait_for_attempt(
    api_url: str, flow_run_id: UUID, attempt: int, timeout: float = 180
) -> str:
    """Poll until the flow run's `attempt`-th run reached a final state; returns its name."""
    from prefect.client.orchestration import PrefectClient

    deadline = time.monotonic() + timeout
    async with PrefectClient(api_url) as client:
        while True:
            run = await client.read_flow_run(flow_run_id)
            if run.state is not None and run.state.is_final() and run.run_count >= attempt:
                return run.state.name
            assert time.monotonic() < deadline, f"flow run still {run.state} (run {run.run_count})"
            await asyncio.sleep(1)


async def _task_state_history(api_url: str, flow_run_id: UUID) -> dict[str, list[str]]:
    """Every task run of a flow run (all its attempts): task name -> sorted final states."""
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async with PrefectClient(api_url) as client:
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    out: dict[str, list[str]] = {}
    for t in tasks:
        if t.state:
            out.setdefault(t.task_key.split("-")[0], []).append(t.state.name)
    return {name: sorted(states) for name, states in out.items()}


@pytest.mark.slow
def test_smoke_deployment_runs_through_a_worker_caches_and_retries(prefect_env, tmp_path: Path):
    env = prefect_env
    pool = load_settings("local").prefect.work_pool
    _cli(env, "work-pool", "create", "--type", "process", pool)
    _cli(env, "--no-prompt", "deploy", "--name", "smoke")
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [*PREFECT, "worker", "start", "--pool", pool, "--type", "process"],
        env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    overrides = json.dumps([f"data_root={tmp_path / 'data'}"])
    states, ids = [], []
    try:
        for _ in range(2):
            out = _cli(
                env, "deployment", "run", "smoke/smoke", "--param", f"overrides={overrides}",
                "--watch", "--watch-timeout", "150", timeout=180,
            )  # fmt: skip
            match = re.search(r"UUID:\s*([0-9a-f-]{36})", out)
            assert match, out
            ids.append(UUID(match[1]))
            states.append(asyncio.run(_task_states(env["PREFECT_API_URL"], ids[-1])))
        # the README's `prefect flow-run retry`: the worker runs the first flow run again
        _cli(env, "flow-run", "retry", str(ids[0]))
        retried = asyncio.run(_wait_for_attempt(env["PREFECT_API_URL"], ids[0], attempt=2))
        history = asyncio.run(_task_state_history(env["PREFECT_API_URL"], ids[0]))
    finally:
        _stop(worker)
        log.close()
    assert states[0] == ("Completed", {"make_numbers": "Completed", "square_numbers": "Completed"})
    # the re-run finds the finished tasks in the cache and skips them
    assert states[1] == ("Completed", {"make_numbers": "Cached", "square_numbers": "Cached"})
    # retried: the same flow run completes again, its tasks this time from the cache
    assert retried == "Completed"
    assert history == {
        "make_numbers": ["Cached", "Completed"],
        "square_numbers": ["Cached", "Completed"],
    }


@pytest.mark.slow
def test_reproduce_deployment_fails_then_retry_resumes_from_the_failed_stage(
    prefect_env, tmp_path: Path
):
    """The tiny end-to-end deployment through a worker: a failure injected at the RL stage
    fails the run; `prefect flow-run retry` runs it again, and every stage before RL comes back
    from the catalog (writes nothing) while RL and eval run."""
    env = prefect_env
    pool = load_settings("local").prefect.work_pool
    _cli(env, "work-pool", "create", "--type", "process", pool)
    _cli(env, "--no-prompt", "deploy", "--name", "reproduce")
    data_root = tmp_path / "data"
    marker = tmp_path / "fail-once"
    marker.touch()
    params = [
        "--param", f"profile={REPO / 'tests' / 'pipeline' / 'tiny.yaml'}",
        "--param", "overrides=" + json.dumps([f"data_root={data_root}",
                                              f"env_service.port={free_port()}"]),
        "--param", "name=drill",
        "--param", f"fail_once=rl:{marker}",
    ]  # fmt: skip
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [*PREFECT, "worker", "start", "--pool", pool, "--type", "process"],
        env={**env, "OMP_NUM_THREADS": "1"}, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        out = _cli(env, "deployment", "run", "reproduce/reproduce", *params, timeout=60)
        match = re.search(r"UUID:\s*([0-9a-f-]{36})", out)
        assert match, out
        run_id = UUID(match[1])
        first = asyncio.run(_wait_for_attempt(env["PREFECT_API_URL"], run_id, 1, timeout=900))
        state_file = data_root / "runs" / "drill" / "reproduce-state.json"
        after_failure = json.loads(state_file.read_text())["stages"]
        _cli(env, "flow-run", "retry", str(run_id))
        retried = asyncio.run(_wait_for_attempt(env["PREFECT_API_URL"], run_id, 2, timeout=900))
        after_retry = json.loads(state_file.read_text())["stages"]
    finally:
        _stop(worker)
        log.close()
    assert first == "Failed", (tmp_path / "worker.log").read_text()[-4000:]
    assert not marker.exists()
    upstream = ("world", "build_env", "synthesize", "teacher", "sft", "filter")
    assert set(after_failure) == set(upstream)  # it stopped at rl: nothing of rl or eval
    assert all(after_failure[s]["fresh"] for s in upstream)
    assert retried == "Completed", (tmp_path / "worker.log").read_text()[-4000:]
    # the retry resumed at the failed stage: the finished stages wrote nothing
    assert {s: after_retry[s]["fresh"] for s in after_retry} == {
        **dict.fromkeys(upstream, False), "rl": True, "eval": True,
    }  # fmt: skip
