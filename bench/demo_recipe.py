"""The miniature SFT -> RL recipe (issue 10), run stage by stage with the library functions.

Per seed: virtual world -> local web (DuckDB pages + tantivy) -> env_service in a thread ->
ground-truth tasks (5 capabilities) + quality filters -> train / held-out split (by task id
hash) -> oracle teacher trajectories on train (`rl.teacher`) -> SFT of the tiny policy ->
held-out pass@1 -> GRPO stage 1 -> GRPO stage 2 (`run_local_stage`) -> held-out pass@1.

pass@1 is greedy (temperature 0, one episode per task) on the same held-out tasks after SFT
and after RL; no held-out task is used for training. Every stage's output is cached under
`--work/seed-N/`, so a re-run resumes (pass `--fresh` to redo a seed). The recipe is the
`demo` profile (conf/demo.yaml); `--set key=value` overrides it like the CLI does.

    OMP_NUM_THREADS=1 .venv/bin/python bench/demo_recipe.py --seeds 0 1 2 [--work DIR]

Prints one JSON line per seed and a Markdown table (pass@1 after SFT and after RL, their
spread over seeds, wall time per stage). Each evaluation also reports `research_diagnostics`:
how often the first search query is the question, the first visited URL one a search showed,
the answer present in the tool text, pass@1 per capability and the correct answers seen; and
`teacher_path`: the log-probability that the policy writes the oracle teacher's turns on the
held-out tasks (the teacher runs on them for this only), a measure of progress while pass@1 is
still 0. `sft` also reports the pretraining's copy probes on the SFT checkpoint (does the
induction head survive SFT?). The policy's pretraining is `pipeline.policy_sizes.pretrain_*` (e.g.
`--set pipeline.policy_sizes.pretrain_steps=300`); `--recipe sft_worlds=1` adds another
world's teacher trajectories to the SFT data.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import shutil
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tqdm.auto import tqdm  # noqa: E402

from conf import Settings, load_settings  # noqa: E402
from data_catalog import Catalog  # noqa: E402

# The recipe's knobs that have no home in Settings yet (everything else is conf/demo.yaml:
# policy sizes are `pipeline.policy_sizes`, the grounded teacher `pipeline.teacher_grounded`);
# each can be changed with --recipe key=value.
RECIPE: dict[str, Any] = {
    # RL tasks: train tasks the SFT policy solves sometimes (0 < pass < 1 over
    # `curriculum.difficulty.k` samples at stage 1's temperature), as the difficulty filter
    # keeps them; probed on at most this many train tasks (0: all).
    "difficulty_tasks": 96,
    "sft_only": False,  # stop after the SFT evaluation (probing the SFT budget)
    # SFT data from OTHER worlds (seeds `flows.reproduce.teacher_world_seed(seed, i)`, as
    # `pipeline.teacher_worlds` in the flow): the teacher on every task synthesized there,
    # added to the demo world's train trajectories.
    "sft_worlds": 0,
    "sft_world_pages": 20000,
    "sft_world_per_capability": 600,
}


@contextlib.contextmanager
def serve_env(settings: Settings) -> Iterator[str]:
    """env_service (the real app) on a free local port in a thread; yields its URL."""
    from env_service.app import create_app
    from literesearcher.testing import serve_app

    with serve_app(create_app(settings), startup_timeout_s=60) as url:
        yield url


class Timer:
    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        print(f"[{name}] ...", file=sys.stderr, flush=True)
        yield
        self.times[name] = round(time.perf_counter() - t0, 1)
        print(f"[{name}] {self.times[name]} s", file=sys.stderr, flush=True)


def synthesize(settings: Settings, world: Path, web: Path, recipe: dict[str, Any]) -> list[Any]:
    """Ground-truth tasks + the quality filters (no LLM judge locally), as the flow runs them."""
    from tasks.synthesis import world_web
    from tasks.synthesis.filters import (
        AnswerabilityFilter,
        AnswerFormFilter,
        AnswerInQuestionFilter,
        DedupFilter,
        LeakageFilter,
        run_filters,
    )
    from tasks.synthesis.ground_truth import GroundTruthGenerator

    syn = settings.synthesis
    gen = GroundTruthGenerator(world, seed=syn.seed, max_list_chars=syn.max_answer_chars,
                               max_answer_share=syn.max_answer_share,
                               created="2025-01-01T00:00:00+00:00")  # fmt: skip
    raw = list(gen.generate(syn.capabilities, syn.per_capability))  # type: ignore[arg-type]
    store, index = world_web.open_world_web(web)
    try:
        shown = world_web.lexical_search(
            index, syn.leakage_top_k, snippet_chars=settings.env_service.snippet_chars
        )
        search = world_web.lexical_search(index, max(syn.answerability_top_k, 1))
        steps = [
            AnswerFormFilter(syn.max_answer_chars, syn.max_answer_words),
            AnswerInQuestionFilter(),
            DedupFilter(syn.near_dup_threshold),
            LeakageFilter(shown, top_k=syn.leakage_top_k),
            AnswerabilityFilter(store, search, top_k=syn.answerability_top_k),
        ]
        kept, stats = run_filters(raw, steps)
    finally:
        store.close()
        index.close()
    print(json.dumps({"raw": len(raw), "kept": len(kept), "filters": stats}), file=sys.stderr)
    return kept


def _records(catalog: Catalog, version: str) -> list[dict[str, Any]]:
    rel = catalog.read("rollouts", version)
    return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


async def pass_rates(
    settings: Settings, policy: Path, tasks: list[Any], catalog: Catalog, k: int, temp: float
) -> dict[str, float]:
    """Per-task pass rate of `policy` over k sampled episodes: the difficulty filter's signal."""
    from env_service.client import EnvClient
    from rl.backends.local_hf import LocalHFBackend
    from rl.episode import AgentTask, EpisodeConfig
    from rl.judge import judge_from_settings
    from rl.rollout import rollout_async

    backend = LocalHFBackend(policy, device=settings.llm.device)
    agent_tasks = [AgentTask.model_validate(t.model_dump()) for t in tasks]
    async with EnvClient.from_settings(settings) as env:
        result = await rollout_async(
            agent_tasks, backend, env, k, catalog=catalog,
            config=EpisodeConfig.from_settings(settings, temperature=temp),
            count_tokens=backend.count_tokens, judge=judge_from_settings(settings),
            policy_id=f"difficulty:{policy}", concurrency=settings.rl.concurrency,
            seed=settings.seed, progress=True,
        )  # fmt: skip
    hits: dict[str, list[bool]] = {}
    for r in _records(catalog, result.rollouts.version):
        hits.setdefault(r["task_id"], []).append(bool(r["correct"]))
    return {tid: sum(v) / len(v) for tid, v in hits.items()}


