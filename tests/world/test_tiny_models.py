"""Tiny models load and run through the real libraries: transformers and FlagEmbedding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from literesearcher.tiny_models import (
    CHAT_SPECIAL,
    PROTOCOL_TAGS,
    build_tiny_embedder,
    build_tiny_models,
    build_tiny_policy,
    cached_tiny_models,
)

SAMPLE = [
    "Kalomire Dynamics employs 4,512 people. It is headquartered in Supulaford.",
    "The Silent Harbor of Vonuli was released in 1987 and runs for 124 minutes.",
] * 20


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_tiny_models(tmp_path_factory.mktemp("tiny"), seed=0)


def test_policy_loads_and_generates_through_transformers(tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny["policy"])
    model: Any = AutoModelForCausalLM.from_pretrained(tiny["policy"])
    assert type(model).__name__ == "Qwen3ForCausalLM"
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_key_value_heads) == (2, 64, 2)
    assert cfg.tie_word_embeddings and cfg.max_position_embeddings >= 4096
    assert tok.eos_token == "<|im_end|>" and tok.pad_token is not None
    prompt = tok.apply_chat_template([{"role": "user", "content": "Who founded Kalomire?"}],
                                     tokenize=False, add_generation_prompt=True)  # fmt: skip
    inputs = tok(prompt, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]
    assert isinstance(tok.decode(out[0]), str)


def test_special_tokens_are_single_tokens_and_survive_decoding(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny["policy"])
    assert 4096 <= len(tok) <= 8192
    for t in (*CHAT_SPECIAL, *PROTOCOL_TAGS):
        ids = tok.encode(t, add_special_tokens=False)
        assert len(ids) == 1, (t, ids)
    text = "<think>plan</think>\n<tool_call>{}</tool_call>"
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == text


def test_chat_template_renders_qwen3_turns_and_tool_results(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny["policy"])
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "<think>t</think>\n<tool_call>{}</tool_call>"},
        {"role": "tool", "content": "R1"},
        {"role": "tool", "content": "R2"},
    ]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nS<|im_end|>\n"
        "<|im_start|>user\nQ<|im_end|>\n"
        "<|im_start|>assistant\n<think>t</think>\n<tool_call>{}</tool_call><|im_end|>\n"
        "<|im_start|>user\n<tool_response>\nR1\n</tool_response>"
        "\n<tool_response>\nR2\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    no_prompt = str(tok.apply_chat_template(messages[:2], tokenize=False))
    assert not no_prompt.endswith("<|im_start|>assistant\n")


def test_protocol_text_compresses_like_a_real_tokenizer(tiny, tmp_path: Path):
    """Trained with the protocol's own text, the fixed system prompt and the tool JSON take a
    few characters per token (a world-pages-only BPE spends about one token per 2 characters on
    them); without it (protocol_pages=0) they do not."""
    from dataclasses import replace

    from transformers import AutoTokenizer

    from literesearcher.tiny_models import DEFAULT_SIZES, protocol_sample
    from rl.protocol import render_assistant_turn, render_system_prompt

    system = render_system_prompt("2025-01-01")
    call = render_assistant_turn(
        "I will search for this.", [{"name": "search", "arguments": {"query": ["Who?"]}}]
    )
    episode = next(protocol_sample(0, 1))
    assert system in episode and "<tool_response>" in episode and "<answer>" in episode

    def chars_per_token(policy: Path, text: str) -> float:
        tok = AutoTokenizer.from_pretrained(policy)
        return len(text) / len(tok.encode(text, add_special_tokens=False))

    assert chars_per_token(tiny["policy"], system) > 3.0
    assert chars_per_token(tiny["policy"], call) > 3.0
    bare = build_tiny_policy(
        tmp_path / "bare", seed=0, sizes=replace(DEFAULT_SIZES, protocol_pages=0)
    )
    assert chars_per_token(bare, system) < 2.5


def test_embedder_loads_and_encodes_through_flagembedding(tiny):
    from FlagEmbedding import BGEM3FlagModel

    model = BGEM3FlagModel(str(tiny["embedder"]), use_fp16=False, devices="cpu")
    out = model.encode(
        ["Kalomire Dynamics employs 4,512 people.", "Supulaford lies in Zembria."],
        return_dense=True, return_sparse=True, return_colbert_vecs=True,
    )  # fmt: skip
    assert out["dense_vecs"].shape == (2, 64)
    assert all(len(w) >= 3 for w in out["lexical_weights"])
    assert out["colbert_vecs"][0].shape[1] == 64
    for name in ("colbert_linear.pt", "sparse_linear.pt"):
        assert (tiny["embedder"] / name).exists()


def test_same_seed_same_weights_other_seed_other_weights(tmp_path: Path):
    a = build_tiny_policy(tmp_path / "a", seed=1, corpus_sample=SAMPLE)
    b = build_tiny_policy(tmp_path / "b", seed=1, corpus_sample=SAMPLE)
    c = build_tiny_policy(tmp_path / "c", seed=2, corpus_sample=SAMPLE)
    wa, wb, wc = (load_file(p / "model.safetensors") for p in (a, b, c))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    e1 = build_tiny_embedder(tmp_path / "e1", seed=1, corpus_sample=SAMPLE)
    e2 = build_tiny_embedder(tmp_path / "e2", seed=1, corpus_sample=SAMPLE)
    for name in ("colbert_linear.pt", "sparse_linear.pt"):
        s1, s2 = torch.load(e1 / name), torch.load(e2 / name)
        assert all(torch.equal(s1[k], s2[k]) for k in s1)
    w1, w2 = load_file(e1 / "model.safetensors"), load_file(e2 / "model.safetensors")
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_tiny_models_are_built_once_in_the_catalog(tmp_path: Path):
    from data_catalog import Catalog

    catalog = Catalog(tmp_path / "catalog")
    first = cached_tiny_models(catalog, seed=3)
    stamp = (first["policy"] / "model.safetensors").stat().st_mtime_ns
    again = cached_tiny_models(catalog, seed=3)
    assert again == first
    assert (again["policy"] / "model.safetensors").stat().st_mtime_ns == stamp
    assert len(catalog.versions("tiny_models")) == 1
    assert (first["embedder"] / "sparse_linear.pt").exists()


def test_cli_models_build_tiny(tmp_path: Path):
    from literesearcher.cli import main

    rc = main(["--set", f"data_root={tmp_path / 'root'}", "models", "build-tiny",
               "--out", str(tmp_path / "m"), "--seed", "4"])  # fmt: skip
    assert rc == 0
    assert (tmp_path / "m" / "tiny-policy" / "model.safetensors").exists()
    assert (tmp_path / "m" / "tiny-bge-m3" / "colbert_linear.pt").exists()


def test_induction_batch_repeats_spans_and_masks_the_copies():
    from literesearcher.tiny_models import induction_batch

    stream = torch.arange(10_000)  # all tokens distinct: a copy is visible as a repeat
    gen = torch.Generator().manual_seed(0)
    rows, copied = induction_batch(stream, 8, 64, spans=1, span_max=8, gen=gen)
    assert rows.shape == copied.shape == (8, 64)
    for row, mask in zip(rows.tolist(), copied.tolist(), strict=True):
        masked = [i for i, m in enumerate(mask) if m]
        assert 3 <= len(masked) <= 7  # a 4..8-token span, minus its first token
        for i in masked:  # each copied token repeats, right after the token before it
            j = row.index(row[i])
            assert j < i and row[j - 1] == row[i - 1]


def _copied_run(row: list[int], mask: list[bool], max_masked: int) -> int:
    """The start of the copied run that `mask` marks (after its first token: 7..`max_masked`
    contiguous positions), checked to appear earlier in `row` without overlapping."""
    masked = [i for i, m in enumerate(mask) if m]
    assert 7 <= len(masked) <= max_masked and masked == list(range(masked[0], masked[-1] + 1))
    b, n = masked[0] - 1, len(masked) + 1
    assert any(row[a : a + n] == row[b : b + n] for a in range(b - n + 1)), row
    return b


def test_synthetic_copy_batch_writes_one_random_run_twice():
    from literesearcher.tiny_models import TinySizes, synthetic_copy_batch

    stream = torch.arange(10_000)
    gen = torch.Generator().manual_seed(0)
    rows, copied = synthetic_copy_batch(stream, 6, 48, gen)
    assert rows.shape == copied.shape == (6, 48)
    for row, mask in zip(rows.tolist(), copied.tolist(), strict=True):
        b = _copied_run(row, mask, 23)
        assert row[:b] != list(range(row[0], row[0] + b))  # not a plain window of the stream
    rows, copied = synthetic_copy_batch(stream, 4, 16, gen)  # the shortest window: 2 x 8
    assert rows.shape == (4, 16) and int(copied.sum()) >= 4 * 7
    with pytest.raises(ValueError, match="at least 16 tokens"):
        synthetic_copy_batch(stream, 1, 15, gen)
    with pytest.raises(ValueError, match="share of the batch"):
        TinySizes(pretrain_synthetic=1.5)
    with pytest.raises(ValueError, match="share of the copy rows"):
        TinySizes(pretrain_synthetic_uniform=-0.5)
    with pytest.raises(ValueError, match="at most half of pretrain_seq_len"):
        TinySizes(pretrain_steps=5, pretrain_seq_len=32, pretrain_span_max=17)


def test_random_copy_batch_rows_are_random_but_for_one_repeated_run():
    from literesearcher.tiny_models import TinySizes, random_copy_batch

    vocab = torch.arange(100, 5000)
    gen = torch.Generator().manual_seed(0)
    rows, copied = random_copy_batch(vocab, 8, 64, gen)
    assert rows.shape == copied.shape == (8, 64)
    assert int(rows.min()) >= 100 and int(rows.max()) < 5000  # only ids of `vocab`
    for row, mask in zip(rows.tolist(), copied.tolist(), strict=True):
        _copied_run(row, mask, 31)
    rows, copied = random_copy_batch(vocab, 4, 16, gen)  # the shortest window: 2 x 8
    assert int(copied.sum()) == 4 * 7
    with pytest.raises(ValueError, match="at least 16 tokens"):
        random_copy_batch(vocab, 1, 15, gen)
    with pytest.raises(ValueError, match="pretrain_copy_seq_len"):
        TinySizes(pretrain_copy_steps=10, pretrain_copy_seq_len=8)


def test_synthetic_copy_batch_draws_its_runs_from_ids_when_given():
    from literesearcher.tiny_models import synthetic_copy_batch

    stream = torch.arange(10_000)
    ids = torch.arange(50_000, 50_100)  # ids the stream never has
    rows, copied = synthetic_copy_batch(stream, 6, 48, torch.Generator().manual_seed(0), ids)
    for row, mask in zip(rows.tolist(), copied.tolist(), strict=True):
        b = _copied_run(row, mask, 23)
        n = sum(mask) + 1
        assert all(50_000 <= t < 50_100 for t in row[b : b + n])  # the run: only `ids`
        assert sum(t >= 50_000 for t in row) == 2 * n  # the rest: the stream's window


def test_copy_schedule_doubles_the_row_length_up_to_the_last():
    from literesearcher.tiny_models import TinySizes, copy_schedule

    def schedule(**kw: int) -> list[tuple[int, int]]:
        return copy_schedule(TinySizes(**kw))

    assert schedule() == []  # no copy phase
    assert schedule(pretrain_copy_steps=50) == [(128, 50)]  # no start length: one stage
    assert schedule(pretrain_copy_steps=50, pretrain_copy_seq_len=64) == [(64, 50)]
    assert schedule(pretrain_copy_steps=50, pretrain_copy_start_len=64,
                    pretrain_copy_seq_len=64) == [(64, 50)]  # fmt: skip
    curriculum = {"pretrain_copy_start_len": 32, "pretrain_copy_start_steps": 40}
    assert schedule(pretrain_copy_steps=101, pretrain_copy_seq_len=256, **curriculum) == [
        (32, 40), (64, 20), (128, 20), (256, 21)]  # fmt: skip
    assert schedule(pretrain_copy_steps=60, pretrain_copy_seq_len=100, **curriculum) == [
        (32, 40), (64, 10), (100, 10)]  # fmt: skip
    assert schedule(pretrain_copy_steps=40, pretrain_copy_seq_len=64, **curriculum) == [(32, 40)]
    with pytest.raises(ValueError, match="longer than"):
        TinySizes(pretrain_copy_steps=10, pretrain_copy_start_len=256, pretrain_copy_seq_len=128)
    with pytest.raises(ValueError, match="at least one 4096-token row"):
        TinySizes(pretrain_copy_steps=10, pretrain_copy_seq_len=4096)
    with pytest.raises(ValueError, match="pretrain_copy_start_steps"):
        TinySizes(pretrain_copy_steps=10, pretrain_copy_start_steps=11)


def test_copy_start_stage_runs_on_until_the_head_forms(monkeypatch: pytest.MonkeyPatch):
    """`pretrain_copy_start_until`: after its planned steps the start stage goes on 50 steps
    at a time while the held-out copy accuracy is below the bar, at most to
    `pretrain_copy_start_max_steps`; then the longer rows get their planned steps."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    import literesearcher.tiny_models as tm

    config = Qwen3Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=8)  # fmt: skip
    vocab = torch.arange(4, 64)

    def run(accuracies: list[float], **kw: object) -> tuple[list[int], int, int]:
        model = Qwen3ForCausalLM(config)
        params = list(model.parameters())
        lengths: list[int] = []
        real_batch = tm.random_copy_batch

        def batch(v: object, n: int, seq_len: int, gen: object) -> object:
            lengths.append(seq_len)
            return real_batch(v, n, seq_len, gen)

        monkeypatch.setattr(tm, "random_copy_batch", batch)
        monkeypatch.setattr(tm, "copy_accuracy", lambda *a: accuracies.pop(0))
        sizes = tm.TinySizes(pretrain_copy_steps=4, pretrain_copy_start_len=16,
                             pretrain_copy_start_steps=2, pretrain_copy_seq_len=32,
                             pretrain_copy_tokens=64, **kw)  # fmt: skip
        _, done, start = tm._pretrain_copying(model, params, vocab, sizes,
                                              torch.Generator().manual_seed(0), None)  # fmt: skip
        return lengths, done, start

    # Formed at the second check: one extension of 50 steps, then 2 steps of 32-token rows.
    lengths, done, start = run([0.1, 0.95], pretrain_copy_start_until=0.9,
                               pretrain_copy_start_max_steps=500)  # fmt: skip
    # (rows drawn: 2 planned steps, the held-out probe, 50 more steps, then the 32-token ones)
    assert (done, start) == (54, 52) and lengths == [16] * 53 + [32] * 2
    # Never formed: the start stage stops at its cap (2 + 50 + 10 steps).
    _, done, start = run([0.0] * 3, pretrain_copy_start_until=0.9,
                         pretrain_copy_start_max_steps=62)  # fmt: skip
    assert (done, start) == (64, 62)
    # Off (the default): the planned steps only, no check.
    _, done, start = run([], pretrain_copy_start_until=0.0)
    assert (done, start) == (4, 2)
    with pytest.raises(ValueError, match="pretrain_copy_start_max_steps"):
        tm.TinySizes(pretrain_copy_steps=10, pretrain_copy_start_len=16,
                     pretrain_copy_start_steps=5, pretrain_copy_start_until=0.9)  # fmt: skip


