"""Agent-harness benchmarks (issue 6).

1. Harness overhead per tool call: episodes driven by `rl.episode.run_episode` through the
   OpenAI-compatible HTTP backend (a simulated-latency server in its own process) against a
   real env_service (tantivy + DuckDB, its own process), versus a baseline that replays the
   very same HTTP requests with no protocol work (no rendering, parsing, token counting,
   trajectory records). Overhead = (harness - baseline) / tool calls, sequential episodes.
2. Rollout throughput with the tiny local policy (LocalHFBackend on CPU) through
   `rl.rollout.rollout_async`, versus raw `model.generate` on the same prompt sizes.

    .venv/bin/python bench/harness_overhead.py [--episodes 30] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import Request  # module level: FastAPI resolves the string annotations here

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TURNS = [  # the simulated policy's episode: 5 tool calls, then the answer
    '{"name": "search", "arguments": {"query": ["river flows city 1", "mountain height 2"]}}',
    '{"name": "visit", "arguments": {"url": ["https://bench.example.org/p/1"], "goal": "facts"}}',
    '{"name": "search", "arguments": {"query": ["nobel prize physics 3"]}}',
    '{"name": "visit", "arguments": {"url": ["https://bench.example.org/p/7", '
    '"https://bench.example.org/p/9"], "goal": "year"}}',
    '{"name": "search", "arguments": {"query": ["galaxy astronomer 5"]}}',
]


def sim_turn(n_assistant: int) -> str:
    think = "<think>\n" + "Reasoning about the evidence so far. " * 20 + "\n</think>\n\n"
    if n_assistant < len(TURNS):
        return f"{think}<tool_call>\n{TURNS[n_assistant]}\n</tool_call>"
    return f"{think}<answer>river 1</answer>"


def sim_llm_app(latency_s: float) -> Any:
    """An OpenAI-compatible server that waits `latency_s` and answers the scripted turn."""
    from fastapi import FastAPI

    app = FastAPI()

    def envelope(text: str, chat: bool) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        usage = {"prompt_tokens": 100, "completion_tokens": 120, "total_tokens": 220}
        return {"id": "x", "object": "x", "model": "sim", "choices": [choice], "usage": usage}

    @app.post("/v1/completions")
    async def completions(request: Request) -> dict[str, Any]:
        body = await request.json()
        await asyncio.sleep(latency_s)
        n = body["prompt"].count("<|im_start|>assistant\n") - 1
        return envelope(sim_turn(n), chat=False)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        body = await request.json()
        await asyncio.sleep(latency_s)
        n = sum(1 for m in body["messages"] if m["role"] == "assistant")
        return envelope(sim_turn(n), chat=True)

    return app


def env_settings(root: Path) -> Any:
    from conf import load_settings

    return load_settings("local", [f"data_root={root}", "cache.enabled=false"])


def build_env(root: Path, n_pages: int) -> None:
    from env_service.stores.base import Page
    from literesearcher.testing import write_local_web

    words = ["river", "flows", "city", "mountain", "height", "nobel", "prize", "physics",
             "galaxy", "astronomer", "year", "born", "capital", "museum", "bridge"]  # fmt: skip
    pages = []
    for i in range(n_pages):
        text = " ".join(f"{words[(i * 7 + j) % len(words)]} {i + j}" for j in range(300))
        pages.append(Page(f"https://bench.example.org/p/{i}", f"Page {i}", text))
    write_local_web(env_settings(root), pages, words=160, overlap=32)


def serve_main(kind: str, arg: str, port: int) -> None:
    import uvicorn

    if kind == "env":
        from env_service.app import create_app

        app = create_app(env_settings(Path(arg)))
    else:
        app = sim_llm_app(float(arg))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def start(kind: str, arg: str) -> tuple[subprocess.Popen[bytes], str]:
    from literesearcher.testing import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, arg, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(url + ("/health" if kind == "env" else "/docs"), timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


async def paired_run(llm_url: str, env_url: str, episodes: int, count: Any) -> dict[str, Any]:
    """Each episode through the harness, then the same requests replayed bare (bodies built
    before timing): pairing episode by episode cancels the drift of a shared, loaded machine."""
    import httpx

    from env_service.client import EnvClient
    from rl.backends.openai_http import OpenAIHTTPBackend
    from rl.episode import AgentTask, EpisodeConfig, run_episode
    from rl.judge import Judge

    backend = OpenAIHTTPBackend([f"{llm_url}/v1"], "sim")
    cfg = EpisodeConfig(max_turns=10, max_tokens_per_turn=512, max_context_tokens=1 << 20,
                        date="2026-05-01")  # fmt: skip
    mask = ["https://bench.example.org/p/3"]
    harness = baseline = io = 0.0
    calls = 0
    async with EnvClient(env_url) as env, httpx.AsyncClient(timeout=60) as http:
        for i in range(episodes):
            task = AgentTask(id=f"t{i}", question=f"Which river flows through city {i}?",
                             answers=["river 1"], mask_urls=mask)  # fmt: skip
            t0 = time.perf_counter()
            traj = await run_episode(task, backend, env, cfg, count, judge=Judge())
            harness += time.perf_counter() - t0
            if not traj.correct:
                raise RuntimeError(f"episode failed: {traj.termination} {traj.error}")
            calls += len(traj.tool_calls)
            io += sum(t.gen_latency_s + t.tool_latency_s for t in traj.turns)
            plan = _replay_plan(traj)
            t0 = time.perf_counter()
            for body, turn_calls in plan:
                (await http.post(f"{llm_url}/v1/completions", json=body)).json()
                for c in turn_calls:
                    if c.name == "search":
                        await env.search(c.queries, mask_urls=mask)
                    else:
                        await env.visit(c.urls, c.goal, mask_urls=mask)
            baseline += time.perf_counter() - t0
    await backend.aclose()
    return {"harness_s": harness, "baseline_s": baseline, "calls": calls,
            "overhead_ms_per_call": 1000 * (harness - baseline) / calls,
            "self_time_ms_per_call": 1000 * (harness - io) / calls}  # fmt: skip


def _replay_plan(traj: Any) -> list[tuple[dict[str, Any], list[Any]]]:
    from rl.protocol import parse_assistant_turn, render_raw

    plan = []
    for i, turn in enumerate(traj.turns):
        body = {"model": "sim", "prompt": render_raw(traj.messages[: 2 + 2 * i]),
                "max_tokens": 512, "temperature": 0.7, "top_p": 1.0,
                "stop": ["<tool_response>"]}  # fmt: skip
        plan.append((body, parse_assistant_turn(turn.text).valid_calls))
    return plan


async def throughput(
    policy_dir: Path, env_url: str, n_tasks: int, k: int, max_batch: int = 8
) -> dict[str, Any]:
    from data_catalog import Catalog
    from env_service.client import EnvClient
    from rl.backends.base import SamplingParams
    from rl.backends.local_hf import LocalHFBackend
    from rl.episode import AgentTask, EpisodeConfig
    from rl.judge import Judge
    from rl.protocol import render_raw
    from rl.rollout import rollout_async

    backend = LocalHFBackend(policy_dir, device="cpu", max_batch=max_batch)
    tasks = [AgentTask(id=f"q{i}", question=f"Which river flows through city {i}?",
                       answers=["river 1"]) for i in range(n_tasks)]  # fmt: skip
    cfg = EpisodeConfig(max_turns=3, max_tokens_per_turn=32, max_context_tokens=8192,
                        max_malformed_turns=3, temperature=1.0, date="2026-05-01")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        async with EnvClient(env_url) as env:
            t0 = time.perf_counter()
            res = await rollout_async(
                tasks, backend, env, k, catalog=Catalog(tmp), config=cfg,
                count_tokens=backend.count_tokens, judge=Judge(), policy_id="tiny",
                concurrency=4, part_size=16, progress=False,
            )  # fmt: skip
            wall = time.perf_counter() - t0
        rel = Catalog(tmp).read("rollouts", res.rollouts.version)
        rows = rel.project("messages, completion_tokens").to_arrow_table().to_pylist()
    gen_tokens = sum(r["completion_tokens"] for r in rows)
    # Baseline: the very same prompts (every turn of every episode), generated back to back
    # with no harness, env or catalog in between.
    prompts = [
        render_raw(r["messages"][: 2 + 2 * i])
        for r in rows
        for i in range(sum(1 for m in r["messages"] if m["role"] == "assistant"))
    ]
    t0 = time.perf_counter()
    raw_tokens = 0
    for i, prompt in enumerate(prompts):
        params = SamplingParams(max_tokens=32, temperature=1.0, seed=i)
        raw_tokens += backend.generate_sync(prompt, params).completion_tokens or 0
    raw_wall = time.perf_counter() - t0
    # And batched the way the rollout's concurrency allows (4 prompts per generate call).
    t0 = time.perf_counter()
    batched_tokens = 0
    for i in range(0, len(prompts), 4):
        chunk = prompts[i : i + 4]
        params = SamplingParams(max_tokens=32, temperature=1.0)
        gens = backend.generate_batch_sync(chunk, [params] * len(chunk))
        batched_tokens += sum(g.completion_tokens or 0 for g in gens)
    batched_wall = time.perf_counter() - t0
    return {"raw_batched_tokens_per_s": batched_tokens / batched_wall,
            "episodes": n_tasks * k, "turns": len(prompts), "wall_s": wall,
            "gen_tokens": gen_tokens, "episodes_per_s": n_tasks * k / wall,
            "tokens_per_s": gen_tokens / wall, "raw_wall_s": raw_wall, "raw_tokens": raw_tokens,
            "raw_tokens_per_s": raw_tokens / raw_wall}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--serve", nargs=3, metavar=("KIND", "ARG", "PORT"), help=argparse.SUPPRESS)
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pages", type=int, default=500)
    ap.add_argument("--tasks", type=int, default=4, help="throughput: tasks (k each)")
    ap.add_argument("--k", type=int, default=4)
    args = ap.parse_args()
    if args.serve:
        serve_main(args.serve[0], args.serve[1], int(args.serve[2]))
        return
    from literesearcher.tiny_models import build_tiny_policy
    from rl.tokens import load_token_counter

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_env(root / "env", args.pages)
        policy_dir = build_tiny_policy(root / "policy", seed=0)
        count = load_token_counter(policy_dir)
        env_proc, env_url = start("env", str(root / "env"))
        llm_proc, llm_url = start("llm", str(args.latency_ms / 1000))
        try:
            asyncio.run(paired_run(llm_url, env_url, 3, count))  # warm-up
            rows = [asyncio.run(paired_run(llm_url, env_url, args.episodes, count))
                    for _ in range(args.repeats)]  # fmt: skip
            tp = {f"max_batch={b}": asyncio.run(throughput(policy_dir, env_url, args.tasks, args.k, b))
                  for b in (1, 8)}  # fmt: skip
        finally:
            env_proc.terminate()
            llm_proc.terminate()
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(json.dumps({"overhead_runs": rows, "overhead_median": med, "throughput": tp,
                      "episodes": args.episodes, "latency_ms": args.latency_ms}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
