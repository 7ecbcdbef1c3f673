"""`literesearcher filter`: pass@k difficulty filtering, then one curriculum dataset per stage."""

from __future__ import annotations

import argparse
import json

from conf import Settings


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "filter",
        help=help_text,
        description="Hold out a share of tasks_filtered for evaluation, roll out the policy k "
        "times per remaining task in env_service (started in-process when none answers), keep "
        "the tasks solved 1..k-1 times, bucket them by capability x pass rate x trajectory "
        "length, and write one curriculum_stage dataset per configured stage.",
    )
    p.add_argument("--tasks", default=None,
                   help="tasks_filtered version (default: the newest)")  # fmt: skip
    p.add_argument("--policy", default=None,
                   help="HF model dir or checkpoints version (default: the configured policy)")  # fmt: skip
    p.add_argument("-k", type=int, default=None,
                   help="rollouts per task (default: curriculum.difficulty.k, else rl.k)")  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from flows.filter_difficulty import filter_difficulty

    if args.k is not None and args.k < 2:
        print("-k must be >= 2 (a task is kept when solved 1..k-1 times)")
        return 2
    result = filter_difficulty(
        profile=args.profile,
        overrides=args.overrides,
        tasks_version=args.tasks,
        policy=args.policy,
        k=args.k,
    )
    print(json.dumps(result, indent=2))
    return 0
