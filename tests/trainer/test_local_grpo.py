"""The local GRPO loop on the tiny policy: reward flows into the weights, checkpoints resume
exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rl.protocol import Message, render_raw
from rl.trainer.local_grpo import GRPOConfig, LocalGRPOTrainer, RolloutFn
from rl.trainer.sequences import collate, token_logprobs, tokenize_episode
from rl.trajectory import ToolCallRecord, Trajectory, TurnRecord

DATE = "2025-01-01"
TASKS = [{"id": f"t{i}", "question": f"question number {i}?"} for i in range(3)]


def _trajectory(task: dict, idx: int, messages: list[Message], reward: float) -> Trajectory:
    turns = [
        TurnRecord(i, m["content"], "stop", 0, 0, 0.0)
        for i, m in enumerate(x for x in messages if x["role"] == "assistant")
    ]
    calls = [ToolCallRecord(0, "search", "{}", 0.0, None, 10)] if len(turns) > 1 else []
    return Trajectory(
        task_id=task["id"],
        sample_idx=idx,
        question=task["question"],
        gold_answers=["yes"],
        policy="tiny",
        date=DATE,
        messages=messages,
        turns=turns,
        tool_calls=calls,
        reward=reward,
        correct=reward > 0,
    )


def _short_prompt(question: str) -> list[Message]:
    # A short system prompt keeps CPU steps fast; rendering is the protocol's either way.
    return [
        {"role": "system", "content": "Answer the question."},
        {"role": "user", "content": question},
    ]


def _scripted(answer: str, question: str) -> list[Message]:
    msgs = _short_prompt(question)
    msgs.append(
        {
            "role": "assistant",
            "content": '<think>look</think><tool_call>{"name": "search", "arguments": '
            '{"query": ["q"]}}</tool_call>',
        }
    )
    msgs.append({"role": "tool", "content": "1. [page](http://x.test/)\nsome snippet"})
    msgs.append({"role": "assistant", "content": f"<think>ok</think><answer>{answer}</answer>"})
    return msgs


async def scripted_rollout(task: dict, idx: int, step: int) -> Trajectory:
    # Even samples answer "yes" (reward 1), odd ones "no" (reward 0).
    answer = "yes" if idx % 2 == 0 else "no"
    return _trajectory(task, idx, _scripted(answer, task["question"]), float(answer == "yes"))


def _answer_logprob(model, tokenizer, answer: str) -> float:
    ep = tokenize_episode(_scripted(answer, TASKS[0]["question"]), tokenizer)
    with torch.no_grad():
        logp, mask = token_logprobs(model, collate([ep], tokenizer.pad_token_id))
    return float((logp * mask).sum())


def test_grpo_steps_move_the_policy_towards_rewarded_answers(
    tiny_policy: Path, tmp_path: Path
) -> None:
    seen: list[tuple[int, dict[str, float]]] = []
    config = GRPOConfig(prompts_per_step=2, group_size=4, total_steps=4, lr=3e-3, save_every=10)
    trainer = LocalGRPOTrainer(
        tiny_policy,
        tmp_path,
        config,
        TASKS,
        scripted_rollout,
        on_metrics=lambda s, m: seen.append((s, m)),
    )
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    margin0 = _answer_logprob(trainer.model, trainer.tokenizer, "yes") - _answer_logprob(
        trainer.model, trainer.tokenizer, "no"
    )
    last = trainer.train()

    margin1 = _answer_logprob(trainer.model, trainer.tokenizer, "yes") - _answer_logprob(
        trainer.model, trainer.tokenizer, "no"
    )
    assert margin1 > margin0 + 1.0, (margin0, margin1)
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed
    assert [s for s, _ in seen] == [1, 2, 3, 4]
    m = seen[0][1]
    assert m["reward"] == pytest.approx(0.5) and m["pass_rate"] == pytest.approx(0.5)
    assert m["turns"] == 2 and m["tool_calls"] == 1 and m["groups_with_signal"] == 1.0
    assert m["grad_norm"] > 0 and m["step_s"] > 0
    for key in ("loss", "clip_frac", "kl", "trained_tokens", "rollout_s"):
        assert key in m
    # The final checkpoint is a loadable HF model with the trainer state beside it.
    assert last is not None and last.name == "step-000004"
    state = json.loads((last / "trainer_state.json").read_text())
    assert state["step"] == 4 and state["kind"] == "grpo"
    assert (last / "optimizer.pt").is_file() and (last / "rng.pt").is_file()
    reloaded = AutoModelForCausalLM.from_pretrained(last, dtype=torch.float32)
    assert _answer_logprob(reloaded, trainer.tokenizer, "yes") == pytest.approx(
        _answer_logprob(trainer.model, trainer.tokenizer, "yes"), abs=1e-5
    )


def test_frozen_embeddings_stay_while_the_layers_learn(tiny_policy: Path, tmp_path: Path) -> None:
    config = GRPOConfig(prompts_per_step=2, group_size=4, total_steps=2, lr=3e-3,
                        save_every=10, freeze_embeddings=True)  # fmt: skip
    trainer = LocalGRPOTrainer(tiny_policy, tmp_path, config, TASKS, scripted_rollout)
    frozen = {id(p) for m in (trainer.model.get_input_embeddings(),
                              trainer.model.get_output_embeddings()) for p in m.parameters()}  # fmt: skip
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    margin0 = _answer_logprob(trainer.model, trainer.tokenizer, "yes") - _answer_logprob(
        trainer.model, trainer.tokenizer, "no"
    )
    trainer.train()
    margin1 = _answer_logprob(trainer.model, trainer.tokenizer, "yes") - _answer_logprob(
        trainer.model, trainer.tokenizer, "no"
    )
    assert margin1 > margin0
    params = dict(trainer.model.named_parameters())
    assert frozen and all(torch.equal(params[n], before[n]) for n in params
                          if id(params[n]) in frozen)  # fmt: skip
    assert any(not torch.equal(params[n], before[n]) for n in params if id(params[n]) not in frozen)


def _sampling_rollout_for(trainer_ref: list[LocalGRPOTrainer]):
    """A rollout that really samples from the current policy (so it consumes the torch RNG)."""

    async def rollout(task: dict, idx: int, step: int) -> Trajectory:
        trainer = trainer_ref[0]
        tok = trainer.tokenizer
        msgs = _short_prompt(task["question"])
        prompt = tok(render_raw(msgs), add_special_tokens=False, return_tensors="pt")
        with torch.no_grad():
            out = trainer.model.generate(
                **prompt,
                do_sample=True,
                max_new_tokens=6,
                temperature=1.0,
                pad_token_id=tok.pad_token_id,
            )
        new = out[0, prompt["input_ids"].shape[1] :].tolist()
        text = tok.decode(new, skip_special_tokens=True)
        msgs.append({"role": "assistant", "content": text})
        return _trajectory(task, idx, msgs, float(new[0] % 2 == 0))

    return rollout


def _make(tiny_policy: Path, out: Path, total_steps: int, seen: list) -> LocalGRPOTrainer:
    ref: list[LocalGRPOTrainer] = []
    config = GRPOConfig(
        prompts_per_step=2,
        group_size=3,
        total_steps=total_steps,
        ppo_epochs=2,
        lr=1e-3,
        micro_batch_size=4,
        save_every=1,
        keep_last=3,
        seed=7,
    )
    trainer = LocalGRPOTrainer(
        tiny_policy,
        out,
        config,
        TASKS,
        _sampling_rollout_for(ref),
        on_metrics=lambda s, m: seen.append((s, m)),
    )
    ref.append(trainer)
    return trainer


def test_resume_from_checkpoint_gives_the_same_next_step(tiny_policy: Path, tmp_path: Path) -> None:
    straight: list = []
    a = _make(tiny_policy, tmp_path / "a", 2, straight)
    a.train()

    first: list = []
    b = _make(tiny_policy, tmp_path / "b", 1, first)
    b.train()
    del b
    resumed: list = []
    c = _make(tiny_policy, tmp_path / "b", 2, resumed)
    assert c.resumed_from is not None and c.resumed_from.name == "step-000001"
    assert c.step == 1
    c.train()

    assert [s for s, _ in resumed] == [2]
    want, got = straight[1][1], resumed[0][1]
    for key in ("loss", "pg_loss", "reward", "grad_norm", "clip_frac", "trained_tokens"):
        assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-7), key
    # A ratio-dependent loss: the second PPO epoch saw updated weights.
    assert want["loss"] != 0.0
    for (k, va), vc in zip(
        a.model.state_dict().items(), c.model.state_dict().values(), strict=True
    ):
        assert torch.allclose(va, vc, atol=1e-6), k
    # keep_last=3 pruned nothing yet; a finished run resumes to a no-op.
    assert sorted(p.name for p in (tmp_path / "b" / "checkpoints").glob("step-*")) == [
        "step-000001",
        "step-000002",
    ]
    again: list = []
    d = _make(tiny_policy, tmp_path / "b", 2, again)
    d.train()
    assert again == []


def test_tokenizer_round_trip_of_checkpoint(tiny_policy: Path, tmp_path: Path) -> None:
    config = GRPOConfig(prompts_per_step=1, group_size=2, total_steps=1)
    trainer = LocalGRPOTrainer(tiny_policy, tmp_path, config, TASKS, scripted_rollout)
    last = trainer.train()
    assert last is not None
    tok = AutoTokenizer.from_pretrained(last)
    assert (
        tok("<tool_call>", add_special_tokens=False)["input_ids"]
        == trainer.tokenizer("<tool_call>", add_special_tokens=False)["input_ids"]
    )


def test_trainer_rejects_empty_task_list(tiny_policy: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no tasks"):
        LocalGRPOTrainer(tiny_policy, tmp_path, GRPOConfig(), [], scripted_rollout)


def test_kl_term_against_the_initial_policy_when_asked(tiny_policy: Path, tmp_path: Path) -> None:
    seen: list = []
    config = GRPOConfig(
        prompts_per_step=1, group_size=2, total_steps=1, ppo_epochs=2, lr=3e-3, kl_coef=0.5
    )
    trainer = LocalGRPOTrainer(
        tiny_policy, tmp_path, config, TASKS, scripted_rollout, lambda s, m: seen.append(m)
    )
    assert trainer.ref_model is not None
    trainer.train()
    # Epoch 1 runs at the reference (KL 0); epoch 2 after one update (KL > 0).
    assert seen[0]["kl"] > 0
    assert seen[0]["loss"] == pytest.approx(seen[0]["pg_loss"] + 0.5 * seen[0]["kl"], rel=1e-4)


def test_the_update_scores_tokens_at_the_sampling_temperature(
    tiny_policy: Path, tmp_path: Path
) -> None:
    """The same groups at temperature 1 and 0.5 give other updates: the loss is taken under
    softmax(logits / T), the policy that sampled them."""
    weights = []
    for temperature in (1.0, 0.5):
        config = GRPOConfig(prompts_per_step=1, group_size=2, total_steps=1, lr=3e-3,
                            temperature=temperature)  # fmt: skip
        trainer = LocalGRPOTrainer(
            tiny_policy, tmp_path / str(temperature), config, TASKS, scripted_rollout
        )
        trainer.train()
        weights.append({n: p.detach().clone() for n, p in trainer.model.named_parameters()})
    assert any(not torch.allclose(weights[0][n], weights[1][n]) for n in weights[0])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        LocalGRPOTrainer(tiny_policy, tmp_path / "t0", GRPOConfig(temperature=0.0), TASKS,
                         scripted_rollout)  # fmt: skip


def _rollout_solving(solvable: set[str]):
    """Tasks in `solvable` are solved by even samples only (a group with signal); the others
    by no sample (a group without)."""

    async def rollout(task: dict, idx: int, step: int) -> Trajectory:
        answer = "yes" if task["id"] in solvable and idx % 2 == 0 else "no"
        return _trajectory(task, idx, _scripted(answer, task["question"]), float(answer == "yes"))

    return rollout


FILTER_TASKS = [{"id": f"t{i}", "question": f"question number {i}?"} for i in range(6)]


def test_dynamic_filtering_trains_only_on_groups_with_signal(
    tiny_policy: Path, tmp_path: Path
) -> None:
    seen: list[dict[str, float]] = []
    config = GRPOConfig(
        prompts_per_step=2, group_size=2, total_steps=2, lr=1e-3, save_every=1, seed=3,
        dynamic_filtering=True, dynamic_filtering_max_rounds=5,
    )  # fmt: skip
    solvable = {"t1", "t4"}
    trainer = LocalGRPOTrainer(tiny_policy, tmp_path, config, FILTER_TASKS,
                               _rollout_solving(solvable), lambda s, m: seen.append(m))  # fmt: skip
    stream = trainer.tasks_at(0, 12)  # two passes over the 6 tasks
    trainer.train()
    # Step 1 draws batches of 2 until both solvable tasks were drawn, step 2 likewise from
    # where step 1 stopped: the cursor records how far the stream was read.
    ids = [t["id"] for t in stream]
    first_end = 2 * (max(ids.index("t1"), ids.index("t4")) // 2 + 1)
    rest = ids[first_end:]
    second_end = first_end + 2 * (max(rest.index("t1"), rest.index("t4")) // 2 + 1)
    assert trainer.cursor == second_end
    assert seen[0]["groups_drawn"] == first_end and seen[0]["groups_trained"] == 2
    assert seen[1]["groups_drawn"] == second_end - first_end
    # Rollout statistics cover every drawn group; only the kept ones (reward 0.5) are trained.
    assert seen[0]["reward"] == pytest.approx(1 / first_end)
    assert seen[0]["groups_with_signal"] == pytest.approx(2 / first_end)
    assert seen[0]["grad_norm"] > 0
    state = json.loads(
        (tmp_path / "checkpoints" / "step-000002" / "trainer_state.json").read_text()
    )
    assert state["cursor"] == second_end
    # A new trainer over the same dir resumes at the recorded position.
    resumed = LocalGRPOTrainer(tiny_policy, tmp_path, config, FILTER_TASKS,
                               _rollout_solving(solvable))  # fmt: skip
    assert resumed.step == 2 and resumed.cursor == second_end


def _recording(rollout: RolloutFn, drawn: list[str]) -> RolloutFn:
    """`rollout`, noting each task it rolls out (once per group)."""

    async def recording(task: dict, idx: int, step: int) -> Trajectory:
        if idx == 0:
            drawn.append(task["id"])
        return await rollout(task, idx, step)

    return recording


def test_parallel_rounds_train_on_what_sequential_rounds_would(
    tiny_policy: Path, tmp_path: Path
) -> None:
    """Rounds rolled out together: the same cursor, groups and weights as one round at a time;
    the rounds past the one that completed the step's groups are rolled out and dropped."""

    def run(at_once: int) -> tuple[LocalGRPOTrainer, list[dict[str, float]], list[str]]:
        seen: list[dict[str, float]] = []
        rolled: list[str] = []
        config = GRPOConfig(
            prompts_per_step=2, group_size=2, total_steps=2, lr=1e-3, save_every=2, seed=3,
            dynamic_filtering=True, dynamic_filtering_max_rounds=5,
            dynamic_filtering_parallel_rounds=at_once,
        )  # fmt: skip
        rollout = _recording(_rollout_solving({"t1", "t4"}), rolled)
        trainer = LocalGRPOTrainer(tiny_policy, tmp_path / str(at_once), config, FILTER_TASKS,
                                   rollout, lambda s, m: seen.append(m))  # fmt: skip
        trainer.train()
        return trainer, seen, rolled

    (one, seen1, rolled1), (par, seen3, rolled3) = run(1), run(3)
    assert par.cursor == one.cursor
    for a, b in zip(seen1, seen3, strict=True):
        assert a["groups_drawn"] == b["groups_drawn"] and a["groups_trained"] == b["groups_trained"]
        assert a["reward"] == b["reward"] and a["groups_dropped"] == 0
    # Every round the sequential run drew was drawn by the parallel one, plus dropped ones.
    dropped = sum(m["groups_dropped"] for m in seen3)
    assert dropped > 0 and len(rolled3) == len(rolled1) + dropped
    for k, v in par.model.state_dict().items():
        assert torch.equal(v, one.model.state_dict()[k]), k


