"""The MLflow UI for real: `mlflow server` over the store the evaluation logs to, opened in
headless Chromium (Debian's `chromium`); the compare view shows both curricula's runs and the
eval metric. The screenshot is kept in test-artifacts/."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from mlflow import MlflowClient

from data_catalog import Manifest
from literesearcher.testing import free_port, serve_subprocess
from tasks.evaluation.metrics import SampleResult, aggregate
from tasks.evaluation.tracking import log_evaluation

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


def _manifest(name: str) -> Manifest:
    return Manifest(
        name=name, version=f"{name[:4]}0000", key="0" * 64, rows=1, content_digest="d" * 64,
        inputs=[], params={}, code_version="t", git_revision=None, created="2026-01-01T00:00:00Z",
        stats={}, files=[], location=f"/tmp/{name}",
    )  # fmt: skip


def _log(settings, curriculum: str, correct: list[bool]) -> str:
    samples = [
        SampleResult(f"q{i}", "gaia", "level-1", 0, ok, "llm", "answer", 3, 2, 10)
        for i, ok in enumerate(correct)
    ]
    return log_evaluation(
        settings, aggregate(samples, 1), report=_manifest("eval_reports"), report_dir=None,
        rollouts={"gaia": _manifest("rollouts")}, checkpoint=f"ck-{curriculum}",
        curriculum=curriculum, stage="stage1", params={"k": 1},
    )  # fmt: skip


@pytest.mark.slow
def test_mlflow_ui_compare_view_shows_curricula(settings, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("needs Debian's chromium: apt-get install chromium", pytrace=False)
    run_ids = [_log(settings, "baseline", [True, False]), _log(settings, "mixed", [True, True])]
    experiment = MlflowClient(settings.mlflow_tracking_uri()).get_run(run_ids[0]).info.experiment_id
    port = free_port()
    cmd = [
        sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
        settings.mlflow_tracking_uri(), "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    with serve_subprocess(cmd, f"http://127.0.0.1:{port}/health", timeout_s=90, poll_s=1):
        query = urllib.parse.urlencode(
            {"runs": json.dumps(run_ids), "experiments": json.dumps([experiment])}
        )
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "mlflow-compare-curricula.png"
        shot.unlink(missing_ok=True)
        dom = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1400,900",
             "--virtual-time-budget=20000", f"--screenshot={shot}", "--dump-dom",
             f"http://127.0.0.1:{port}/#/compare-runs?{query}"],
            capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
    assert "Comparing 2 Runs" in dom
    for text in ("eval-ck-baseline", "eval-ck-mixed", "eval/gaia/pass_at_1", "curriculum"):
        assert text in dom, f"{text!r} not shown in the MLflow compare view"
    assert shot.stat().st_size > 10_000
