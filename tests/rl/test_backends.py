"""The LLM backends against real things: the tiny HF policy (local backend, tokenizer equality,
the OpenAI-compatible server driven by the official `openai` client) and a local HTTP server
for the retry / load-balancing / concurrency behaviour of the HTTP backend."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from rl_testkit import FakeWeb

from literesearcher.testing import free_port, serve_app
from rl.backends.base import BackendError, LLMBackend, SamplingParams
from rl.backends.local_hf import LocalHFBackend
from rl.backends.openai_http import OpenAIHTTPBackend
from rl.episode import AgentTask, EpisodeConfig, run_episode
from rl.judge import Judge
from rl.llm_server import create_app
from rl.protocol import (
    Termination,
    initial_messages,
    render_assistant_turn,
    render_message_raw,
    render_raw,
    render_tool_turn,
)
from rl.tokens import load_token_counter


@pytest.fixture(scope="module")
def local(tiny_policy: Path) -> LocalHFBackend:
    return LocalHFBackend(tiny_policy, device="cpu")


def _conversation() -> list[dict[str, str]]:
    call = {"name": "search", "arguments": {"query": ["北京 首都", "capital"]}}
    return [
        *initial_messages("中国的首都是哪里?", "2026-05-01"),
        {"role": "assistant", "content": render_assistant_turn("search first", [call])},
        {"role": "tool", "content": render_tool_turn(["result one", "result two"])},
        {"role": "assistant", "content": render_assistant_turn("found it", answer="北京")},
    ]


def test_raw_renderer_equals_the_tiny_models_chat_template(local: LocalHFBackend) -> None:
    msgs = _conversation()
    tok = local.tokenizer
    for n in range(2, len(msgs) + 1):
        assert render_raw(msgs[:n]) == tok.apply_chat_template(
            msgs[:n], add_generation_prompt=True, tokenize=False
        )
        assert render_raw(msgs[:n], False) == tok.apply_chat_template(
            msgs[:n], add_generation_prompt=False, tokenize=False
        )


def test_segment_token_counts_add_up_to_the_whole(tiny_policy: Path) -> None:
    count = load_token_counter(tiny_policy)
    msgs = _conversation()
    assert sum(count(render_message_raw(m)) for m in msgs) == count(render_raw(msgs, False))
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_policy)
    for m in msgs:  # the fast path counts exactly what the HF tokenizer does
        text = render_message_raw(m)
        assert count(text) == len(tok(text, add_special_tokens=False)["input_ids"])


async def test_local_backend_returns_ids_logprobs_and_honours_stops(local: LocalHFBackend) -> None:
    prompt = render_raw(_conversation()[:2])
    params = SamplingParams(max_tokens=12, temperature=1.0, seed=7, logprobs=True)
    a = await local.complete(prompt, params)
    b = await local.complete(prompt, params)
    assert a.text == b.text  # seeded
    assert a.completion_tokens == len(a.token_ids or []) <= 12
    assert a.logprobs is not None and len(a.logprobs) == len(a.token_ids or [])
    assert all(lp <= 0 for lp in a.logprobs)
    assert a.prompt_tokens == local.count_tokens(prompt)
    # Stop strings: the text ends before the earliest one, OpenAI-style.
    stop = a.text[3:6] if len(a.text) > 6 else a.text[:1]
    cut = await local.complete(
        prompt, SamplingParams(max_tokens=12, temperature=1.0, seed=7, stop=(stop,))
    )
    assert cut.finish_reason == "stop" and stop not in cut.text
    assert isinstance(local, LLMBackend)


async def test_concurrent_requests_are_batched_with_the_same_greedy_output(
    local: LocalHFBackend,
) -> None:
    questions = ["Who?", "What is the capital of France, and since when?", "x"]
    prompts = [render_raw(initial_messages(q, "2026-05-01")) for q in questions]
    params = [SamplingParams(max_tokens=n, temperature=0.0) for n in (6, 4, 6)]
    alone = [local.generate_sync(p, sp) for p, sp in zip(prompts, params, strict=True)]
    together = await asyncio.gather(
        *(local.complete(p, sp) for p, sp in zip(prompts, params, strict=True))
    )
    assert {g.extra["batch_size"] for g in together} == {3}
    # Left padding changes nothing: same tokens, same text, own max_tokens per request.
    assert [g.token_ids for g in together] == [g.token_ids for g in alone]
    assert [g.text for g in together] == [g.text for g in alone]
    assert [g.completion_tokens for g in together] == [6, 4, 6]
    assert [g.prompt_tokens for g in together] == [local.count_tokens(p) for p in prompts]


async def test_episode_runs_with_the_local_tiny_policy(
    local: LocalHFBackend, tiny_policy: Path
) -> None:
    task = AgentTask(id="t", question="What is the capital of France?", answers=["Paris"])
    cfg = EpisodeConfig(
        max_turns=3, max_tokens_per_turn=16, max_context_tokens=4096, date="2026-05-01"
    )
    traj = await run_episode(
        task, local, FakeWeb(), cfg, load_token_counter(tiny_policy), judge=Judge()
    )
    # A random tiny model rarely writes a valid action: the runner must still end cleanly.
    assert traj.termination in {t.value for t in Termination}
    assert traj.num_turns >= 1 and all(t.completion_tokens <= 16 for t in traj.turns)
    assert traj.judge_method is not None
    assert traj.raw_text == render_raw(traj.messages, add_generation_prompt=False)


def test_llm_server_answers_the_official_openai_client(local: LocalHFBackend) -> None:
    with serve_app(create_app(local, "tiny")) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list().data] == ["tiny"]
        chat = client.chat.completions.create(
            model="tiny",
            messages=_conversation()[:2],  # type: ignore[arg-type]
            max_tokens=8,
            temperature=0.0,
        )
        assert chat.choices[0].message.role == "assistant"
        assert isinstance(chat.choices[0].message.content, str)
        assert chat.choices[0].finish_reason in ("stop", "length")
        assert chat.usage is not None and 0 < chat.usage.completion_tokens <= 8
        assert chat.usage.prompt_tokens == local.count_tokens(render_raw(_conversation()[:2]))
        comp = client.completions.create(
            model="tiny", prompt=render_raw(_conversation()[:2]), max_tokens=5, temperature=0.0,
            logprobs=1,
        )  # fmt: skip
        assert isinstance(comp.choices[0].text, str) and comp.usage is not None
        assert comp.choices[0].logprobs is not None
        assert len(comp.choices[0].logprobs.token_logprobs or []) == comp.usage.completion_tokens
        # Greedy decoding through the server equals the local backend.
        same = client.completions.create(
            model="tiny", prompt=render_raw(_conversation()[:2]), max_tokens=5, temperature=0.0
        )
        assert same.choices[0].text == comp.choices[0].text
        with pytest.raises(openai.NotFoundError):
            client.completions.create(model="other", prompt="x", max_tokens=2)
        with pytest.raises(openai.BadRequestError, match="exceeds the model's context"):
            client.completions.create(model="tiny", prompt="x", max_tokens=10**6)


async def test_http_backend_drives_the_local_server(local: LocalHFBackend) -> None:
    with serve_app(create_app(local, "tiny")) as url:
        backend = OpenAIHTTPBackend([f"{url}/v1"], "tiny")
        gen = await backend.complete(render_raw(_conversation()[:2]), SamplingParams(max_tokens=6))
        chat = await backend.chat(_conversation()[:2], SamplingParams(max_tokens=6, logprobs=True))
        await backend.aclose()
    assert gen.completion_tokens is not None and gen.completion_tokens <= 6
    assert gen.token_ids is not None and len(gen.token_ids) == gen.completion_tokens
    assert chat.logprobs is not None and len(chat.logprobs) == chat.completion_tokens


def _sim_app(fail_first: int = 0, delay_s: float = 0.0) -> tuple[FastAPI, dict[str, int]]:
    app = FastAPI()
    state = {"calls": 0, "inflight": 0, "peak": 0}

    @app.post("/v1/completions")
    async def completions(request: Request) -> JSONResponse:
        body = await request.json()
        state["calls"] += 1
        if state["calls"] <= fail_first:
            return JSONResponse({"error": "overloaded"}, status_code=503)
        state["inflight"] += 1
        state["peak"] = max(state["peak"], state["inflight"])
        await asyncio.sleep(delay_s)
        state["inflight"] -= 1
        text = f"echo:{body['prompt']}|stop={body.get('stop')}|t={body['temperature']}"
        return JSONResponse(
            {"choices": [{"text": text, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
        )  # fmt: skip

    return app, state


async def test_http_backend_retries_balances_and_bounds_concurrency() -> None:
    app_a, a = _sim_app(fail_first=1, delay_s=0.05)
    app_b, b = _sim_app(delay_s=0.05)
    with serve_app(app_a) as url_a, serve_app(app_b) as url_b:
        backend = OpenAIHTTPBackend(
            [f"{url_a}/v1", f"{url_b}/v1"], "m", max_concurrency=4, retries=2, backoff_s=0.01
        )
        params = SamplingParams(max_tokens=4, temperature=0.5, stop=("</x>",))
        gens = await asyncio.gather(*(backend.complete(f"p{i}", params) for i in range(20)))
        await backend.aclose()
    assert [g.text.split("|")[0] for g in gens] == [f"echo:p{i}" for i in range(20)]
    assert gens[0].text.endswith("|stop=['</x>']|t=0.5") and gens[0].completion_tokens == 2
    served_a, served_b = a["calls"] - 1, b["calls"]  # a's first answer was a 503
    assert served_a + served_b == 20 and min(served_a, served_b) >= 5
    assert a["peak"] + b["peak"] <= 4 + 1  # the client-side bound holds


async def test_http_backend_gives_up_with_backend_error() -> None:
    app, state = _sim_app(fail_first=100)
    with serve_app(app) as url:
        backend = OpenAIHTTPBackend([f"{url}/v1"], "m", retries=2, backoff_s=0.01)
        with pytest.raises(BackendError, match="HTTP 503"):
            await backend.complete("p", SamplingParams())
        await backend.aclose()
    assert state["calls"] == 3
    dead = OpenAIHTTPBackend(["http://127.0.0.1:9/v1"], "m", retries=1, backoff_s=0.01)
    with pytest.raises(BackendError, match="ConnectError"):
        await dead.complete("p", SamplingParams())
    await dead.aclose()


def test_cli_llm_serve_serves_the_tiny_policy(tiny_policy: Path, tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    port = free_port()
    cmd = [sys.executable, "-m", "literesearcher.cli", "--set", f"data_root={tmp_path}", "llm",
           "serve", "--model", str(tiny_policy), "--port", str(port), "--device", "cpu"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                models = client.models.list()
                break
            except openai.APIConnectionError:
                assert time.monotonic() < deadline, "llm serve did not come up"
                time.sleep(0.3)
        assert [m.id for m in models.data] == [tiny_policy.name]
        out = client.completions.create(model=tiny_policy.name, prompt="a", max_tokens=3)
        assert out.usage is not None and out.usage.completion_tokens <= 3
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_policy_backend_batches_up_to_llm_local_max_batch(tiny_policy: Path) -> None:
    from conf import load_settings
    from rl.factory import policy_backend

    settings = load_settings("local", [f"llm.local_policy_path={tiny_policy}",
                                       "llm.local_max_batch=3", "llm.device=cpu"])  # fmt: skip
    backend, policy_id = policy_backend(settings)
    assert isinstance(backend, LocalHFBackend) and policy_id.startswith("local:")
    assert backend.max_batch == 3

    async def five() -> list[int]:
        params = SamplingParams(temperature=0.0, max_tokens=2)
        gens = await asyncio.gather(*(backend.complete("question?", params) for _ in range(5)))
        return [g.extra["batch_size"] for g in gens]

    # Five concurrent requests of the same prompt: one batch of three, then one of two.
    assert sorted(asyncio.run(five())) == [2, 2, 3, 3, 3]


def test_policy_id_names_a_model_inside_data_root_relative_to_it(
    tiny_policy: Path, tmp_path: Path
) -> None:
    """The policy id keys rollouts and evaluations: a copied data root keeps them."""
    import shutil

    from conf import load_settings
    from rl.factory import policy_backend

    ids = []
    for root in (tmp_path / "a", tmp_path / "b"):
        shutil.copytree(tiny_policy, root / "catalog" / "checkpoints" / "v1")
        settings = load_settings("local", [f"data_root={root}", "llm.device=cpu"])
        ids.append(policy_backend(settings, str(root / "catalog" / "checkpoints" / "v1"))[1])
    assert ids == ["local:$data_root/catalog/checkpoints/v1"] * 2
    settings = load_settings("local", [f"data_root={tmp_path / 'a'}", "llm.device=cpu"])
    assert policy_backend(settings, str(tiny_policy))[1] == f"local:{tiny_policy.resolve()}"