def test_dynamic_filtering_without_any_signal_leaves_the_weights(
    tiny_policy: Path, tmp_path: Path
) -> None:
    seen: list[dict[str, float]] = []
    config = GRPOConfig(prompts_per_step=2, group_size=2, total_steps=1, lr=1e-2,
                        dynamic_filtering=True, dynamic_filtering_max_rounds=3)  # fmt: skip
    trainer = LocalGRPOTrainer(tiny_policy, tmp_path, config, FILTER_TASKS,
                               _rollout_solving(set()), lambda s, m: seen.append(m))  # fmt: skip
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    # Three rounds of two prompts drawn, none kept: no update, and the step still counts.
    assert trainer.step == 1 and trainer.cursor == 6
    assert seen[0]["groups_drawn"] == 6 and seen[0]["groups_trained"] == 0
    assert seen[0]["grad_norm"] == 0.0 and seen[0]["reward"] == 0.0
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_without_dynamic_filtering_every_group_is_trained(
    tiny_policy: Path, tmp_path: Path
) -> None:
    seen: list[dict[str, float]] = []
    drawn: list[str] = []
    recording = _recording(_rollout_solving({"t0"}), drawn)
    config = GRPOConfig(prompts_per_step=3, group_size=2, total_steps=1, lr=1e-3)
    trainer = LocalGRPOTrainer(tiny_policy, tmp_path, config, FILTER_TASKS, recording,
                               lambda s, m: seen.append(m))  # fmt: skip
    trainer.train()
    assert trainer.cursor == 3 and seen[0]["groups_trained"] == 3 == seen[0]["groups_drawn"]
    # The step drew the first B prompts of the stream.
    assert sorted(drawn) == sorted(t["id"] for t in trainer.tasks_at(0, 3))


@pytest.mark.parametrize("bad", [{"dynamic_filtering_range": (0.5, 0.5)},
                                 {"dynamic_filtering_max_rounds": 0},
                                 {"dynamic_filtering_parallel_rounds": 0}])  # fmt: skip
def test_dynamic_filtering_settings_are_checked(
    tiny_policy: Path, tmp_path: Path, bad: dict
) -> None:
    config = GRPOConfig(dynamic_filtering=True, **bad)
    with pytest.raises(ValueError, match="dynamic_filtering"):
        LocalGRPOTrainer(tiny_policy, tmp_path, config, TASKS, scripted_rollout)
