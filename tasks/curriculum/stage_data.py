"""Curriculum stage datasets: the contract between difficulty filtering and the trainers.

One `curriculum_stage` catalog version per stage (`params["stage"]` is the stage's name) with
two files over the same tasks, in the same order:

- `tasks.parquet` (`STAGE_TASK_SCHEMA`): the local trainer's format, `rl.episode.AgentTask`
  fields (id, question, answers, mask_urls) plus capability, k, n_correct, pass_rate,
  mean_tokens, token_bin and bucket. Read it with `load_stage_tasks`.
- `prompts.jsonl`: OpenRLHF's `--data.prompt_dataset`. Each row holds `question` (the bare
  question: `StageConfig.input_key`'s default, which the agent file renders with the protocol
  at run time, with the run's date), `messages` (the same prompt as chat messages
  [system, user] rendered by `rl.protocol.initial_messages`, dated with the rollouts' date),
  `label` (`StageConfig.label_key`: the `TaskLabel` JSON string with id, answers and mask
  URLs), `datasource` (the capability: OpenRLHF groups its eval metrics by it), and bucket
  and pass_rate. Find it with `stage_prompt_path`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from data_catalog import Catalog, Manifest
from rl.episode import AgentTask
from rl.openrlhf.prompt_data import PromptRow
from rl.protocol import initial_messages
from tasks.curriculum.difficulty import RatedTask
from tasks.curriculum.schema import STAGE_TASK_SCHEMA
from tasks.synthesis.schema import TaskRecord

DATASET = "curriculum_stage"
TASKS_FILE = "tasks.parquet"
PROMPTS_FILE = "prompts.jsonl"
CODE_VERSION = "curriculum-stage-1"


def agent_task(record: TaskRecord) -> AgentTask:
    """A synthesized task as the episode runner consumes it."""
    return AgentTask(
        id=record.id,
        question=record.question,
        answers=list(record.answers),
        mask_urls=list(record.mask_urls),
    )


def prompt_row(task: AgentTask, rated: RatedTask, date: str) -> dict[str, Any]:
    """One `prompts.jsonl` row (see the module docstring)."""
    base = PromptRow.from_task(task)
    return {
        "question": base.question,
        "messages": initial_messages(task.question, date),
        "label": base.label,
        "datasource": rated.capability,
        "bucket": rated.bucket,
        "pass_rate": rated.pass_rate,
    }


def stage_rows(
    selected: Sequence[RatedTask], records: Mapping[str, TaskRecord]
) -> list[dict[str, Any]]:
    rows = []
    for rated in selected:
        task = agent_task(records[rated.task_id])
        rows.append(
            {
                **task.model_dump(),
                "capability": rated.capability,
                "k": rated.k,
                "n_correct": rated.n_correct,
                "pass_rate": rated.pass_rate,
                "mean_tokens": rated.mean_tokens,
                "token_bin": rated.token_bin,
                "bucket": rated.bucket,
            }
        )
    return rows


def stage_key(inputs: Sequence[Manifest], params: Mapping[str, Any]) -> str:
    return Catalog.key(DATASET, inputs, params, CODE_VERSION)


def write_stage(
    catalog: Catalog,
    selected: Sequence[RatedTask],
    records: Mapping[str, TaskRecord],
    *,
    date: str,
    inputs: Sequence[Manifest],
    params: Mapping[str, Any],
) -> Manifest:
    """Write one stage's version (or return the one with the same key). `params` must name
    the stage (`stage`) and hold everything that decided `selected`."""
    if "stage" not in params:
        raise ValueError("curriculum_stage params must name the stage ('stage')")
    found = catalog.find(DATASET, stage_key(inputs, params))
    if found is not None:
        return found
    rows = stage_rows(selected, records)
    with catalog.create(DATASET, inputs, params, CODE_VERSION) as w:
        w.write_table(pa.Table.from_pylist(rows, schema=STAGE_TASK_SCHEMA), TASKS_FILE)
        with (w.path / PROMPTS_FILE).open("w", encoding="utf-8") as fh:
            for row, rated in zip(rows, selected, strict=True):
                task = AgentTask.model_validate(row)
                fh.write(json.dumps(prompt_row(task, rated, date), ensure_ascii=False) + "\n")
        w.stats = {
            "tasks": len(rows),
            "per_capability": _count(r["capability"] for r in rows),
            "per_bucket": _count(r["bucket"] for r in rows),
            "per_token_bin": _count(r["token_bin"] for r in rows),
        }
    assert w.manifest is not None
    return w.manifest


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def _check(manifest: Manifest) -> None:
    if manifest.name != DATASET:
        raise ValueError(f"not a {DATASET} version: {manifest.name}/{manifest.version}")


def load_stage_tasks(catalog: Catalog, manifest: Manifest) -> list[AgentTask]:
    """The stage's tasks in the dataset's order (the local trainer's input)."""
    _check(manifest)
    table = catalog.read(DATASET, manifest.version).to_arrow_table()
    return [AgentTask.model_validate(row) for row in table.to_pylist()]


def stage_prompt_path(catalog: Catalog, manifest: Manifest) -> Path:
    """The stage's OpenRLHF prompt file (`--data.prompt_dataset`); local catalogs only."""
    _check(manifest)
    path = catalog.path(manifest) / PROMPTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from {DATASET} version {manifest.version}")
    return path


def latest_stage(catalog: Catalog, stage: str) -> Manifest | None:
    """The newest committed version of the named stage's dataset."""
    found = [m for m in catalog.versions(DATASET) if m.params.get("stage") == stage]
    return found[-1] if found else None