async def evaluate(
    settings: Settings, policy: Path, tasks: list[Any], catalog: Catalog, label: str
) -> dict[str, float]:
    """Greedy pass@1 over `tasks` through the real env_service, as a `rollouts` version."""
    from env_service.client import EnvClient
    from rl.backends.local_hf import LocalHFBackend
    from rl.episode import AgentTask, EpisodeConfig
    from rl.judge import judge_from_settings
    from rl.rollout import rollout_async

    backend = LocalHFBackend(policy, device=settings.llm.device)
    agent_tasks = [AgentTask.model_validate(t.model_dump()) for t in tasks]
    async with EnvClient.from_settings(settings) as env:
        result = await rollout_async(
            agent_tasks, backend, env, 1, catalog=catalog,
            config=EpisodeConfig.from_settings(settings, temperature=0.0),
            count_tokens=backend.count_tokens, judge=judge_from_settings(settings),
            policy_id=f"{label}:{policy}", concurrency=settings.rl.concurrency,
            seed=settings.seed, progress=True,
        )  # fmt: skip
    recs = _records(catalog, result.rollouts.version)
    n = len(recs)
    capability = {t.id: t.capability for t in tasks}
    return {
        "pass_at_1": sum(bool(r["correct"]) for r in recs) / n,
        "tool_calls": sum(r["num_tool_calls"] for r in recs) / n,
        "turns": sum(r["num_turns"] for r in recs) / n,
        "terminations": dict(Counter(r["termination"] for r in recs)),
        **research_diagnostics(recs, capability),
    }