def test_copy_phase_alone_pretrains_and_is_recorded(tmp_path: Path):
    """`pretrain_copy_steps` alone pretrains (on pure copy rows in a length curriculum; no
    text steps): progress counts its steps, and the model records the phase's loss and its
    copy accuracy on rows like its own and on the text windows' random and uniform runs,
    the same probes `copy_probe_accuracy` measures a later checkpoint on."""
    import json

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from literesearcher.tiny_models import TinySizes, copy_probe_accuracy

    sizes = TinySizes(pretrain_copy_steps=12, pretrain_copy_start_len=16,
                      pretrain_copy_start_steps=6, pretrain_copy_seq_len=32,
                      pretrain_copy_tokens=64, pretrain_pages=50, pretrain_seq_len=32,
                      sample_pages=50, protocol_pages=5)  # fmt: skip
    steps: list[int] = []
    out = build_tiny_policy(tmp_path / "p", seed=0, sizes=sizes,
                            progress=lambda step, loss: steps.append(step))  # fmt: skip
    info = json.loads((out / "tiny_model.json").read_text())["pretrain"]
    assert steps == list(range(1, 13))
    assert info["pretrain_copy_loss"] > 0
    for key in ("copy_phase_accuracy", "random_copy_accuracy_after_copy_phase",
                "uniform_copy_accuracy_after_copy_phase", "uniform_copy_accuracy_after"):  # fmt: skip
        assert 0.0 <= info[key] <= 1.0, info
    model = AutoModelForCausalLM.from_pretrained(out)
    again = copy_probe_accuracy(model, AutoTokenizer.from_pretrained(out), seed=0, sizes=sizes)
    assert again == {"random_copy_accuracy": info["random_copy_accuracy_after"],
                     "uniform_copy_accuracy": info["uniform_copy_accuracy_after"]}  # fmt: skip


