"""`literesearcher train`: the curriculum (SFT cold start, then RL stages) as one flow run."""

from __future__ import annotations

import argparse
import json
from typing import Any

from conf import Settings


def _names(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated stage names, e.g. sft,stage1")
    return names


def _data(value: str) -> tuple[str, str]:
    stage, sep, version = value.partition("=")
    if not sep or not stage or not version:
        raise argparse.ArgumentTypeError(f"expected STAGE=VERSION, got {value!r}")
    return stage, version


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "train",
        help=help_text,
        description="Train the curriculum: the SFT cold start (when curriculum.sft.enabled), "
        "then each RL stage from the previous stage's model, with the local GRPO loop or "
        "OpenRLHF on Ray (curriculum.trainer). Every finished stage is a `checkpoints` catalog "
        "version and a registered MLflow model version; re-running skips finished stages and "
        "resumes a broken one from its last checkpoint.",
    )
    p.add_argument("--stages", type=_names, default=None, metavar="A,B",
                   help="stages to run, in order, e.g. sft,stage1 (default: all)")  # fmt: skip
    p.add_argument("--name", default="default",
                   help="the curriculum's name: the MLflow tag compare groups by")  # fmt: skip
    p.add_argument("--base-model", default=None,
                   help="HF model dir or checkpoints version the first stage starts from "
                   "(default: curriculum.sft.model_path or llm.local_policy_path)")  # fmt: skip
    p.add_argument("--data", dest="curriculum", action="append", type=_data, default=None,
                   metavar="STAGE=VERSION",
                   help="curriculum_stage version for a stage (repeatable; default: newest)")  # fmt: skip
    p.add_argument("--sft-data", default=None,
                   help="sft_data version (default: curriculum.sft.dataset, else newest)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from flows.train_curriculum import train_curriculum

    try:
        result = train_curriculum(
            profile=args.profile,
            overrides=args.overrides,
            stages=args.stages,
            curriculum=dict(args.curriculum) if args.curriculum else None,
            sft_data=args.sft_data,
            base_model=args.base_model,
            name=args.name,
        )
    except (LookupError, ValueError, FileNotFoundError) as exc:
        print(f"literesearcher train: {exc}")
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_summary(result)
    return 0


def print_summary(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="curriculum stages")
    for column in ("stage", "steps", "final reward", "checkpoint", "model version", "seconds"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage, info in result["stages"].items():
        reward = info.get("final_reward")
        seconds = info.get("seconds")
        table.add_row(
            stage,
            str(info["steps"]),
            "-" if reward is None else f"{reward:.4g}",
            result["checkpoints"][stage] + (" (skipped)" if info.get("skipped") else ""),
            str(info.get("model_version") or "-"),
            "-" if seconds is None else f"{seconds:.1f}",
        )
    console = Console(width=120)
    console.print(table)
    final = result.get("final") or {}
    if final.get("model_dir"):
        console.print(f"final model: {final['model_dir']}")
    console.print(f"MLflow run: {result['mlflow_run_id']}")