def teacher_path_logprob(policy: Path, trajectories: list[list[Any]]) -> dict[str, Any]:
    """How far the policy is from the oracle's path on held-out tasks, where pass@1 is still 0:
    the log-probability (nats, sampling at temperature 1) that it writes exactly the teacher's
    search turn, visit turn and answer turn, each given the teacher's history, and of the whole
    path (their sum). exp(path) is the chance a sampled episode follows the teacher's path."""
    import math

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rl.protocol import render_raw

    tok = AutoTokenizer.from_pretrained(policy)
    model = AutoModelForCausalLM.from_pretrained(policy).eval()
    eos = tok.eos_token
    turns: list[list[float]] = [[], [], []]
    for messages in trajectories:
        at = [i for i, m in enumerate(messages) if m["role"] == "assistant"][:3]
        if len(at) < 3:
            continue
        for j, i in enumerate(at):
            prefix = render_raw(messages[:i], add_generation_prompt=True)
            start = len(tok(prefix, add_special_tokens=False).input_ids)
            ids = tok(prefix + messages[i]["content"] + eos, add_special_tokens=False).input_ids
            x = torch.tensor([ids])
            with torch.no_grad():
                logp = torch.log_softmax(model(input_ids=x).logits[0, :-1].float(), -1)
            turns[j].append(float(logp[start - 1 :].gather(1, x[0, start:, None]).sum()))
    paths = [sum(t) for t in zip(*turns, strict=True)]
    n = max(1, len(paths))
    mean = lambda v: round(sum(v) / max(1, len(v)), 2)  # noqa: E731
    return {
        "episodes": len(paths),
        "search_turn": mean(turns[0]),
        "visit_turn": mean(turns[1]),
        "answer_turn": mean(turns[2]),
        "path": mean(paths),
        "expected_path_success": round(sum(math.exp(v) for v in paths) / n, 5),
    }


def sft_copying(policy: Path, seed: int, sizes: Any) -> dict[str, float]:
    """Does the induction head survive SFT? The pretraining's copy probes on `policy`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from literesearcher.tiny_models import copy_probe_accuracy

    model = AutoModelForCausalLM.from_pretrained(policy)
    tok = AutoTokenizer.from_pretrained(policy)
    return copy_probe_accuracy(model, tok, seed=seed, sizes=sizes)


def research_diagnostics(recs: list[dict[str, Any]], capability: dict[str, str]) -> dict[str, Any]:
    """Is a correct answer research? Per episode: the first search query equals the question,
    the first visited URL is one a search result showed, the answer (normalized) appears in
    what the tools returned; plus pass@1 per capability and the correct answers seen."""
    from rl.judge import normalize_answer
    from rl.teacher import grounded, search_result_urls

    query_is_q = shown_url = answer_seen = correct_seen = 0
    per_cap: dict[str, list[bool]] = {}
    correct_answers: Counter[str] = Counter()
    for r in recs:
        calls = [(c["name"], c["arguments"]) for c in r["tool_calls"] or []]
        tool_texts = [m["content"] for m in r["messages"] or [] if m["role"] == "tool"]
        searches = [json.loads(a) for name, a in calls if name == "search" and a.startswith("{")]
        visits = [json.loads(a) for name, a in calls if name == "visit" and a.startswith("{")]
        if searches and normalize_answer(str((searches[0].get("query") or [""])[0])) == (
            normalize_answer(r["question"])
        ):
            query_is_q += 1
        shown = {u for t in tool_texts for u in search_result_urls(t)}
        if visits and any(u in shown for u in visits[0].get("url") or []):
            shown_url += 1
        seen = bool(r["answer"]) and grounded([r["answer"]], tool_texts)
        answer_seen += seen
        ok = bool(r["correct"])
        correct_seen += ok and seen
        per_cap.setdefault(capability.get(r["task_id"], "?"), []).append(ok)
        if ok:
            correct_answers[str(r["answer"])] += 1
    n = max(1, len(recs))
    return {
        "query_is_question": round(query_is_q / n, 3),
        "visit_url_shown": round(shown_url / n, 3),
        "answer_in_tool_text": round(answer_seen / n, 3),
        "correct_and_in_tool_text": correct_seen,
        "per_capability": {c: f"{sum(v)}/{len(v)}" for c, v in sorted(per_cap.items())},
        "correct_answers": dict(correct_answers.most_common(10)),
    }


async def teach(url: str, tasks: list[Any], config: Any, settings: Settings) -> Any:
    """The oracle teacher on `tasks` through the env_service at `url`."""
    from env_service.client import EnvClient
    from rl.judge import judge_from_settings
    from rl.teacher import teacher_trajectories

    async with EnvClient(url) as env:
        return await teacher_trajectories(tasks, env, config, judge=judge_from_settings(settings))


def web_overrides(root: Path, web: Path) -> list[str]:
    """Settings for a seed's work dir `root` and the world web at `web` (no response cache)."""
    return [
        f"data_root={root}",
        f"page_store.duckdb_path={web / 'pages.duckdb'}",
        f"index.tantivy_path={web / 'lexical'}",
        "cache.enabled=false",
    ]