def test_pretrain_bf16_runs_the_forward_pass_in_bf16_on_fp32_weights(tmp_path: Path):
    """`pretrain_bf16`: the same step from the same weights gives a loss off the fp32 one by
    bf16 rounding only, and leaves the weights fp32."""
    import copy

    import torch
    from transformers import AutoModelForCausalLM

    from literesearcher.tiny_models import TinySizes, _lm_step

    sizes = TinySizes(pretrain_pages=50, sample_pages=50, protocol_pages=5)
    model = AutoModelForCausalLM.from_pretrained(build_tiny_policy(tmp_path / "p", seed=0,
                                                                   sizes=sizes))  # fmt: skip
    vocab = int(model.config.vocab_size)
    rows = torch.randint(0, vocab, (2, 64), generator=torch.Generator().manual_seed(0))
    loss = {}
    for bf16 in (False, True):
        m = copy.deepcopy(model)
        params = list(m.parameters())
        opt = torch.optim.AdamW(params, lr=1e-3)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
        loss[bf16] = _lm_step(m, params, opt, sched, rows, bf16)
        assert all(p.dtype == torch.float32 for p in m.parameters())
    assert loss[True] != loss[False]
    assert loss[True] == pytest.approx(loss[False], rel=0.02)


def test_copied_loss_is_the_mean_over_the_copied_tokens_only(tmp_path: Path):
    """`_lm_step` with `targets`: the loss is the language-model loss averaged over the masked
    tokens alone (the LM head run only where they are predicted), and the step trains; an
    unknown `pretrain_copy_loss` is a ValueError naming the choices."""
    import copy

    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    from literesearcher.tiny_models import TinySizes, _lm_step, random_copy_batch

    sizes = TinySizes(pretrain_pages=50, sample_pages=50, protocol_pages=5)
    model = AutoModelForCausalLM.from_pretrained(build_tiny_policy(tmp_path / "p", seed=0,
                                                                   sizes=sizes))  # fmt: skip
    vocab = torch.arange(100, int(model.config.vocab_size))
    rows, _ = random_copy_batch(vocab, 4, 64, torch.Generator().manual_seed(0))
    with torch.no_grad():
        logp = model(input_ids=rows).logits[:, :-1].log_softmax(-1)
    nll = -logp.gather(-1, rows[:, 1:, None]).squeeze(-1)
    # targets: the tokens the fresh model finds hardest, so their mean is well off the mean
    targets = torch.zeros_like(rows, dtype=torch.bool)
    targets[:, 1:] = nll > nll.median()
    expected = {"copied": float(nll[targets[:, 1:]].mean()),
                "all": float(F.cross_entropy(logp.flatten(0, 1), rows[:, 1:].flatten()))}  # fmt: skip
    assert expected["copied"] > expected["all"] + 0.05
    for name, mask in (("all", None), ("copied", targets)):
        m = copy.deepcopy(model)
        params = list(m.parameters())
        opt = torch.optim.AdamW(params, lr=1e-3)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
        loss = _lm_step(m, params, opt, sched, rows, False, mask)
        assert loss == pytest.approx(expected[name], rel=1e-5)
        assert not torch.equal(m.lm_head.weight, model.lm_head.weight)  # it trained
    with pytest.raises(ValueError, match=r"pretrain_copy_loss must be one of .*'some'"):
        TinySizes(pretrain_copy_loss="some")


