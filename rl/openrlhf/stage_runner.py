"""One curriculum stage on OpenRLHF: command -> Ray job -> TensorBoard scalars -> HF model.

    launcher  stage config + prompt file + previous HF dir -> `train_ppo_ray` (or `train_sft`) argv
    jobs      the argv as a Ray job (env_service URL in its runtime env), submitted and awaited
    tb_forward every poll, new TensorBoard scalars to the stage's MLflow run, steps shifted
    result    the HF model OpenRLHF saved in `--ckpt.output_dir`, the steps seen, the last values

Everything lives in one work dir per stage (`hf/`, `ckpt/`), so a retried stage passes
`--ckpt.load_enable` over the same `ckpt/` and OpenRLHF resumes from its last DeepSpeed
checkpoint. What was already forwarded to MLflow is remembered in `forwarded.json` there, so a
retry does not log the same steps twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from conf import Settings
from conf.settings import SFTConfig, StageConfig
from rl.openrlhf.jobs import job_spec, submit_and_wait
from rl.openrlhf.launcher import (
    StagePaths,
    build_train_ppo_ray_command,
    build_train_sft_command,
    stage_env_vars,
)
from rl.openrlhf.tb_forward import ScalarForwarder, Sink, read_scalars

FORWARDED_FILE = "forwarded.json"


@dataclass(frozen=True)
class OpenRLHFStageResult:
    hf_dir: Path  # the HF model the next stage starts from
    steps: int  # the last global step OpenRLHF logged (steps count from 1)
    final_metrics: dict[str, float]  # the last value of every scalar, by TensorBoard tag
    submission_id: str


def tensorboard_root(settings: Settings, work_dir: Path) -> Path:
    """`--logger.tensorboard_dir` of a stage: one folder per stage run under the configured
    TensorBoard root, so `tensorboard --logdir` over that root shows every stage."""
    return settings.path(settings.curriculum.tensorboard_dir) / work_dir.name


def run_ppo_stage(
    settings: Settings,
    stage: StageConfig,
    *,
    prompt_path: Path,
    model_path: str,
    work_dir: Path,
    sink: Sink | None = None,
    step_offset: int = 0,
    on_log: Callable[[str], None] | None = print,
) -> OpenRLHFStageResult:
    """Train one RL stage with `train_ppo_ray` on the configured Ray cluster."""
    paths = StagePaths(model_path, work_dir / "hf", work_dir / "ckpt", stage.name)
    tb_root = tensorboard_root(settings, work_dir)
    command = build_train_ppo_ray_command(
        stage,
        paths,
        prompt_dataset=str(prompt_path),
        tensorboard_dir=str(tb_root),
        python=settings.curriculum.python,
    )
    env = stage_env_vars(stage, settings.env_service.base_url())
    return run_job(
        settings, command, name=stage.name, env_vars=env, hf_dir=paths.hf_dir,
        tb_run_dir=tb_root / paths.run_name, work_dir=work_dir, sink=sink,
        step_offset=step_offset, on_log=on_log,
    )  # fmt: skip


def run_sft_stage(
    settings: Settings,
    sft: SFTConfig,
    *,
    dataset_path: Path,
    model_path: str,
    work_dir: Path,
    sink: Sink | None = None,
    step_offset: int = 0,
    on_log: Callable[[str], None] | None = print,
) -> OpenRLHFStageResult:
    """The SFT cold start with `train_sft` (DeepSpeed launcher), as a Ray job too."""
    tb_root = tensorboard_root(settings, work_dir)
    command = build_train_sft_command(
        sft,
        model_path=model_path,
        dataset=str(dataset_path),
        output_dir=work_dir,
        tensorboard_dir=str(tb_root),
        run_name="sft",
        launcher=settings.curriculum.deepspeed,
    )
    return run_job(
        settings, command, name="sft", env_vars={}, hf_dir=work_dir / "hf",
        tb_run_dir=tb_root / "sft", work_dir=work_dir, sink=sink, step_offset=step_offset,
        on_log=on_log,
    )  # fmt: skip


def run_job(
    settings: Settings,
    command: list[str],
    *,
    name: str,
    env_vars: Mapping[str, str],
    hf_dir: Path,
    tb_run_dir: Path,
    work_dir: Path,
    sink: Sink | None,
    step_offset: int,
    on_log: Callable[[str], None] | None,
) -> OpenRLHFStageResult:
    """Submit `command`, forward its scalars while it runs, and check it left an HF model."""
    work_dir.mkdir(parents=True, exist_ok=True)
    spec = job_spec(command, name=name, env_vars=env_vars, attempt=uuid.uuid4().hex[:12])
    (work_dir / "job.json").write_text(spec.model_dump_json(indent=2), encoding="utf-8")
    forwarder = ScalarForwarder(
        tb_run_dir, sink or _discard, step_offset=step_offset, sent=_load_sent(work_dir)
    )

    def forward() -> None:
        if forwarder.forward():
            _save_sent(work_dir, forwarder.sent)

    if on_log is not None:
        on_log(" ".join(spec.cli(settings.curriculum.ray_address)))
    submit_and_wait(
        spec,
        settings.curriculum.ray_address,
        on_log=on_log,
        poll_s=settings.curriculum.poll_s,
        on_poll=forward,
    )
    forward()  # what the job wrote after the last poll
    if not (hf_dir / "config.json").is_file():
        raise RuntimeError(
            f"Ray job {spec.submission_id} succeeded but left no HF model in {hf_dir} "
            "(expected OpenRLHF's --ckpt.output_dir with --ckpt.save_hf)"
        )
    final = {s.tag: s.value for s in read_scalars(tb_run_dir)}  # sorted by step: last wins
    return OpenRLHFStageResult(hf_dir, max(forwarder.last_step, 0), final, spec.submission_id)


def _discard(batch: list[tuple[str, float, int]]) -> None:
    return None


def _load_sent(work_dir: Path) -> dict[str, int]:
    path = work_dir / FORWARDED_FILE
    if not path.is_file():
        return {}
    return {str(k): int(v) for k, v in json.loads(path.read_text("utf-8")).items()}


def _save_sent(work_dir: Path, sent: Mapping[str, int]) -> None:
    tmp = work_dir / f".{FORWARDED_FILE}.tmp"
    tmp.write_text(json.dumps(dict(sent), sort_keys=True), encoding="utf-8")
    tmp.replace(work_dir / FORWARDED_FILE)
