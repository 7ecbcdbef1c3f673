"""`literesearcher eval` end to end: the evaluate flow against a real OpenAI-compatible HTTP
endpoint (a scripted test server), local benchmark files, the catalog and MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI
from mlflow import MlflowClient

from conf import load_settings
from data_catalog import Catalog
from literesearcher.cli import main
from literesearcher.testing import serve_app
from rl.protocol import render_assistant_turn

ANSWERS = {"[capital]": "Paris", "[river]": "Amazon"}


def scripted_openai_app() -> FastAPI:
    """Answers at once by the marker in the prompt: a test double for a policy server."""
    app = FastAPI()

    @app.post("/v1/completions")
    async def completions(body: dict) -> dict:
        answer = next(a for m, a in ANSWERS.items() if m in body["prompt"])
        text = render_assistant_turn("thinking", answer=answer)
        return {
            "choices": [{"text": text, "finish_reason": "stop", "index": 0}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 12},
        }

    return app


@pytest.mark.slow
def test_eval_cli_runs_the_flow_and_logs_one_mlflow_run(prefect_server, tmp_path, capsys):
    seal = tmp_path / "seal_0.jsonl"
    seal.write_text(
        json.dumps({"question": "[capital] Capital of France?", "answer": "Paris", "topic": "Geo"})
        + "\n"
        + json.dumps(
            {"question": "[river] Longest river in Egypt?", "answer": "Nile", "topic": "Geo"}
        )
        + "\n"
    )
    overrides = [f"data_root={tmp_path / 'data'}", "rl.judge_mode=exact_match", "rl.max_turns=2"]
    args = [arg for o in overrides for arg in ("--set", o)]
    with serve_app(scripted_openai_app()) as base:
        url = f"{base}/v1"
        code = main([
            *args, "eval", "--bench", f"seal-0={seal}", "--k", "2", "--endpoint", url,
            "--model", "scripted", "--curriculum", "mixed", "--stage", "stage2",
        ])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    settings = load_settings("local", overrides)
    report = Catalog.from_settings(settings).latest("eval_reports")
    assert report is not None and report.version == out["eval_report"]
    assert (
        "| seal-0 | all | 2 | 4 | 50.0 | 50.0 | 50.0 | 0 | 0 |" in Path(out["report"]).read_text()
    )
    run = MlflowClient(settings.mlflow_tracking_uri()).get_run(out["mlflow_run_id"])
    assert run.data.tags["curriculum"] == "mixed" and run.data.tags["stage"] == "stage2"
    assert run.data.metrics["eval/seal-0/pass_at_1"] == 0.5
    assert run.data.metrics["eval/seal-0/avg_at_2"] == 0.5
    assert run.data.metrics["eval/seal-0/termination.answer"] == 4