def test_copy_phase_with_the_copied_loss_pretrains_under_its_own_key(tmp_path: Path):
    """`pretrain_copy_loss="copied"` runs the copy phase (its recorded loss: the copied
    tokens' mean) and keys the models apart from the default's, whose key has no such field."""
    import json

    from literesearcher.tiny_models import TinySizes, catalog_params

    sizes = TinySizes(pretrain_copy_steps=6, pretrain_copy_seq_len=32, pretrain_copy_tokens=64,
                      pretrain_pages=50, pretrain_seq_len=32, sample_pages=50, protocol_pages=5,
                      pretrain_copy_loss="copied")  # fmt: skip
    out = build_tiny_policy(tmp_path / "p", seed=0, sizes=sizes)
    info = json.loads((out / "tiny_model.json").read_text())
    assert info["pretrain"]["pretrain_copy_loss"] > 0
    assert "pretrain_copy_loss" not in catalog_params(0, TinySizes())
    assert catalog_params(0, sizes)["pretrain_copy_loss"] == "copied"


def test_text_steps_split_their_copy_rows_between_text_and_uniform_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`pretrain_synthetic_uniform`: that share of each batch's copy rows has its run drawn
    uniformly from the ordinary token ids, the rest from the text's own tokens."""
    from literesearcher import tiny_models
    from literesearcher.tiny_models import TinySizes

    calls: list[tuple[int, bool]] = []
    real = tiny_models.synthetic_copy_batch

    def spy(stream: Any, batch: int, seq_len: int, gen: Any, ids: Any = None) -> Any:
        calls.append((batch, ids is not None))
        return real(stream, batch, seq_len, gen, ids)

    monkeypatch.setattr(tiny_models, "synthetic_copy_batch", spy)
    sizes = TinySizes(pretrain_steps=3, pretrain_batch=8, pretrain_synthetic=0.5,
                      pretrain_synthetic_uniform=0.25, pretrain_pages=50, pretrain_seq_len=32,
                      pretrain_span_max=16, sample_pages=50, protocol_pages=5)  # fmt: skip
    build_tiny_policy(tmp_path / "p", seed=0, sizes=sizes)
    # two probes (text runs, uniform runs), then per step 3 text-run rows + 1 uniform-run row
    assert calls == [(16, False), (16, True), *[(3, False), (1, True)] * 3]


