"""Curriculum stage config -> the OpenRLHF 0.11 command line (dotted flags).

Every flag emitted here is checked by tests against OpenRLHF's own argument parsers
(`openrlhf.cli.train_ppo_ray`, `openrlhf.cli.train_sft`), so a renamed flag fails a test rather
than a cluster job.

Stage layout under `output_root/<stage>/`: `hf/` (the HF model the next stage starts from,
`--ckpt.output_dir`), `ckpt/` (DeepSpeed states for resuming within the stage, `--ckpt.path`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conf.settings import SFTConfig, StageConfig

AGENT_FILE = Path(__file__).with_name("agent.py")

# The protocol's raw rendering (`rl.protocol.render_message_raw`) as a chat template, so that
# OpenRLHF's SFT dataset masks exactly what our rollouts render (thinking kept verbatim).
PROTOCOL_CHAT_TEMPLATE = (
    # No whitespace control (`-`): it would also eat the newlines that belong to the text.
    "{% for m in messages %}"
    "{% if m['role'] == 'tool' %}"
    "<|im_start|>user\n<tool_response>\n{{ m['content'] }}\n</tool_response><|im_end|>\n"
    "{% else %}"
    "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Environment variables the agent file reads on the Ray workers.
ENV_URL_VAR = "LITERESEARCHER_ENV_URL"
MAX_TURNS_VAR = "LITERESEARCHER_MAX_TURNS"
MAX_TOKENS_PER_TURN_VAR = "LITERESEARCHER_MAX_TOKENS_PER_TURN"


@dataclass(frozen=True)
class StagePaths:
    model_path: str  # what this stage starts from
    hf_dir: Path  # its HF output: the next stage's model_path
    ckpt_dir: Path  # its resumable DeepSpeed checkpoints
    run_name: str

    @classmethod
    def for_stage(cls, name: str, model_path: str, output_root: Path) -> StagePaths:
        root = output_root / name
        return cls(model_path, root / "hf", root / "ckpt", name)


def plan_stages(
    stages: list[StageConfig], base_model: str, output_root: Path
) -> list[tuple[StageConfig, StagePaths]]:
    """Chain stages: each starts from its own `model_path` or else the previous stage's HF
    output (the first: `base_model`, e.g. the SFT output)."""
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"stage names must be unique: {names}")
    plan: list[tuple[StageConfig, StagePaths]] = []
    previous = base_model
    for stage in stages:
        paths = StagePaths.for_stage(stage.name, stage.model_path or previous, output_root)
        plan.append((stage, paths))
        previous = str(paths.hf_dir)
    return plan


def build_train_ppo_ray_command(
    stage: StageConfig,
    paths: StagePaths,
    *,
    prompt_dataset: str,
    tensorboard_dir: str,
    agent_func_path: str | Path = AGENT_FILE,
    resume: bool = True,
    python: str = "python3",
) -> list[str]:
    """The `train_ppo_ray` argv for one stage: GRPO (group_norm), no KL unless asked,
    clip-higher, the agent file driving multi-turn rollouts."""
    cmd = [
        python, "-m", "openrlhf.cli.train_ppo_ray",
        # Cluster shape: actor on all GPUs, vLLM engines colocated and put to sleep in turns.
        "--actor.num_nodes", str(stage.num_nodes),
        "--actor.num_gpus_per_node", str(stage.gpus_per_node),
        "--ref.num_nodes", str(stage.num_nodes),
        "--ref.num_gpus_per_node", str(stage.gpus_per_node),
        "--vllm.num_engines", str(stage.vllm_num_engines),
        "--vllm.tensor_parallel_size", str(stage.vllm_tensor_parallel_size),
        "--vllm.gpu_memory_utilization", str(stage.vllm_gpu_memory_utilization),
        # Model and data.
        "--actor.model_name_or_path", paths.model_path,
        "--train.agent_func_path", str(agent_func_path),
        "--data.prompt_dataset", prompt_dataset,
        "--data.input_key", stage.input_key,
        "--data.label_key", stage.label_key,
        "--data.max_len", str(stage.max_len),
        "--rollout.max_new_tokens", str(stage.max_tokens_per_turn),
        "--rollout.temperature", str(stage.temperature),
        "--rollout.top_p", str(stage.top_p),
        # GRPO.
        "--algo.advantage.estimator", "group_norm",
        "--rollout.n_samples_per_prompt", str(stage.n_samples_per_prompt),
        "--rollout.batch_size", str(stage.rollout_batch_size),
        "--rollout.micro_batch_size", str(stage.micro_rollout_batch_size),
        "--train.num_episodes", str(stage.num_episodes),
        "--actor.eps_clip_low_high", str(stage.eps_clip_low), str(stage.eps_clip_high),
        "--actor.loss_agg_mode", "token-mean",
        "--actor.adam.lr", str(stage.lr),
        "--actor.lr_scheduler", stage.lr_scheduler,
        "--actor.max_norm", str(stage.max_norm),
        "--algo.kl.init_coef", str(stage.kl_coef),
        *_run_flags(
            "actor", batch_size=stage.train_batch_size,
            micro_batch_size=stage.micro_train_batch_size, seed=stage.seed,
            zero_stage=stage.zero_stage, hf_dir=paths.hf_dir, ckpt_dir=paths.ckpt_dir,
            save_steps=stage.save_steps, tensorboard_dir=tensorboard_dir,
            run_name=paths.run_name, resume=resume,
        ),
    ]  # fmt: skip
    if stage.kl_coef > 0:
        cmd += ["--algo.kl.use_loss", "--algo.kl.estimator", "k3"]
    if stage.colocate_all:
        cmd += ["--train.colocate_all", "--vllm.enable_sleep", "--ds.enable_sleep"]
    if stage.dynamic_filtering:
        low, high = stage.dynamic_filtering_range
        cmd += [
            "--algo.dynamic_filtering_enable",
            "--algo.dynamic_filtering_range",
            str(low),
            str(high),
        ]
    return cmd


def _run_flags(
    model_group: str,
    *,
    batch_size: int,
    micro_batch_size: int,
    seed: int,
    zero_stage: int,
    hf_dir: Path,
    ckpt_dir: Path,
    save_steps: int,
    tensorboard_dir: str,
    run_name: str,
    resume: bool,
) -> list[str]:
    """The flags both trainers take alike: batch sizes and seed, DeepSpeed in bf16 with
    gradient checkpointing (of the `actor` for PPO, the `model` for SFT), HF and resumable
    checkpoints, TensorBoard logs, and resuming from the latest checkpoint when asked."""
    flags = [
        "--train.batch_size", str(batch_size),
        "--train.micro_batch_size", str(micro_batch_size),
        "--train.seed", str(seed),
        "--ds.zero_stage", str(zero_stage),
        "--ds.param_dtype", "bf16",
        f"--{model_group}.gradient_checkpointing_enable",
        "--ckpt.output_dir", str(hf_dir),
        "--ckpt.path", str(ckpt_dir),
        "--ckpt.save_steps", str(save_steps),
        "--ckpt.save_hf",
        "--logger.tensorboard_dir", tensorboard_dir,
        "--logger.wandb.run_name", run_name,
    ]  # fmt: skip
    if resume:
        flags.append("--ckpt.load_enable")
    return flags


def stage_env_vars(stage: StageConfig, env_url: str) -> dict[str, str]:
    """What the agent file on the Ray workers needs to know about the stage."""
    return {
        ENV_URL_VAR: env_url,
        MAX_TURNS_VAR: str(stage.max_turns),
        MAX_TOKENS_PER_TURN_VAR: str(stage.max_tokens_per_turn),
    }


def build_train_sft_command(
    sft: SFTConfig,
    *,
    model_path: str,
    dataset: str,
    output_dir: Path,
    tensorboard_dir: str,
    run_name: str = "sft",
    resume: bool = True,
    input_key: str = "messages",
    launcher: str = "deepspeed",
) -> list[str]:
    """`openrlhf.cli.train_sft` on multi-turn trajectories (a `messages` list per row), the
    loss on assistant turns only, rendered with the protocol's template."""
    return [
        # DeepSpeed's launcher starts one process per GPU of the node.
        launcher, "--num_gpus", str(sft.num_gpus_per_node), "--module", "openrlhf.cli.train_sft",
        "--model.model_name_or_path", model_path,
        "--data.dataset", dataset,
        "--data.input_key", input_key,
        "--data.multiturn",
        "--data.apply_chat_template",
        "--data.tokenizer_chat_template", PROTOCOL_CHAT_TEMPLATE,
        "--data.max_len", str(sft.max_len),
        "--train.max_epochs", str(sft.epochs),
        "--adam.lr", str(sft.lr),
        "--max_norm", str(sft.max_norm),
        *_run_flags(
            "model", batch_size=sft.batch_size, micro_batch_size=sft.micro_batch_size,
            seed=sft.seed, zero_stage=3, hf_dir=output_dir / "hf", ckpt_dir=output_dir / "ckpt",
            save_steps=sft.save_steps, tensorboard_dir=tensorboard_dir, run_name=run_name,
            resume=resume,
        ),
    ]  # fmt: skip
