"""Stage datasets: the catalog layout, the local trainer's reader, and OpenRLHF's own dataset
code (`blending_datasets` + `PromptDataset`) reading `prompts.jsonl` with the arguments
OpenRLHF's parser makes of our launcher's command line."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from curriculum_testkit import SPECS, K, question, records
from transformers import AutoTokenizer

from conf import load_settings
from data_catalog import Catalog
from literesearcher.tiny_models import build_tiny_policy
from rl.openrlhf.launcher import PROTOCOL_CHAT_TEMPLATE, StagePaths, build_train_ppo_ray_command
from rl.openrlhf.prompt_data import decode_label
from rl.protocol import initial_messages, render_raw
from tasks.curriculum.difficulty import classify
from tasks.curriculum.stage_data import (
    agent_task,
    latest_stage,
    load_stage_tasks,
    stage_prompt_path,
    write_stage,
)

DATE = "2026-05-01"


def _openrlhf_parse() -> Any:
    # The parser driver the launcher tests use: OpenRLHF's own __main__ block, train() left out.
    path = Path(__file__).parents[1] / "trainer" / "test_openrlhf_command.py"
    spec = importlib.util.spec_from_file_location("openrlhf_command_tests", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.openrlhf_parse


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return AutoTokenizer.from_pretrained(build_tiny_policy(tmp_path_factory.mktemp("tok"), seed=0))


def _rates() -> list[dict[str, Any]]:
    by_q = {question(s): s for s in SPECS}
    return [{"task_id": r.id, "k": K, "n_correct": by_q[r.question].solved,
             "pass_rate": by_q[r.question].solved / K, "mean_tokens": 50.0}
            for r in records()]  # fmt: skip


@pytest.fixture
def stage(tmp_path: Path) -> tuple[Catalog, Any, list[Any]]:
    catalog = Catalog(tmp_path / "catalog")
    recs = {r.id: r for r in records()}
    kept = classify(_rates(), {i: r.capability for i, r in recs.items()},
                    token_edges=[16_384], pass_edges=[0.5]).kept  # fmt: skip
    manifest = write_stage(catalog, kept, recs, date=DATE, inputs=[],
                           params={"stage": "stage1", "test": 1})  # fmt: skip
    return catalog, manifest, kept


def test_stage_version_holds_tasks_and_prompts_in_the_same_order(stage) -> None:
    catalog, manifest, kept = stage
    assert manifest.name == "curriculum_stage" and manifest.params["stage"] == "stage1"
    assert sorted(manifest.files) == ["prompts.jsonl", "tasks.parquet"]
    assert latest_stage(catalog, "stage1") == manifest and latest_stage(catalog, "x") is None
    tasks = load_stage_tasks(catalog, manifest)
    recs = {r.id: r for r in records()}
    assert tasks == [agent_task(recs[t.task_id]) for t in kept]
    assert {t.id for t in tasks} == {r.id for s, r in zip(SPECS, records(), strict=True)
                                     if 0 < s.solved < K}  # fmt: skip
    table = catalog.read("curriculum_stage", manifest.version).to_arrow_table().to_pylist()
    assert [(r["capability"], r["bucket"], r["pass_rate"]) for r in table] == [
        (t.capability, t.bucket, t.pass_rate) for t in kept
    ]
    rows = [json.loads(x) for x in stage_prompt_path(catalog, manifest).read_text().splitlines()]
    assert [r["question"] for r in rows] == [t.question for t in tasks]
    assert rows[0]["messages"] == initial_messages(tasks[0].question, DATE)
    again = write_stage(catalog, [], {}, date=DATE, inputs=[],
                        params={"stage": "stage1", "test": 1})  # fmt: skip
    assert again == manifest  # same key: found, not rewritten


def _dataset(catalog: Catalog, manifest: Any, tokenizer: Any, tmp_path: Path, **over: Any) -> Any:
    from openrlhf.datasets import PromptDataset
    from openrlhf.datasets.utils import blending_datasets

    stage_cfg = load_settings("cluster").curriculum.stages[0].model_copy(update=over)
    paths = StagePaths.for_stage(stage_cfg.name, "/models/base", tmp_path)
    cmd = build_train_ppo_ray_command(
        stage_cfg, paths, prompt_dataset=str(stage_prompt_path(catalog, manifest)),
        tensorboard_dir=str(tmp_path / "tb"),
    )  # fmt: skip
    argv = cmd[cmd.index("openrlhf.cli.train_ppo_ray") + 1 :]
    extra = ["--data.apply_chat_template"] if over.get("input_key") == "messages" else []
    args = _openrlhf_parse()("openrlhf.cli.train_ppo_ray", argv + extra)
    strategy = SimpleNamespace(args=args, print=lambda *a: None, is_rank_0=lambda: True)
    data = blending_datasets(args.data.prompt_dataset, args.data.prompt_probs, strategy,
                             args.train.seed, max_count=args.data.max_samples,
                             dataset_split=args.data.prompt_split)  # fmt: skip
    return PromptDataset(data, tokenizer, strategy, input_template=args.data.input_template)


def test_openrlhf_prompt_dataset_reads_the_stage_with_the_launchers_keys(
    stage, tokenizer, tmp_path: Path
) -> None:
    catalog, manifest, kept = stage
    dataset = _dataset(catalog, manifest, tokenizer, tmp_path)
    tasks = load_stage_tasks(catalog, manifest)
    assert len(dataset) == len(tasks) > 0
    for i, task in enumerate(tasks):
        datasource, prompt, label, _ = dataset[i]
        assert prompt == task.question  # the agent file renders the protocol prompt itself
        decoded = decode_label(label)
        assert (decoded.id, decoded.answers, decoded.mask_urls) == (
            task.id,
            task.answers,
            task.mask_urls,
        )
        assert datasource == kept[i].capability


def test_openrlhf_chat_template_over_messages_renders_the_protocol_prompt(
    stage, tokenizer, tmp_path: Path
) -> None:
    catalog, manifest, _ = stage
    tokenizer.chat_template = PROTOCOL_CHAT_TEMPLATE
    dataset = _dataset(catalog, manifest, tokenizer, tmp_path, input_key="messages")
    tasks = load_stage_tasks(catalog, manifest)
    prompts = [dataset[i][1] for i in range(len(dataset))]
    assert prompts == [render_raw(initial_messages(t.question, DATE)) for t in tasks]