@pytest.mark.slow
def test_pretraining_teaches_the_policy_to_copy(tmp_path: Path):
    """A short pretraining on another world's pages with repeated spans: the loss falls and
    the copy accuracy on held-out repeated natural spans rises (measured, and recorded with
    the model, beside the accuracy on repeated random runs, which only an induction head
    predicts); the tiny policy still loads like any HF checkpoint."""
    import json

    from transformers import AutoModelForCausalLM

    from literesearcher.tiny_models import TinySizes, pretrain_world_seed

    sizes = TinySizes(pretrain_steps=120, pretrain_pages=300, pretrain_seq_len=64,
                      pretrain_batch=16, pretrain_lr=3e-3, pretrain_spans=2,
                      pretrain_span_max=12, sample_pages=100, protocol_pages=10,
                      pretrain_synthetic=0.25)  # fmt: skip
    losses: list[float] = []
    out = build_tiny_policy(tmp_path / "p", seed=0, sizes=sizes,
                            progress=lambda step, loss: losses.append(loss))  # fmt: skip
    info = json.loads((out / "tiny_model.json").read_text())["pretrain"]
    assert len(losses) == 120 and losses[-1] < losses[0] - 2
    assert info["pretrain_world_seed"] == pretrain_world_seed(0) != 0
    assert info["copy_accuracy_after"] > info["copy_accuracy_before"] + 0.1, info
    for key in ("random_copy_accuracy_before", "random_copy_accuracy_after"):
        assert 0.0 <= info[key] <= 1.0, info  # copying proper: measured and recorded
    model: Any = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 2


