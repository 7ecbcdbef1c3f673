"""The SFT cold start loop: learns the teacher's assistant tokens, resumes exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rl.protocol import Message
from rl.trainer.sft import LocalSFTTrainer, SFTLoopConfig


def _trajectory(i: int) -> list[Message]:
    return [
        {"role": "system", "content": "Answer the question."},
        {"role": "user", "content": f"what is item {i}?"},
        {
            "role": "assistant",
            "content": '<tool_call>{"name": "search", "arguments": {"query": ["item"]}}</tool_call>',
        },
        {"role": "tool", "content": f"result {i}: the item is blue"},
        {"role": "assistant", "content": "<think>it says blue</think><answer>blue</answer>"},
    ]


TRAJS = [_trajectory(i) for i in range(6)]


def _trainer(policy: Path, out: Path, epochs: int, seen: list) -> LocalSFTTrainer:
    config = SFTLoopConfig(
        epochs=epochs, batch_size=4, micro_batch_size=2, lr=1e-2, save_every=2, seed=3
    )
    return LocalSFTTrainer(policy, out, config, TRAJS, on_metrics=lambda s, m: seen.append((s, m)))


def test_sft_lowers_the_loss_on_assistant_tokens(tiny_policy: Path, tmp_path: Path) -> None:
    seen: list = []
    trainer = _trainer(tiny_policy, tmp_path, 4, seen)
    assert trainer.steps_per_epoch == 2 and trainer.total_steps == 8
    last = trainer.train()
    losses = [m["loss"] for _, m in seen]
    assert len(losses) == 8
    assert losses[-1] < 0.8 * losses[0], losses
    assert last is not None and last.name == "step-000008"
    assert (last / "model.safetensors").is_file() and (last / "tokenizer_config.json").is_file()


def test_sft_resume_gives_the_same_next_step(tiny_policy: Path, tmp_path: Path) -> None:
    straight: list = []
    a = _trainer(tiny_policy, tmp_path / "a", 2, straight)
    a.train()
    first: list = []
    b = _trainer(tiny_policy, tmp_path / "b", 1, first)  # stops after epoch 1 (step 2)
    b.train()
    resumed: list = []
    c = _trainer(tiny_policy, tmp_path / "b", 2, resumed)
    assert c.step == 2
    c.train()
    assert [s for s, _ in resumed] == [3, 4]
    for (_, want), (_, got) in zip(straight[2:], resumed, strict=True):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
        assert got["grad_norm"] == pytest.approx(want["grad_norm"], rel=1e-5)
    for va, vc in zip(a.model.state_dict().values(), c.model.state_dict().values(), strict=True):
        assert torch.allclose(va, vc, atol=1e-6)


def test_sft_rejects_an_empty_dataset(tiny_policy: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no trajectories"):
        LocalSFTTrainer(tiny_policy, tmp_path, SFTLoopConfig(), [])


def test_sft_bf16_autocast_trains_fp32_weights_on_bf16_forward_passes(
    tiny_policy: Path, tmp_path: Path
) -> None:
    """`bf16_autocast`: the forward passes run in bf16 (the first step's loss moves off the
    fp32 one, by less than bf16's rounding can explain away), the weights stay fp32."""
    first: dict[bool, float] = {}
    for bf16 in (False, True):
        config = SFTLoopConfig(epochs=1, batch_size=4, micro_batch_size=2, lr=1e-2, seed=3,
                               save_every=100, bf16_autocast=bf16)  # fmt: skip
        trainer = LocalSFTTrainer(tiny_policy, tmp_path / str(bf16), config, TRAJS)
        first[bf16] = trainer.train_step()["loss"]
        assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert first[True] != first[False]
    assert first[True] == pytest.approx(first[False], rel=0.02)


def test_bf16_autocast_warns_on_a_cpu_without_native_bf16(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from rl.backends.local_hf import warn_unless_native_bf16

    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)
    with caplog.at_level("WARNING"):
        warn_unless_native_bf16("cpu", "curriculum.sft.bf16_autocast")
    assert "curriculum.sft.bf16_autocast: bf16 autocast on a CPU without" in caplog.text
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    caplog.clear()
    with caplog.at_level("WARNING"):
        warn_unless_native_bf16("cpu", "x")
    assert caplog.text == ""
