"""The evaluation core for real: episodes through rl.rollout with a scripted policy and judge
backend, rollouts resumed from the catalog, the report committed, the MLflow run logged."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyarrow.parquet as pq
from mlflow import MlflowClient

from data_catalog import Catalog
from flows.evaluate import resolve_checkpoint
from rl.backends.base import BackendError, Generation, SamplingParams
from rl.episode import EpisodeConfig
from rl.judge import Judge
from rl.protocol import Message, render_assistant_turn
from rl.tokens import approx_token_count
from tasks.evaluation.compare import compare
from tasks.evaluation.loaders import EvalItem
from tasks.evaluation.nightly import decide
from tasks.evaluation.run import run_benchmarks, summarize, write_eval_report
from tasks.evaluation.tracking import log_evaluation

# question marker -> what the scripted policy answers
ANSWERS = {"[capital]": "Paris", "[judge-down]": "Lyon", "[wrong]": "Berlin"}


class AnsweringPolicy:
    """Answers at once, by the marker in the question (test double for an LLM)."""

    name = "answering"

    def __init__(self) -> None:
        self.calls = 0

    def _answer(self, text: str) -> Generation:
        self.calls += 1
        answer = next(a for marker, a in ANSWERS.items() if marker in text)
        return Generation(render_assistant_turn("thinking", answer=answer), "stop")

    async def complete(self, prompt: str, params: SamplingParams) -> Generation:
        return self._answer(prompt)

    async def chat(self, messages: list[Message], params: SamplingParams) -> Generation:
        return self._answer(" ".join(m["content"] for m in messages))

    async def aclose(self) -> None:
        return None


class JudgeLLM(AnsweringPolicy):
    """Down for one question (a judge error), says 'wrong' for the others."""

    async def chat(self, messages: list[Message], params: SamplingParams) -> Generation:
        if "Lyon" in messages[-1]["content"]:
            raise BackendError("judge server down")
        return Generation('{"correct": false, "reason": "different fact"}', "stop")


class NoWeb:
    async def search(self, queries, *, top_k=None, mask_urls=()):
        raise AssertionError("the scripted policy never searches")

    async def visit(self, urls, goal, *, mask_urls=()):
        raise AssertionError("the scripted policy never visits")


ITEMS = {
    "gaia": [
        EvalItem("g1", "[capital] Capital of France?", ["Paris"], "gaia", "level-1"),
        EvalItem("g2", "[judge-down] Capital of Japan?", ["Tokyo"], "gaia", "level-2"),
    ],
    "heldout": [EvalItem("h1", "[wrong] Capital of Italy?", ["Rome"], "heldout", "aggregation")],
}


def _run(catalog: Catalog, policy: AnsweringPolicy, k: int = 2):
    judge = Judge("llm", JudgeLLM(), fallback="none")
    return asyncio.run(
        run_benchmarks(
            ITEMS,
            policy,
            NoWeb(),
            k,
            catalog=catalog,
            config=EpisodeConfig(max_turns=2, max_tokens_per_turn=64, date="2025-01-01"),
            count_tokens=approx_token_count,
            judge=judge,
            policy_id="scripted",
            progress=False,
        )
    )


def test_evaluation_scores_resumes_reports_and_logs(settings):
    catalog = Catalog.from_settings(settings)
    policy = AnsweringPolicy()
    rollouts = _run(catalog, policy)
    assert policy.calls == 6  # 3 questions x k=2
    again = _run(catalog, policy)
    assert policy.calls == 6  # finished episodes are not re-run
    assert {n: m.version for n, m in again.items()} == {n: m.version for n, m in rollouts.items()}

    groups = {(g.benchmark, g.capability): g for g in summarize(catalog, rollouts, ITEMS, 2)}
    gaia = groups[("gaia", "all")]
    assert (gaia.questions, gaia.samples) == (2, 4)
    assert gaia.pass_at_1 == 0.5 and gaia.pass_at_k == 0.5
    assert gaia.judge_errors == 2  # the judge-down question: wrong, and counted
    assert groups[("gaia", "level-2")].pass_at_1 == 0.0
    assert groups[("heldout", "all")].pass_at_1 == 0.0
    assert groups[("heldout", "all")].judge_errors == 0

    with catalog.create("checkpoints", params={"curriculum": "c1", "stage": "stage1"}) as w:
        (w.path / "step-000004").mkdir()
        (w.path / "step-000004" / "config.json").write_text("{}")
    checkpoint = w.manifest
    assert checkpoint is not None
    assert decide(catalog).skip_reason is None
    assert resolve_checkpoint(catalog, checkpoint.version) == (
        checkpoint,
        str(catalog.path(checkpoint) / "step-000004"),
    )

    report = write_eval_report(
        catalog, list(groups.values()), list(rollouts.values()), checkpoint=checkpoint,
        params={"k": 2}, context={"checkpoint": checkpoint.version},
    )  # fmt: skip
    folder = catalog.path(report)
    assert {"report.md", "report.html", "accuracy.png", "terminations.png", "metrics.parquet"} <= {
        p.name for p in folder.iterdir()
    }
    assert pq.read_table(folder / "metrics.parquet").num_rows == len(groups)
    assert "already evaluated" in (decide(catalog).skip_reason or "")

    run_id = log_evaluation(
        settings, list(groups.values()), report=report, report_dir=folder, rollouts=rollouts,
        checkpoint=checkpoint.version, curriculum="c1", stage="stage1", params={"k": 2},
    )  # fmt: skip
    client = MlflowClient(settings.mlflow_tracking_uri())
    run = client.get_run(run_id)
    assert run.data.tags["curriculum"] == "c1" and run.data.tags["stage"] == "stage1"
    assert run.data.metrics["eval/gaia/pass_at_1"] == 0.5
    assert run.data.metrics["eval/gaia/judge_errors"] == 2
    assert run.data.metrics["eval/gaia/cap/level-1/pass_at_2"] == 1.0
    assert {a.path for a in client.list_artifacts(run_id, "report")} >= {
        "report/report.md", "report/report.html", "report/accuracy.png",
    }  # fmt: skip
    html = Path(client.download_artifacts(run_id, "report/report.html", str(settings.data_root)))
    assert html.read_text().count("<svg ") == 2  # the plots travel inside the page
    row = compare(client, settings.mlflow.experiment).rows[0]
    assert (row.curriculum, row.stage, row.values["eval/gaia/pass_at_1"]) == ("c1", "stage1", 0.5)


def test_resolve_checkpoint_passes_plain_directories_through(tmp_path):
    catalog = Catalog(tmp_path / "catalog")
    assert resolve_checkpoint(catalog, None) == (None, None)
    assert resolve_checkpoint(catalog, "/models/tiny") == (None, "/models/tiny")