def test_sizes_from_overrides_apply_known_fields_and_name_unknown_ones():
    from literesearcher.tiny_models import DEFAULT_SIZES, TinySizes

    sizes = TinySizes.from_overrides({"policy_hidden": 128, "pretrain_bf16": 1})
    assert sizes.policy_hidden == 128 and sizes.pretrain_bf16 == 1
    assert sizes.policy_layers == DEFAULT_SIZES.policy_layers
    with pytest.raises(ValueError, match=r"unknown TinySizes fields \['policy_hiden'\]"):
        TinySizes.from_overrides({"policy_hiden": 128})


def test_pretrain_bf16_auto_resolves_by_the_cpu_and_keys_the_models_by_the_result(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """-1 (auto) is bf16 only where the CPU computes it natively; the catalog keys the models by
    the resolved value, so on such a CPU an auto lookup finds the models built with 1."""
    from data_catalog import Catalog
    from literesearcher.tiny_models import CODE_VERSION, TinySizes

    auto = TinySizes(pretrain_bf16=-1)
    for native in (False, True):
        for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
            monkeypatch.setattr(torch.cpu, name, lambda native=native: native, raising=False)
        assert auto.resolved().pretrain_bf16 == int(native)
    assert TinySizes(pretrain_bf16=1).resolved().pretrain_bf16 == 1  # explicit values stay
    assert TinySizes(pretrain_bf16=0).resolved().pretrain_bf16 == 0
    with pytest.raises(ValueError, match=r"pretrain_bf16 is 0 \(fp32\), 1 .* got 2"):
        TinySizes(pretrain_bf16=2)

    # with native bf16 (the last patch above), an auto lookup finds the models built with 1
    import literesearcher.tiny_models as tm

    catalog = Catalog(tmp_path / "catalog")
    params = tm.catalog_params(0, TinySizes(pretrain_bf16=1))
    with catalog.create("tiny_models", params=params, code_version=CODE_VERSION) as w:
        (w.path / "marker").write_text("built with bf16")
    monkeypatch.setattr(tm, "build_tiny_models", lambda *a, **k: pytest.fail("rebuilt"))
    found = tm.tiny_models_in_catalog(catalog, seed=0, sizes=auto)
    assert (catalog.path(found) / "marker").read_text() == "built with bf16"