def teacher_sft(
    catalog: Catalog, url: str, tasks: list[Any], settings: Settings, extra: dict[str, Any]
) -> tuple[Any, Any]:
    """(`sft_data` manifest, teacher config): the oracle teacher's trajectories on `tasks`
    through the env_service at `url`, found in `catalog` when already written (keyed on the
    tasks, the teacher config, the env's response settings and `extra`)."""
    from rl.teacher import TeacherConfig, find_sft_data, sft_params, write_sft_data

    config = TeacherConfig(
        date=settings.rl.date or "2025-01-01",
        top_k=settings.env_service.top_k,
        require_grounded=settings.pipeline.teacher_grounded,
    )
    env = settings.env_service.model_dump(include={"top_k", "snippet_chars", "visit_token_budget"})
    params = sft_params(tasks, config, {**extra, "env": env})
    sft = find_sft_data(catalog, [], params)
    if sft is None:
        result = asyncio.run(teach(url, tasks, config, settings))
        sft = write_sft_data(catalog, result.trajectories, [], params, result.stats)
    return sft, config


def other_world_messages(
    seed: int, root: Path, catalog: Catalog, overrides: list[str], recipe: dict[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """Teacher trajectories on every task of other worlds (`pipeline.teacher_worlds` in the
    flow; cached in `catalog`)."""
    from flows.reproduce import teacher_world_seed
    from literesearcher.world import generate_world
    from rl.teacher import read_sft_messages
    from tasks.synthesis import world_web

    messages: list[Any] = []
    stats: dict[str, Any] = {}
    for i in range(recipe["sft_worlds"]):
        wseed = teacher_world_seed(seed, i)
        wroot = root / f"sft-world-{i}"
        world, web = wroot / "world", wroot / "web"
        base = [
            *web_overrides(root, web),
            f"synthesis.seed={wseed}",
            f"synthesis.per_capability={recipe['sft_world_per_capability']}",
        ]
        settings = load_settings("demo", [*overrides, *base])
        if not (web / "done").exists():
            generate_world(world, pages=recipe["sft_world_pages"], seed=wseed)
            world_web.build_world_web(world, web, words=settings.corpus.passage_words,
                                      overlap=settings.corpus.passage_overlap)  # fmt: skip
            (web / "done").write_text("")
        tasks = synthesize(settings, world, web, recipe)
        with serve_env(settings) as url:
            sft, _ = teacher_sft(catalog, url, tasks, settings, {"world_seed": wseed})
        msgs = read_sft_messages(catalog, sft)
        stats[str(wseed)] = {"tasks": len(tasks), "trajectories": len(msgs)}
        messages += msgs
    return messages, stats


def run_seed(seed: int, work: Path, overrides: list[str], recipe: dict[str, Any]) -> dict[str, Any]:
    from literesearcher.tiny_models import (
        CODE_VERSION,
        TinySizes,
        build_tiny_policy,
    )
    from literesearcher.world import generate_world
    from rl.teacher import read_sft_messages
    from rl.trainer.local_stage import run_local_sft, run_local_stage
    from tasks.curriculum.difficulty import is_heldout
    from tasks.synthesis import world_web

    root = work / f"seed-{seed}"
    root.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    world, web = root / "world", root / "web"
    base = [
        *web_overrides(root, web),
        f"seed={seed}",
        f"synthesis.seed={seed}",
        f"curriculum.sft.seed={seed}",
    ]
    settings = load_settings("demo", [*base, *overrides])
    catalog = Catalog.from_settings(settings)
    out: dict[str, Any] = {"seed": seed, "recipe": recipe}

    with timer.stage("world"):
        generate_world(world, pages=settings.pipeline.world_pages, seed=seed)
    with timer.stage("local_web"):
        world_web.build_world_web(world, web, words=settings.corpus.passage_words,
                                  overlap=settings.corpus.passage_overlap)  # fmt: skip
    with timer.stage("synthesize"):
        tasks = synthesize(settings, world, web, recipe)
    # The difficulty flow's split (`curriculum.difficulty`): a share of task ids by hash.
    frac, split_seed = settings.curriculum.difficulty.heldout_fraction, seed
    heldout = [t for t in tasks if is_heldout(t.id, frac, split_seed)]
    train = [t for t in tasks if not is_heldout(t.id, frac, split_seed)]
    out["tasks"] = {"train": len(train), "heldout": len(heldout)}

    with serve_env(settings) as url:
        settings = load_settings("demo", [*base, f"env_service.url={url}", *overrides])

        with timer.stage("teacher"):
            sft, teacher_cfg = teacher_sft(catalog, url, train, settings, {})
        out["teacher"] = sft.stats
        messages = read_sft_messages(catalog, sft)
        if recipe["sft_worlds"]:
            with timer.stage("other_worlds"):
                extra, out["other_worlds"] = other_world_messages(
                    seed, root, catalog, overrides, recipe
                )
            messages = messages + extra  # the SFT trainer shuffles per epoch

        sizes = TinySizes.from_overrides(settings.pipeline.policy_sizes)
        out["policy_sizes"] = settings.pipeline.policy_sizes
        # Keyed on the sizes and the builder's version, so a changed policy is never reused
        # (other SFT settings: a new --work or --fresh; same settings resume).
        tag = hashlib.sha256(json.dumps([asdict(sizes), CODE_VERSION]).encode()).hexdigest()[:8]
        with timer.stage("tiny_policy"):
            base_policy = root / "models" / f"tiny-policy-{tag}"
            if not (base_policy / "config.json").exists():
                build_tiny_policy(base_policy, seed=seed, sizes=sizes)

        s = settings.curriculum.sft
        sft_steps = s.epochs * -(-len(messages) // s.batch_size)
        with timer.stage("sft"), tqdm(desc="sft", total=sft_steps, unit="step") as bar:
            losses: list[float] = []

            def on_sft(step: int, m: dict[str, float]) -> None:
                losses.append(m["loss"])
                bar.update(1)
                bar.set_postfix(loss=f"{m['loss']:.3f}")

            sft_ckpt, _ = run_local_sft(
                settings, messages, base_policy, root / f"sft-{tag}", on_sft
            )
        out["sft"] = {"steps": sft_steps, "loss_last": losses[-1] if losses else None,
                      **sft_copying(sft_ckpt, seed, sizes)}  # fmt: skip

        # The teacher on the held-out tasks, for the path diagnostic only (never trained on).
        held_paths = asyncio.run(teach(url, heldout, teacher_cfg, settings)).trajectories
        held_messages = [t.messages for t in held_paths]
        with timer.stage("eval_sft"):
            out["eval_sft"] = asyncio.run(evaluate(settings, sft_ckpt, heldout, catalog, "sft"))
            out["eval_sft"]["teacher_path"] = teacher_path_logprob(sft_ckpt, held_messages)
        print(json.dumps({"seed": seed, "eval_sft": out["eval_sft"]}), file=sys.stderr)

        if recipe["sft_only"]:
            out["times_s"] = timer.times
            out["total_s"] = round(sum(timer.times.values()), 1)
            return out

        k = settings.curriculum.difficulty.k or settings.rl.k
        stage_temp = settings.curriculum.stages[0].temperature
        # A capability-mixed probe: train tasks in task-id order (ids are content hashes).
        probe = sorted(train, key=lambda t: t.id)[: recipe["difficulty_tasks"] or None]
        with timer.stage("difficulty"):
            rates = asyncio.run(pass_rates(settings, sft_ckpt, probe, catalog, k, stage_temp))
        rl_tasks = [t for t in probe if 0 < rates.get(t.id, 0.0) < 1]
        out["difficulty"] = {
            "probed": len(probe), "k": k, "kept": len(rl_tasks),
            "all_pass": sum(rates.get(t.id, 0.0) == 1 for t in probe),
            "none_pass": sum(rates.get(t.id, 0.0) == 0 for t in probe),
        }  # fmt: skip
        print(json.dumps({"seed": seed, "difficulty": out["difficulty"]}), file=sys.stderr)
        if not rl_tasks:  # reported, not hidden: the table shows no RL result for this seed
            print("no train task with 0 < pass < 1 under the SFT policy: no RL signal",
                  file=sys.stderr)  # fmt: skip
            out["times_s"] = timer.times
            out["total_s"] = round(sum(timer.times.values()), 1)
            return out

        policy = sft_ckpt
        rl_train = [t.model_dump() for t in rl_tasks]
        out["stages"] = {}
        for stage in settings.curriculum.stages:
            metrics: list[dict[str, float]] = []
            total = settings.curriculum.local.total_steps
            with timer.stage(stage.name), tqdm(desc=stage.name, total=total, unit="step") as bar:

                def on_step(
                    step: int, m: dict[str, float], bar: Any = bar, seen: list[Any] = metrics
                ) -> None:
                    seen.append(m)
                    bar.update(1)
                    bar.set_postfix(reward=f"{m['reward']:.2f}")

                policy = run_local_stage(
                    settings, stage, rl_train, policy, root / stage.name, on_step
                )
            out["stages"][stage.name] = {
                "reward": [round(m["reward"], 3) for m in metrics],
                "groups_with_signal": [round(m["groups_with_signal"], 2) for m in metrics],
            }
            print(json.dumps({"seed": seed, stage.name: out["stages"][stage.name]}),
                  file=sys.stderr)  # fmt: skip

        with timer.stage("eval_rl"):
            out["eval_rl"] = asyncio.run(evaluate(settings, policy, heldout, catalog, "rl"))
            out["eval_rl"]["teacher_path"] = teacher_path_logprob(policy, held_messages)
    out["times_s"] = timer.times
    out["total_s"] = round(sum(timer.times.values()), 1)
    return out


def table(results: list[dict[str, Any]]) -> str:
    sft = [r["eval_sft"]["pass_at_1"] for r in results]
    rl = [r["eval_rl"]["pass_at_1"] if "eval_rl" in r else float("nan") for r in results]
    stages = list(results[0]["times_s"])
    lines = [
        "| seed | held-out | SFT pass@1 | RL pass@1 | gain | "
        + " | ".join(stages)
        + " | total s |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(stages) + "---:|",
    ]
    for r, a, b in zip(results, sft, rl, strict=True):
        times = " | ".join(f"{r['times_s'][s]:.0f}" for s in stages)
        lines.append(
            f"| {r['seed']} | {r['tasks']['heldout']} | {a:.3f} | {b:.3f} | {b - a:+.3f} | "
            f"{times} | {r['total_s']:.0f} |"
        )
    if len(results) > 1:
        gains = [b - a for a, b in zip(sft, rl, strict=True)]
        lines.append(
            f"| mean ± sd | | {statistics.mean(sft):.3f} ± {statistics.stdev(sft):.3f} | "
            f"{statistics.mean(rl):.3f} ± {statistics.stdev(rl):.3f} | "
            f"{statistics.mean(gains):+.3f} ± {statistics.stdev(gains):.3f} |"
            + " |" * len(stages)
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    # absolute: the work dir becomes data_root, and relative paths in settings resolve against it
    ap.add_argument("--work", type=lambda v: Path(v).absolute(),
                    default=ROOT / ".literesearcher" / "bench" / "demo")  # fmt: skip
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="settings override, section.key=value (repeatable)")  # fmt: skip
    ap.add_argument("--recipe", action="append", default=[],
                    help="recipe knob key=value (JSON value), e.g. policy_layers=4")  # fmt: skip
    ap.add_argument("--fresh", action="store_true", help="delete each seed's work dir first")
    args = ap.parse_args()
    recipe = dict(RECIPE)
    for item in args.recipe:
        key, value = item.split("=", 1)
        if key not in RECIPE:
            raise SystemExit(f"unknown recipe knob {key!r}; known: {', '.join(RECIPE)}")
        recipe[key] = json.loads(value)
    results = []
    for seed in args.seeds:
        if args.fresh:
            shutil.rmtree(args.work / f"seed-{seed}", ignore_errors=True)
        r = run_seed(seed, args.work, args.overrides, recipe)
        print(json.dumps(r), flush=True)
        results.append(r)
    print(table(results))


if __name__ == "__main__":
    main()
