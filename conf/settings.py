"""Typed configuration: one pydantic model per concern, loaded from a YAML profile.

Profiles live beside this file (`local.yaml`, `cluster.yaml`); a profile may name a base
profile with `extends:`. Overrides come, in increasing precedence, from environment variables
(`LITERESEARCHER__SECTION__KEY=value`) and CLI flags (`--set section.key=value`). Values given
as strings are parsed as YAML scalars, so `--set corpus.num_shards=4` gives an int.

Secrets never live in these files: every credential is named by an environment variable
(`*_env` fields) and read at the point of use.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CatalogConfig(Section):
    # Local path or fsspec URL; relative paths resolve against `data_root`.
    root: str = "catalog"


class DaskConfig(Section):
    # None: start a LocalCluster with the settings below; else connect to this scheduler.
    scheduler_address: str | None = None
    n_workers: int = Field(2, ge=1)
    threads_per_worker: int = Field(1, ge=1)
    memory_limit: str = "4GiB"


class CorpusConfig(Section):
    num_shards: int = Field(8, ge=1)
    # Passages: windows of `passage_words` words, consecutive windows share `passage_overlap`.
    passage_words: int = Field(160, ge=16)
    passage_overlap: int = Field(32, ge=0)
    max_title_chars: int = Field(512, ge=16)
    # Texts longer than this many UTF-8 bytes are truncated on a character boundary.
    max_doc_bytes: int = Field(1_000_000, ge=1024)
    # Records whose raw line exceeds this are quarantined as oversize, not parsed.
    max_record_bytes: int = Field(16_000_000, ge=1024)
    min_text_chars: int = Field(1, ge=1)
    batch_rows: int = Field(10_000, ge=1)
    # Canonical URLs longer than this (UTF-8 bytes) are quarantined: a key cannot be cut.
    max_url_bytes: int = Field(4096, ge=64)
    # Ingest commits a catalog part every this many input records (the resume granularity).
    ingest_chunk_records: int = Field(250_000, ge=1)
    # DuckDB memory cap per dedup task, and for the global text-duplicate pass in the flow
    # process (both spill to disk beyond it, so it bounds their RSS whatever the corpus size).
    dedup_memory_limit: str = "512MB"


class EmbeddingConfig(Section):
    # BGE-M3-format model directory (HF weights + colbert_linear.pt + sparse_linear.pt).
    model_path: str | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    batch_size: int = Field(64, ge=1)
    max_length: int = Field(512, ge=8)
    fp16: bool = True  # used on GPU only


class FusionConfig(Section):
    method: Literal["rrf", "weighted"] = "rrf"
    rrf_k: int = Field(60, ge=1)
    # Weights for the weighted method (the reference used 0.7 sparse / 1.0 dense).
    weights: dict[str, float] = Field(
        default_factory=lambda: {"bm25": 1.0, "dense": 1.0, "sparse": 0.7}
    )
    # Each route retrieves `candidate_multiplier * top_k` candidates before fusion.
    candidate_multiplier: int = Field(4, ge=1)


class IndexConfig(Section):
    retrieval_mode: Literal["bm25", "dense", "sparse", "hybrid"] = "bm25"
    lexical_backend: Literal["tantivy", "milvus"] = "tantivy"
    tantivy_path: str = "index/tantivy"
    # tantivy writer: total indexing heap and threads (0: tantivy picks per CPU count). One
    # thread: the build's Python side feeding the writer is the bottleneck, and one indexing
    # thread held half the anonymous memory of two at the same speed (docs/BENCHMARKS.md).
    tantivy_heap_mb: int = Field(128, ge=16)
    tantivy_threads: int = Field(1, ge=0)
    # build-env commits the lexical index (and records those shards as loaded) every this
    # many shards. 1 for tantivy: larger groups make fewer but larger segments, whose merges
    # map more of the index at once (measured: more peak RSS, not less; docs/BENCHMARKS.md).
    load_commit_shards: int = Field(1, ge=1)
    # Milvus Lite file path (local) or server URI (cluster, e.g. http://milvus:19530).
    milvus_uri: str = "index/milvus.db"
    milvus_token_env: str = "MILVUS_TOKEN"
    collection: str = "passages"
    dense_dim: int = Field(1024, ge=1)
    fusion: FusionConfig = Field(default_factory=FusionConfig)


class PageStoreConfig(Section):
    backend: Literal["duckdb", "postgres"] = "duckdb"
    duckdb_path: str = "pages.duckdb"
    # DuckDB's buffer pool cap (its default is 80% of RAM, which a large load would fill).
    duckdb_memory_limit: str = "256MB"
    # libpq connection string without a password; the password comes from PGPASSWORD.
    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    table: str = "pages"
    pool_min: int = Field(1, ge=0)
    pool_max: int = Field(16, ge=1)
    # PostgreSQL: longest wait for a pooled connection (and the connect timeout); past it a
    # request gets 503.
    pool_timeout_s: float = Field(10.0, gt=0)


class CacheConfig(Section):
    enabled: bool = True
    backend: Literal["lru", "redis"] = "lru"
    lru_size: int = Field(100_000, ge=1)
    redis_url: str = "redis://127.0.0.1:6379/0"
    ttl_s: int = Field(86_400, ge=1)


class EnvServiceConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=1, le=65535)
    # Where clients reach the service (default: http://{host}:{port}).
    url: str | None = None
    api_key_env: str = "LITERESEARCHER_API_KEY"
    top_k: int = Field(10, ge=1, le=100)
    max_queries_per_call: int = Field(10, ge=1)
    max_urls_per_call: int = Field(10, ge=1)
    max_url_chars: int = Field(2048, ge=16)
    max_query_chars: int = Field(1024, ge=1)
    snippet_chars: int = Field(300, ge=40)
    visit_token_budget: int = Field(8192, ge=64)
    max_goal_chars: int = Field(4096, ge=16)
    # HF tokenizer directory for visit token budgets; None: a deterministic regex tokenizer.
    tokenizer_path: str | None = None
    # Query-embedding micro-batching (dense/sparse routes): largest batch, longest wait.
    embed_max_batch: int = Field(64, ge=1)
    embed_max_wait_ms: float = Field(2.0, ge=0)
    # Worker threads for store calls; 0 runs them on the event loop (fastest for embedded
    # stores on few cores, but an engine that hangs then stalls every request).
    store_threads: int = Field(4, ge=0)
    # uvicorn worker processes of `literesearcher serve` (each opens the stores read-only and
    # keeps its own in-process LRU cache and metrics); about one per core.
    workers: int = Field(1, ge=1)
    # Role name in `llm.endpoints` used for goal-directed visit extraction; None: extractive.
    extractor: str | None = None
    client_timeout_s: float = Field(30.0, gt=0)
    client_retries: int = Field(3, ge=0)

    def base_url(self) -> str:
        return self.url or f"http://{self.host}:{self.port}"


class LLMEndpoint(Section):
    # An OpenAI-compatible server; several base URLs are load-balanced.
    base_urls: list[str] = Field(default_factory=list)
    model: str = ""
    api_key_env: str | None = None
    max_concurrency: int = Field(32, ge=1)
    timeout_s: float = Field(120.0, gt=0)
    retries: int = Field(3, ge=0)


class LLMConfig(Section):
    # Roles: policy, judge, synthesizer, extractor, teacher. A role missing here falls back to
    # the local model (policy) or to the non-LLM path (judge: exact match; extractor: extractive).
    endpoints: dict[str, LLMEndpoint] = Field(default_factory=dict)
    local_policy_path: str | None = None
    device: str = "auto"
    # A local policy batches up to this many concurrent requests of about the same prompt
    # length into one `generate` call (rl.concurrency bounds how many are in flight).
    local_max_batch: int = Field(8, ge=1)
    # The local backend holds the keys and values of recent rows (LRU, this many tokens; 0:
    # off), so an episode's next turn prefills only its reply and the tool response
    # (rl.backends.decoding.PrefixStore; ~1 KB a token for the tiny policy).
    local_prefix_cache_tokens: int = Field(65536, ge=0)
    # CPU (ignored with a warning on a GPU): > 1 generates in that many processes of one
    # torch thread each, the policy's weights sent to them whenever they change
    # (rl.backends.workers). A small model's decoding is bound by per-op overhead, which a
    # second thread does not share but a second process does; each holds a copy of the model.
    local_workers: int = Field(1, ge=1)


class RLConfig(Section):
    # Episode limits (stage-1 values of the reference; stage 2 raises them per run).
    max_turns: int = Field(40, ge=1)
    max_tokens_per_turn: int = Field(2048, ge=1)
    max_context_tokens: int = Field(32_768, ge=64)
    timeout_s: float = Field(1800.0, gt=0)
    max_malformed_turns: int = Field(3, ge=1)
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    # Generation stops where the model starts to imagine a tool response.
    stop: list[str] = Field(default_factory=lambda: ["<tool_response>"])
    # completion: we render the raw prompt (what the trainer sees); chat: the server's template.
    prompt_mode: Literal["completion", "chat"] = "completion"
    # Date shown in the system prompt (YYYY-MM-DD); None: today.
    date: str | None = None
    # Tokenizer that counts context tokens; None: llm.local_policy_path.
    tokenizer_path: str | None = None
    # Rollouts: k samples per task, episodes in flight, finished episodes per catalog part.
    k: int = Field(8, ge=1)
    concurrency: int = Field(8, ge=1)
    part_size: int = Field(64, ge=1)
    # auto: the LLM judge when llm.endpoints.judge is configured, else exact match.
    judge_mode: Literal["auto", "llm", "exact_match", "token_f1"] = "auto"
    judge_fallback: Literal["exact_match", "none"] = "exact_match"
    judge_parse_retries: int = Field(2, ge=0)
    f1_threshold: float = Field(0.5, ge=0, le=1)
    # `literesearcher llm serve`: where the local OpenAI-compatible server listens.
    serve_host: str = "127.0.0.1"
    serve_port: int = Field(8000, ge=1, le=65535)

    @field_validator("date", mode="before")
    @classmethod
    def _iso_date(cls, v: object) -> object:
        # YAML reads 2026-05-01 as a date; the prompt wants its ISO text.
        return v.isoformat() if isinstance(v, datetime.date) else v


class MLflowConfig(Section):
    # None: a sqlite store under data_root (mlflow.db) with artifacts in data_root/mlartifacts.
    tracking_uri: str | None = None
    experiment: str = "literesearcher"
    # The registered model whose versions are the finished stage checkpoints (tags:
    # catalog_version, curriculum, stage); the nightly eval takes the newest version.
    registered_model: str = "literesearcher-policy"
    # Log each finished stage's HF checkpoint as artifacts of its run (the registered version's
    # source); False registers the catalog folder instead (no copy into the artifact store).
    log_checkpoints: bool = True


class PrefectConfig(Section):
    # None: run flows on an ephemeral in-process server (the local default).
    api_url: str | None = None
    home: str = "prefect"
    result_storage: str = "prefect-results"
    work_pool: str = "literesearcher-process"


class StageSelection(Section):
    """Which difficulty buckets a stage trains on (the defaults take every kept task)."""

    # None: every capability; else only these.
    capabilities: list[str] | None = None
    # Inclusive pass-rate range over the kept tasks (all have 0 < pass rate < 1).
    min_pass_rate: float = Field(0.0, ge=0, le=1)
    max_pass_rate: float = Field(1.0, ge=0, le=1)
    # None: every trajectory-token bin; else bin labels (e.g. "<16K", "16K-32K").
    token_bins: list[str] | None = None
    # Target shares per capability (normalized); None: no re-mixing. A capability with fewer
    # tasks than its share gives all it has (the stage is then smaller, the others not raised).
    mix: dict[str, float] | None = None
    max_tasks: int | None = Field(None, ge=1)
    # Part `part` of `parts` (1-based): the kept tasks split into `parts` disjoint parts by a
    # seeded hash of the task id that every stage shares, so stages with the same `parts` and
    # different `part`s never train on the same task, whatever their other filters. 1 of 1:
    # every task.
    part: int = Field(1, ge=1)
    parts: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _part_in_parts(self) -> StageSelection:
        if self.part > self.parts:
            raise ValueError(f"part {self.part} of {self.parts}: part must be 1..parts")
        return self


class StageConfig(Section):
    """One curriculum RL stage (an OpenRLHF `train_ppo_ray` run, or the local GRPO loop)."""

    name: str
    # Difficulty buckets of this stage's dataset (flow `filter_difficulty`).
    select: StageSelection = Field(default_factory=StageSelection)
    # None: start from the previous stage's HF output (stage 1: the SFT output or base policy).
    model_path: str | None = None
    # JSONL with `input_key` (the question) and `label_key` (JSON: answer, mask_urls, ...);
    # None: the curriculum flow fills in the stage's dataset from the catalog.
    prompt_dataset: str | None = None
    input_key: str = "question"
    label_key: str = "label"
    max_turns: int = Field(40, ge=1)
    max_tokens_per_turn: int = Field(2048, ge=16)
    max_prompt_tokens: int = Field(4096, ge=16)
    max_response_tokens: int = Field(32_768, ge=16)
    temperature: float = Field(0.7, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    n_samples_per_prompt: int = Field(8, ge=2)
    rollout_batch_size: int = Field(256, ge=1)  # prompts per rollout step
    train_batch_size: int = Field(256, ge=1)
    micro_train_batch_size: int = Field(1, ge=1)
    micro_rollout_batch_size: int = Field(1, ge=1)
    num_episodes: int = Field(1, ge=1)
    lr: float = Field(1e-6, gt=0)
    lr_scheduler: str = "constant"
    eps_clip_low: float = Field(0.2, ge=0)
    eps_clip_high: float = Field(0.4, ge=0)
    kl_coef: float = Field(0.0, ge=0)
    dynamic_filtering: bool = False
    dynamic_filtering_range: tuple[float, float] = (0.0, 1.0)
    max_norm: float = Field(1.0, gt=0)
    save_steps: int = Field(10, ge=-1)
    # Cluster shape (OpenRLHF only).
    num_nodes: int = Field(1, ge=1)
    gpus_per_node: int = Field(8, ge=1)
    vllm_num_engines: int = Field(8, ge=0)
    vllm_tensor_parallel_size: int = Field(1, ge=1)
    vllm_gpu_memory_utilization: float = Field(0.6, gt=0, le=1)
    colocate_all: bool = True
    zero_stage: int = Field(3, ge=0, le=3)
    seed: int = 42

    @property
    def max_len(self) -> int:
        """`--data.max_len`: prompt plus the whole multi-turn response."""
        return self.max_prompt_tokens + self.max_response_tokens


def _default_stages() -> list[StageConfig]:
    # The reference's two stages (REFERENCE_NOTES.md, "Curriculum" and limits).
    return [
        StageConfig(name="stage1"),
        StageConfig(
            name="stage2",
            max_turns=60,
            max_tokens_per_turn=4096,
            max_response_tokens=49_152,
            temperature=1.0,
            rollout_batch_size=128,
            train_batch_size=128,
        ),
    ]


class SFTConfig(Section):
    """The optional cold start on judge-verified teacher trajectories."""

    enabled: bool = False
    # None: the base policy (`llm.local_policy_path` locally).
    model_path: str | None = None
    dataset: str | None = None
    max_len: int = Field(32_768, ge=16)
    epochs: int = Field(2, ge=1)
    lr: float = Field(5e-6, gt=0)
    batch_size: int = Field(64, ge=1)
    micro_batch_size: int = Field(1, ge=1)
    max_norm: float = Field(1.0, gt=0)
    save_steps: int = Field(50, ge=-1)
    num_gpus_per_node: int = Field(8, ge=1)
    seed: int = 42
    # The local loop's forward passes under bf16 autocast (weights and optimizer stay fp32).
    # On the 2-core CI CPU (AMX) it made the demo's SFT slower, 228 s vs 201 s, while the
    # pretraining's fixed-shape steps gain 1.2-1.3x (docs/BENCHMARKS.md, session 8); meant
    # for a GPU. OpenRLHF trains in bf16 anyway.
    bf16_autocast: bool = False


class LocalTrainerConfig(Section):
    """The in-process GRPO/SFT loops of the `local` profile (CPU or one GPU)."""

    # Batch shape comes from the stage: B = rollout_batch_size prompts, G = n_samples_per_prompt.
    device: str = "auto"
    total_steps: int = Field(20, ge=1)
    ppo_epochs: int = Field(1, ge=1)
    micro_batch_size: int = Field(8, ge=1)
    save_every: int = Field(10, ge=1)
    keep_last: int = Field(2, ge=1)
    weight_decay: float = Field(0.0, ge=0)
    # With a stage's dynamic_filtering: batches of B prompts drawn per step at most while
    # fewer than B groups with signal were found (OpenRLHF draws until it has B).
    dynamic_filtering_max_rounds: int = Field(4, ge=1)
    # Of those, rolled out together: one generation batch of several rounds instead of
    # rounds one after another; a round past the one that completed the B groups is dropped
    # (its prompts are the next step's), so the groups trained on are the same. 1: one round
    # at a time. In the demo (local backend, CPU) 3 at once made the RL stages slower (423 s
    # vs 306 s; ~45% of the rollouts dropped, docs/BENCHMARKS.md "Session 15").
    dynamic_filtering_parallel_rounds: int = Field(1, ge=1)
    # GRPO leaves the token embeddings and the LM head (tied or not) as they are.
    freeze_embeddings: bool = False


class DifficultyConfig(Section):
    """Difficulty filtering (flow `filter_difficulty`): pass@k, buckets, held-out split."""

    k: int | None = Field(None, ge=2)  # None: rl.k
    # Mean-trajectory-token bin edges: <16K, 16K-32K, 32K-48K, 48K-64K, >=64K.
    token_bins: list[int] = Field(default_factory=lambda: [16_384, 32_768, 49_152, 65_536])
    # Pass-rate bin edges inside (0, 1): [0, .25), [.25, .5), [.5, .75), [.75, 1].
    pass_rate_bins: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75])
    # Roll out at most this many training tasks (a seeded subset by task id hash; None: all).
    max_tasks: int | None = Field(None, ge=1)
    # Kept: tasks solved min_correct..max_correct times of k (None: k - 1). The defaults keep
    # the partially solvable ones; min_correct 0 also keeps unsolved tasks (their groups get
    # zero advantage: useful only to exercise the pipeline with an untrained policy).
    min_correct: int = Field(1, ge=0)
    max_correct: int | None = Field(None, ge=0)
    # Sampling temperature of the pass@k rollouts; None: rl.temperature.
    temperature: float | None = Field(None, ge=0)
    # Share of tasks_filtered held out (by hash of task id) before rollouts, for evaluation.
    heldout_fraction: float = Field(0.2, ge=0, lt=1)
    seed: int = 0

    @field_validator("token_bins", "pass_rate_bins")
    @classmethod
    def _increasing(cls, v: list[float]) -> list[float]:
        if any(v[i + 1] <= v[i] for i in range(len(v) - 1)) or any(x <= 0 for x in v):
            raise ValueError(f"bin edges must be positive and strictly increasing, got {v}")
        return v


class CurriculumConfig(Section):
    trainer: Literal["local", "openrlhf"] = "local"
    difficulty: DifficultyConfig = Field(default_factory=DifficultyConfig)
    output_root: str = "checkpoints"
    sft: SFTConfig = Field(default_factory=SFTConfig)
    stages: list[StageConfig] = Field(default_factory=_default_stages)
    local: LocalTrainerConfig = Field(default_factory=LocalTrainerConfig)
    # A failed stage task is retried this many times; each retry resumes from its checkpoint.
    stage_retries: int = Field(1, ge=0)
    # An RL stage whose curriculum_stage holds no task (the policy solved none of the probed
    # tasks partially): False, an error that says why; True, the stage is committed untrained
    # (its model is the one it started from, 0 steps) with a warning, and the run goes on.
    skip_empty_stages: bool = False
    # Keep a stage's training work dir (`<output_root>/<stage>-<key>`: intermediate
    # checkpoints with optimizer state) after its `checkpoints` version is committed. By
    # default it is removed then: the committed model is hard-linked (or copied) out of it,
    # and a committed stage is never resumed.
    keep_work_dirs: bool = False
    # OpenRLHF on Ray (cluster profile).
    ray_address: str = "http://127.0.0.1:8265"
    tensorboard_dir: str = "tensorboard"
    # Executables on the Ray workers: the Python that runs `openrlhf.cli.train_ppo_ray` and
    # the DeepSpeed launcher that runs `openrlhf.cli.train_sft`.
    python: str = "python3"
    deepspeed: str = "deepspeed"
    # Seconds between job status polls (TensorBoard scalars are forwarded at each poll).
    poll_s: float = Field(30.0, gt=0)

    def selected_capabilities(self) -> list[str] | None:
        """The capabilities some RL stage may train on (the union of the stages' selections);
        None where a stage takes every capability. The difficulty probe rolls out only these."""
        chosen: set[str] = set()
        for stage in self.stages:
            if stage.select.capabilities is None:
                return None
            chosen.update(stage.select.capabilities)
        return sorted(chosen)


class SynthesisConfig(Section):
    # Task synthesis (flow `synthesize_tasks`) and its quality filters.
    world_dir: str = "world"  # a generated virtual world (`literesearcher world generate`)
    per_capability: int = Field(50, ge=1)
    seed: int = 0
    capabilities: list[str] = Field(
        default_factory=lambda: [
            "direct_retrieval",
            "aggregation",
            "enumeration",
            "cross_verification",
            "statistics",
        ]
    )
    max_answer_chars: int = Field(20, ge=1)
    max_answer_words: int = Field(6, ge=1)
    # No one answer is the gold answer of more than this share of a capability's tasks, so
    # the commonest answer is a poor guess: without it, "2" answered 60% of the demo world's
    # "How many ...?" questions, and RL learned to say "2" (docs/BENCHMARKS.md, session 9).
    max_answer_share: float = Field(0.25, gt=0, le=1)
    near_dup_threshold: float = Field(0.8, gt=0, le=1)
    # Snippets the leakage filter reads: the first results a searcher reads (3 keeps about a
    # quarter of direct-retrieval tasks on a 3,000-page world; 10 kept 13%, see README).
    leakage_top_k: int = Field(3, ge=1)
    answerability_top_k: int = Field(10, ge=0)
    judge_role: str = "judge"  # `llm.endpoints` role of the rubric judge; absent: skipped
    work_dir: str = "synthesis"  # the filters' page store and lexical index over the world


# The end-to-end flow's stages, in order (flows/reproduce.py; `literesearcher demo --from`).
PIPELINE_STAGES = ("world", "build_env", "synthesize", "teacher", "sft", "filter", "rl", "eval")


class PipelineConfig(Section):
    # The end-to-end flow `reproduce` (`literesearcher demo`).
    world_pages: int = Field(20_000, ge=10)  # the virtual world: corpus and ground truth
    world_seed: int = 0
    teacher_tasks: int = Field(0, ge=0)  # training tasks the teacher solves; 0: all
    # The teacher leaves the training tasks the difficulty probe rolls out (the seeded
    # `curriculum.difficulty.max_tasks` subset) undemonstrated, so the RL stages train on tasks
    # the SFT data never showed, as the held-out ones are. Off: the probe keeps mostly tasks
    # whose answers SFT taught (all 15 of seed 0's RL tasks in session 10).
    teacher_skips_probed: bool = False
    # Keep only teacher trajectories whose tool responses show the gold answer.
    teacher_grounded: bool = False
    # The teacher's concluding thought quotes the visited page up to the answer ("The page says:
    # ... was established in 1903"), so the policy's answer is a copy of its own last words.
    teacher_quotes: bool = False
    # The teacher writes its answer as the visited page spells it, space before it included, so
    # the answer's tokens are the page's (rl.teacher.TeacherConfig.answer_as_page).
    teacher_answers_as_page: bool = False
    # 0: the teacher visits an evidence page (its choice, which the policy cannot see the reason
    # for); N: it visits the top N search results in one call, in rank order, and answers from
    # whichever states the answer (rl.teacher.TeacherConfig.visit_results).
    teacher_visits_results: int = Field(0, ge=0)
    # More SFT data: the teacher also solves every task synthesized on this many OTHER worlds
    # (seeds `flows.reproduce.teacher_world_seed`, never a demo or pretraining world; each
    # with its own local web and env_service), so a small policy sees thousands of different
    # entities and has to read them off its context instead of memorizing the training tasks.
    # None of their tasks is evaluated (the held-out set is the main world's).
    teacher_worlds: int = Field(0, ge=0)
    teacher_world_pages: int = Field(20_000, ge=10)
    teacher_world_per_capability: int = Field(600, ge=1)
    # The starting policy: an HF dir; None: the tiny policy built from the world, its sizes
    # (literesearcher.tiny_models.TinySizes fields, e.g. policy_layers, or pretrain_steps for
    # the copy pretraining on another world's text) overridden here.
    base_model: str | None = None
    policy_sizes: dict[str, int | float | str] = Field(default_factory=dict)
    eval_k: int = Field(1, ge=1)  # samples per held-out question


class Settings(Section):
    profile: str = "local"
    data_root: Path = Path(".literesearcher")
    seed: int = 0
    catalog: CatalogConfig = Field(default_factory=CatalogConfig)
    dask: DaskConfig = Field(default_factory=DaskConfig)
    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    page_store: PageStoreConfig = Field(default_factory=PageStoreConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    env_service: EnvServiceConfig = Field(default_factory=EnvServiceConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    rl: RLConfig = Field(default_factory=RLConfig)
    mlflow: MLflowConfig = Field(default_factory=MLflowConfig)
    prefect: PrefectConfig = Field(default_factory=PrefectConfig)
    curriculum: CurriculumConfig = Field(default_factory=CurriculumConfig)
    synthesis: SynthesisConfig = Field(default_factory=SynthesisConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)

    def path(self, value: str | Path) -> Path:
        """Resolve a configured path: absolute stays, relative joins `data_root`."""
        p = Path(os.path.expanduser(str(value)))
        return p if p.is_absolute() else (self.data_root / p)

    def uri(self, value: str) -> str:
        """Like `path` but leaves URLs (anything with `://`) alone."""
        return value if "://" in value else str(self.path(value))

    def portable(self, value: str | Path) -> str:
        """A local path as a cache key should hold it: `$data_root/<relative>` when it lies
        inside `data_root` (so a copied or moved data root finds its versions again), else
        the resolved absolute path. A relative `value` is a configured one (relative to
        `data_root`, as `path` reads it): pass other paths resolved."""
        resolved = self.path(value).resolve()
        try:
            return f"$data_root/{resolved.relative_to(self.data_root.resolve()).as_posix()}"
        except ValueError:
            return str(resolved)

    def unportable(self, value: str) -> Path:
        """The local path a `portable` name stands for under this `data_root`."""
        prefix = "$data_root/"
        return self.data_root / value[len(prefix) :] if value.startswith(prefix) else Path(value)

    def mlflow_tracking_uri(self) -> str:
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        return f"sqlite:///{self.path('mlflow.db').resolve()}"
