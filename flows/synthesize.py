"""Flow `synthesize_tasks`: virtual world -> tasks_raw (5 capabilities) -> tasks_filtered.

Two cached catalog tasks. `generate_tasks` runs the ground-truth generator over a world and
writes `tasks_raw` with per-capability counts; `filter_tasks` runs the quality filters
(answer form, answer-in-question, dedup, rubric judge when configured, leakage, answerability)
over a page store and lexical index built from the same world, and writes `tasks_filtered`
with kept/dropped counts per filter and reason. Both land in the manifests and in MLflow.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from prefect import flow

from conf import Settings, load_settings
from data_catalog import Catalog, Manifest
from tasks.common import catalog_task, code_version
from tasks.synthesis import filters, ground_truth, judge, world_facts, world_web
from tasks.synthesis.filters import (
    AnswerabilityFilter,
    AnswerFormFilter,
    AnswerInQuestionFilter,
    DedupFilter,
    LeakageFilter,
    run_filters,
)
from tasks.synthesis.ground_truth import GroundTruthGenerator, commonest_answer_share
from tasks.synthesis.judge import RubricJudgeFilter
from tasks.synthesis.llm_client import StructuredLLM
from tasks.synthesis.schema import CAPABILITIES, Capability, from_table, to_table
from tasks.tracking import Tracker


def _world_stamp(world_dir: Path) -> dict[str, Any]:
    path = world_dir / "world.json"
    if not path.exists():
        raise FileNotFoundError(f"no world at {world_dir}: run `literesearcher world generate`")
    stamp: dict[str, Any] = json.loads(path.read_text())
    return stamp


@catalog_task
def generate_tasks(
    catalog_root: str,
    world_dir: str,
    capabilities: list[str],
    per_capability: int,
    seed: int,
    max_list_chars: int,
    max_answer_share: float = 1.0,
) -> Manifest:
    catalog = Catalog(catalog_root)
    # The world's stamp identifies it (generation is deterministic); its path is not keyed, so
    # a data root moved or copied elsewhere finds its tasks again.
    params = {"world": _world_stamp(Path(world_dir)),
              "capabilities": capabilities, "per_capability": per_capability, "seed": seed,
              "max_list_chars": max_list_chars, "max_answer_share": max_answer_share}  # fmt: skip
    version = code_version(ground_truth, world_facts)
    done = catalog.find("tasks_raw", catalog.key("tasks_raw", [], params, version))
    if done is not None:
        return done
    gen = GroundTruthGenerator(Path(world_dir), seed=seed, max_list_chars=max_list_chars,
                               max_answer_share=max_answer_share)  # fmt: skip
    caps: list[Capability] = [c for c in CAPABILITIES if c in capabilities]
    tasks = list(gen.generate(caps, per_capability))
    with catalog.create("tasks_raw", params=params, code_version=version) as w:
        w.write_table(to_table(tasks))
        w.stats["world_dir"] = str(world_dir)
        w.stats["per_capability"] = dict(Counter(t.capability for t in tasks))
        w.stats["commonest_answer_share"] = commonest_answer_share(tasks)
    assert w.manifest is not None
    return w.manifest


@catalog_task
def filter_tasks(
    catalog_root: str, raw: Manifest, world_dir: str, options: dict[str, Any]
) -> Manifest:
    """`options`: the synthesis section's filter knobs, the web's folder and the judge's role."""
    catalog = Catalog(catalog_root)
    version = code_version(filters, judge, world_web)
    params = {k: v for k, v in options.items() if k not in ("settings_json", "web_dir")}
    done = catalog.find("tasks_filtered", catalog.key("tasks_filtered", [raw], params, version))
    if done is not None:
        return done
    settings = Settings.model_validate_json(options["settings_json"])
    web_dir = Path(options["web_dir"])
    world_web.build_world_web(Path(world_dir), web_dir, words=settings.corpus.passage_words,
                              overlap=settings.corpus.passage_overlap)  # fmt: skip
    store, index = world_web.open_world_web(web_dir)
    try:
        syn = settings.synthesis
        shown = world_web.lexical_search(
            index, syn.leakage_top_k, snippet_chars=settings.env_service.snippet_chars
        )
        search = world_web.lexical_search(index, max(syn.answerability_top_k, 1))
        steps: list[filters.Step] = [
            AnswerFormFilter(syn.max_answer_chars, syn.max_answer_words),
            AnswerInQuestionFilter(),
            DedupFilter(syn.near_dup_threshold),
            RubricJudgeFilter(StructuredLLM.from_settings(settings, syn.judge_role)),
            LeakageFilter(shown, top_k=syn.leakage_top_k),
            AnswerabilityFilter(
                store, search if syn.answerability_top_k else None, top_k=syn.answerability_top_k
            ),
        ]
        raw_tasks = from_table(catalog.read("tasks_raw", raw.version).to_arrow_table())
        kept, stats = run_filters(raw_tasks, steps)
    finally:
        store.close()
        index.close()
    with catalog.create("tasks_filtered", inputs=[raw], params=params, code_version=version) as w:
        w.write_table(to_table(kept))
        w.stats["filters"] = stats
        w.stats["per_capability"] = dict(Counter(t.capability for t in kept))
        w.stats["commonest_answer_share"] = commonest_answer_share(kept)
    assert w.manifest is not None
    return w.manifest


@flow(name="synthesize_tasks", log_prints=True)
def synthesize_tasks(
    profile: str | None = None,
    overrides: list[str] | None = None,
    world_dir: str | None = None,
    per_capability: int | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """Generate and filter tasks over a virtual world; returns the two dataset versions."""
    settings = load_settings(profile, overrides or [])
    syn = settings.synthesis
    world = str(settings.path(world_dir or syn.world_dir).resolve())
    n = per_capability or syn.per_capability
    seed = syn.seed if seed is None else seed
    catalog_root = settings.uri(settings.catalog.root)
    with Tracker.start(settings, "synthesize_tasks", tags={"flow": "synthesize_tasks"}) as tracker:
        with tracker.stage("generate") as stage:
            raw = generate_tasks(catalog_root, world, list(syn.capabilities), n, seed,
                                 syn.max_answer_chars, syn.max_answer_share)  # fmt: skip
            stage.log_dataset(raw, "output")
            stage.log_manifest_stats(raw)
        with tracker.stage("filter") as stage:
            options = {
                **syn.model_dump(mode="json", exclude={"world_dir", "per_capability", "seed"}),
                "judge": settings.llm.endpoints.get(syn.judge_role) is not None,
                "passage_words": settings.corpus.passage_words,
                "passage_overlap": settings.corpus.passage_overlap,
                "snippet_chars": settings.env_service.snippet_chars,
                "web_dir": str(settings.path(syn.work_dir) / "world_web"),
                "settings_json": settings.model_dump_json(),
            }
            kept = filter_tasks(catalog_root, raw, world, options)
            stage.log_dataset(raw, "input")
            stage.log_dataset(kept, "output")
            stage.log_manifest_stats(kept)
    return {
        "versions": {"tasks_raw": raw.version, "tasks_filtered": kept.version},
        "rows": {"tasks_raw": raw.rows, "tasks_filtered": kept.rows},
        "per_capability": kept.stats.get("per_capability", {}),
        "filters": kept.stats.get("filters", {}),
        "mlflow_run_id": tracker.run_id,
    }
