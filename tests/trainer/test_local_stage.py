"""A local curriculum stage from settings: the real episode runner, env_service and judge;
re-running the stage resumes from its checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conf import load_settings
from rl.episode import AgentTask
from rl.trainer.local_stage import grpo_config, run_local_stage


def test_local_stage_trains_then_resumes(tiny_policy: Path, tmp_path: Path, local_web: Any) -> None:
    def settings(total_steps: int) -> Any:
        return load_settings(
            "local",
            [
                f"data_root={tmp_path / 'data'}",
                f"env_service.url={local_web.url}",
                'rl.date="2025-03-01"',
                f"curriculum.local.total_steps={total_steps}",
                "curriculum.local.save_every=1",
            ],
        )

    stage = settings(1).curriculum.stages[0].model_copy(
        update={"max_turns": 2, "max_tokens_per_turn": 12, "max_prompt_tokens": 2048,
                "max_response_tokens": 256, "lr": 1e-3, "rollout_batch_size": 2,
                "n_samples_per_prompt": 2}
    )  # fmt: skip
    tasks = [
        AgentTask(id="hubble", question="When was Edwin Hubble born?", answers=["1889"],
                  mask_urls=[local_web.source]),
        AgentTask(id="curie", question="How many Nobel Prizes did Curie win?", answers=["two"]),
    ]  # fmt: skip
    config = grpo_config(stage, settings(1).curriculum.local)
    assert (config.group_size, config.lr, config.max_len) == (2, 1e-3, 2304)
    assert (config.eps_low, config.eps_high, config.kl_coef) == (0.2, 0.4, 0.0)
    # The loss scores tokens at the temperature the stage samples them.
    assert config.temperature == stage.temperature == 0.7

    seen: list[tuple[int, dict[str, float]]] = []
    out = tmp_path / "stage1"
    last = run_local_stage(
        settings(1), stage, tasks, tiny_policy, out, lambda s, m: seen.append((s, m))
    )
    assert last.name == "step-000001" and (last / "config.json").is_file()
    assert [s for s, _ in seen] == [1]
    for key in ("reward", "pass_rate", "turns", "tool_calls", "loss", "grad_norm", "step_s"):
        assert key in seen[0][1]

    # Re-run with a longer budget: picks up at step 1, runs only step 2.
    last = run_local_stage(
        settings(2), stage, tasks, tiny_policy, out, lambda s, m: seen.append((s, m))
    )
    assert last.name == "step-000002"
    assert [s for s, _ in seen] == [1, 2]
    state = json.loads((last / "trainer_state.json").read_text())
    assert state["step"] == 2 and state["config"]["init_model_path"] == str(tiny_policy)


def test_grpo_config_takes_dynamic_filtering_from_the_stage(tmp_path: Path) -> None:
    settings = load_settings("local", [
        f"data_root={tmp_path}", "curriculum.local.dynamic_filtering_max_rounds=2",
        "curriculum.local.dynamic_filtering_parallel_rounds=2",
    ])  # fmt: skip
    plain = grpo_config(settings.curriculum.stages[0], settings.curriculum.local)
    assert plain.dynamic_filtering is False
    stage = settings.curriculum.stages[0].model_copy(
        update={"dynamic_filtering": True, "dynamic_filtering_range": (0.1, 0.9)}
    )
    config = grpo_config(stage, settings.curriculum.local)
    assert config.dynamic_filtering is True
    assert config.dynamic_filtering_range == (0.1, 0.9)
    assert config.dynamic_filtering_max_rounds == 2
    assert config.dynamic_filtering_parallel_rounds == 2
