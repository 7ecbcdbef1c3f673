"""The registry of every dataset the pipeline produces: name, schema, producer, description.

A dataset not registered here cannot be written: the registry is the one list a reader of
the project consults to know what exists. `schema` (when set) lists the columns every
version must have; writers may add more.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from tasks.curriculum.schema import STAGE_TASK_SCHEMA
from tasks.synthesis.schema import TASK_SCHEMA


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    producer: str
    description: str
    kind: str = "table"  # table | directory (index files, model weights, reports)
    schema: pa.Schema | None = None


_STR = pa.string()

DATASETS: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    DATASETS[spec.name] = spec
    return spec


def get_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise KeyError(
            f"dataset {name!r} is not registered in data_catalog/registry.py; known: {known}"
        ) from None


# ---- the virtual world and models --------------------------------------------------------
register(
    DatasetSpec(
        "world",
        "literesearcher.world",
        "virtual world: pages (url,title,doc) and ground-truth facts",
        kind="directory",
    )
)
register(
    DatasetSpec(
        "tiny_models",
        "literesearcher.tiny_models",
        "tiny policy and BGE-M3-format embedder (HF format)",
        kind="directory",
    )
)

# ---- building the local web ----------------------------------------------------------------
register(
    DatasetSpec(
        "corpus_staging",
        "tasks.corpus.ingest",
        "normalized records bucketed by canonical-URL hash, one part per input chunk (before dedup)",
        schema=pa.schema(
            [
                ("url", _STR),
                ("title", _STR),
                ("text", _STR),
                ("text_hash", _STR),
                ("text_bytes", pa.int64()),
                ("links", pa.list_(_STR)),
                ("source", pa.int32()),
                ("ordinal", pa.int64()),
            ]
        ),
    )
)
register(
    DatasetSpec(
        "text_duplicates",
        "tasks.corpus.shard",
        "URLs dropped because another URL (kept_url) holds the exact same text",
        schema=pa.schema([("url", _STR), ("text_hash", _STR), ("kept_url", _STR)]),
    )
)
register(
    DatasetSpec(
        "corpus_shards",
        "tasks.corpus.shard",
        "normalized, deduplicated pages hash-partitioned by canonical URL, one part per shard",
        schema=pa.schema(
            [
                ("url", _STR),
                ("title", _STR),
                ("text", _STR),
                ("text_hash", _STR),
                ("links", pa.list_(_STR)),
            ]
        ),
    )
)
register(
    DatasetSpec(
        "quarantine",
        "tasks.corpus.ingest",
        "records rejected by normalization, with the reason",
        schema=pa.schema(
            [
                ("source", _STR),
                ("ordinal", pa.int64()),
                ("reason", _STR),
                ("detail", _STR),
                ("raw", _STR),
            ]
        ),
    )
)
register(
    DatasetSpec(
        "passages",
        "tasks.corpus.passages",
        "overlapping passages with stable ids <url hash>:<ordinal>",
        schema=pa.schema(
            [
                ("passage_id", _STR),
                ("url", _STR),
                ("title", _STR),
                ("text", _STR),
                ("ordinal", pa.int32()),
            ]
        ),
    )
)
register(
    DatasetSpec(
        "embeddings",
        "tasks.corpus.embed",
        "BGE-M3 dense and sparse vectors per passage, per shard",
        schema=pa.schema(
            [
                ("passage_id", _STR),
                ("url", _STR),
                ("title", _STR),
                ("dense", pa.list_(pa.float32())),
                ("sparse_ids", pa.list_(pa.int32())),
                ("sparse_weights", pa.list_(pa.float32())),
            ]
        ),
    )
)
register(
    DatasetSpec(
        "search_index",
        "tasks.corpus.load",
        "lexical (tantivy/Milvus BM25) and vector (Milvus) index loads; parts are the shards loaded",
        kind="directory",
    )
)
register(
    DatasetSpec(
        "page_store",
        "tasks.corpus.load",
        "page store loads (DuckDB or PostgreSQL) by canonical URL; parts are the shards loaded",
        kind="directory",
    )
)

# ---- tasks, rollouts, curriculum ---------------------------------------------------------
register(
    DatasetSpec(
        "tasks_raw", "tasks.synthesis", "synthesized tasks with provenance", schema=TASK_SCHEMA
    )
)
register(
    DatasetSpec(
        "tasks_filtered", "tasks.synthesis", "tasks kept by the quality filters", schema=TASK_SCHEMA
    )
)
# Required columns only; the full schemas are rl.trajectory.TRAJECTORY_SCHEMA / PASS_RATE_SCHEMA.
register(
    DatasetSpec(
        "rollouts",
        "rl.rollout",
        "trajectories of pass@k rollouts",
        schema=pa.schema(
            [
                ("task_id", _STR),
                ("sample_idx", pa.int32()),
                ("question", _STR),
                ("gold_answers", pa.list_(_STR)),
                ("policy", _STR),
                ("messages", pa.list_(pa.struct([("role", _STR), ("content", _STR)]))),
                ("raw_text", _STR),
                ("termination", _STR),
                ("answer", _STR),
                ("reward", pa.float64()),
                ("correct", pa.bool_()),
                ("judge_method", _STR),
                ("judge_error", _STR),
                ("num_turns", pa.int32()),
                ("num_tool_calls", pa.int32()),
                ("completion_tokens", pa.int64()),
                ("context_tokens", pa.int64()),
                ("wall_s", pa.float64()),
            ]
        ),
    )
)
register(
    DatasetSpec(
        "pass_rates",
        "rl.rollout",
        "per-task pass rates over k rollouts",
        schema=pa.schema(
            [
                ("task_id", _STR),
                ("k", pa.int32()),
                ("n_correct", pa.int32()),
                ("pass_rate", pa.float64()),
                ("mean_turns", pa.float64()),
                ("mean_tokens", pa.float64()),
                ("n_judge_errors", pa.int32()),
            ]
        ),
    )
)
register(
    DatasetSpec(
        "tasks_heldout",
        "tasks.curriculum",
        "tasks_filtered held out (by hash of task id) from difficulty filtering, for evaluation",
        schema=TASK_SCHEMA,
    )
)
register(
    DatasetSpec(
        "curriculum_stage",
        "tasks.curriculum",
        "one curriculum stage (params.stage): tasks.parquet (local trainer) + prompts.jsonl "
        "(OpenRLHF), see tasks/curriculum/stage_data.py",
        schema=STAGE_TASK_SCHEMA,
    )
)
register(DatasetSpec("sft_data", "tasks.curriculum", "judge-verified teacher trajectories for SFT"))
register(
    DatasetSpec(
        "checkpoints", "rl.trainer", "HF-format policy checkpoints per stage", kind="directory"
    )
)
register(
    DatasetSpec(
        "eval_reports",
        "flows.evaluate",
        "benchmark metrics per (benchmark, capability) in metrics.parquet, plus report.md and plots",
        schema=pa.schema(
            [
                ("benchmark", _STR),
                ("capability", _STR),
                ("k", pa.int64()),
                ("questions", pa.int64()),
                ("samples", pa.int64()),
                ("pass_at_1", pa.float64()),
                ("avg_at_k", pa.float64()),
                ("pass_at_k", pa.float64()),
                ("judge_errors", pa.int64()),
                ("terminations", _STR),
            ]
        ),
    )
)

# ---- the smoke flow --------------------------------------------------------------------------
register(
    DatasetSpec(
        "smoke_numbers",
        "flows.smoke",
        "smoke flow: the integers 0..n-1",
        schema=pa.schema([("n", pa.int64())]),
    )
)
register(
    DatasetSpec(
        "smoke_squares",
        "flows.smoke",
        "smoke flow: squares of smoke_numbers",
        schema=pa.schema([("n", pa.int64()), ("square", pa.int64())]),
    )
)
