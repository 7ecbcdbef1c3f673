from __future__ import annotations

import pytest
from fastapi import FastAPI
from rl_testkit import ScriptedPolicy, backend_error

from conf import Settings
from literesearcher.testing import serve_app
from rl.backends.openai_http import OpenAIHTTPBackend
from rl.judge import (
    Judge,
    JudgeMethod,
    exact_match,
    judge_from_settings,
    normalize_answer,
    parse_verdict,
    token_f1,
)

Q = "Who designed the tower?"


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  an   apple, a day ", "apple day"),
        ("1,000", "1000"),
        ("ＡＢＣ １２３", "abc 123"),  # full-width forms
        ("《三体》", "三体"),  # CJK punctuation
        ("北 京", "北京"),  # spaces between CJK characters
        ("中华人民共和国。", "中华人民共和国"),
        ("Café", "café"),
    ],
)
def test_normalize_answer(raw: str, normalized: str) -> None:
    assert normalize_answer(raw) == normalized


def test_exact_match_and_token_f1_with_several_gold_answers() -> None:
    golds = ["Gustave Eiffel", "Alexandre Gustave Eiffel"]
    assert exact_match("gustave eiffel.", golds)
    assert not exact_match("Eiffel", golds) and not exact_match("", golds)
    assert token_f1("Eiffel", golds) == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert token_f1("Alexandre Gustave Eiffel", golds) == 1.0
    assert token_f1("Paris", golds) == 0.0
    # Chinese is scored per character: 北京市 vs 北京 shares 2 of 3 characters.
    assert token_f1("北京市", ["北京"]) == pytest.approx(0.8)
    assert exact_match("北京", ["北 京"])


async def test_standalone_modes_record_their_method() -> None:
    em = await Judge("exact_match").score(Q, "gustave eiffel", ["Gustave Eiffel"])
    assert (em.correct, em.score, em.method, em.error) == (True, 1.0, JudgeMethod.EXACT_MATCH, None)
    f1 = await Judge("token_f1", f1_threshold=0.6).score(Q, "Eiffel", ["Gustave Eiffel"])
    assert f1.method == JudgeMethod.TOKEN_F1 and f1.score == pytest.approx(2 / 3) and f1.correct
    none = await Judge("exact_match").score(Q, None, ["x"])
    assert none.method == JudgeMethod.NO_ANSWER and not none.correct


async def test_llm_judge_verdict_at_temperature_zero() -> None:
    judge_llm = ScriptedPolicy(['{"correct": true, "reason": "alias"}'])
    v = await Judge("llm", judge_llm).score(Q, "A. G. Eiffel", ["Gustave Eiffel"])
    assert (v.correct, v.method, v.error) == (True, JudgeMethod.LLM, None)
    assert judge_llm.params[0].temperature == 0.0
    prompt = judge_llm.chats[0][1]["content"]
    assert "A. G. Eiffel" in prompt and "Gustave Eiffel" in prompt and Q in prompt


async def test_exact_match_shortcut_skips_the_llm() -> None:
    judge_llm = ScriptedPolicy(['{"correct": false}'])
    v = await Judge("llm", judge_llm).score(Q, "Gustave Eiffel", ["gustave eiffel"])
    assert v.method == JudgeMethod.EXACT_MATCH and v.correct and not judge_llm.chats


async def test_unparseable_verdict_is_retried_then_succeeds() -> None:
    judge_llm = ScriptedPolicy(["I think it is right", '{"correct": false}'])
    v = await Judge("llm", judge_llm, parse_retries=2).score(Q, "Paris", ["Gustave Eiffel"])
    assert (v.correct, v.method, v.error) == (False, JudgeMethod.LLM, None)
    assert len(judge_llm.chats) == 2
    assert judge_llm.chats[1][-1]["role"] == "user"  # the retry asks for the JSON again


async def test_unparseable_verdicts_exhausted_fall_back_to_exact_match() -> None:
    judge_llm = ScriptedPolicy(["no json here"])
    judge = Judge("llm", judge_llm, parse_retries=2, exact_match_shortcut=False)
    v = await judge.score(Q, "Gustave Eiffel", ["gustave eiffel"])
    assert v.method == JudgeMethod.EXACT_MATCH_FALLBACK and v.correct
    assert v.error is not None and "unparseable" in v.error and v.raw == "no json here"
    assert len(judge_llm.chats) == 3


async def test_backend_failure_falls_back_or_is_a_recorded_judge_error() -> None:
    down = ScriptedPolicy([backend_error("HTTP 503")])
    v = await Judge("llm", down).score(Q, "Paris", ["Gustave Eiffel"])
    assert v.method == JudgeMethod.EXACT_MATCH_FALLBACK and not v.correct
    assert v.error is not None and "HTTP 503" in v.error
    strict = await Judge("llm", down, fallback="none").score(Q, "Paris", ["Gustave Eiffel"])
    # Distinguishable from a wrong answer: eval counts it wrong and reports it.
    assert strict.method == JudgeMethod.JUDGE_ERROR and not strict.correct and strict.error


async def test_llm_judge_over_http_falls_back_when_the_endpoint_fails() -> None:
    app = FastAPI()
    calls = {"n": 0}

    @app.post("/v1/chat/completions")
    async def broken() -> dict[str, object]:
        calls["n"] += 1
        return {"choices": []}  # not a completion: retried, then given up

    with serve_app(app) as url:
        backend = OpenAIHTTPBackend([f"{url}/v1"], "judge", retries=2, backoff_s=0.01)
        v = await Judge("llm", backend).score(Q, "Paris", ["Gustave Eiffel"])
        await backend.aclose()
    assert calls["n"] == 3
    assert v.method == JudgeMethod.EXACT_MATCH_FALLBACK and v.error and "giving up" in v.error


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ('{"correct": true}', True),
        ('Sure. {"correct": false, "reason": "different person"} Done.', False),
        ("{'correct': 'yes',}", True),
    ],
)
def test_parse_verdict(text: str, ok: bool) -> None:
    assert parse_verdict(text) is ok


@pytest.mark.parametrize("text", ["correct", '{"correct": "maybe"}', '{"verdict": true}'])
def test_parse_verdict_rejects_replies_without_a_boolean(text: str) -> None:
    with pytest.raises(ValueError):
        parse_verdict(text)


def test_default_judge_without_an_endpoint_is_exact_match(settings: Settings) -> None:
    assert judge_from_settings(settings).mode == "exact_match"
    settings.llm.endpoints = {"judge": {"base_urls": ["http://127.0.0.1:9/v1"], "model": "j"}}  # type: ignore[dict-item]
    assert judge_from_settings(settings).mode == "llm"
    settings.rl.judge_mode = "token_f1"
    assert judge_from_settings(settings).mode == "token_f1"
