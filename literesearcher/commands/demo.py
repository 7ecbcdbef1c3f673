"""`literesearcher demo`: the main job, the whole pipeline on the embedded default.

Runs the `reproduce` flow with the `demo` profile (the local profile plus the miniature
recipe in conf/demo.yaml): world -> local web -> env_service -> tasks -> oracle teacher ->
SFT -> difficulty filter -> two RL stages -> held-out eval -> summary table. Everything is
cached in the data catalog, so a second run is fast; `--from STAGE` redoes a stage onward.
"""

from __future__ import annotations

import argparse
import json

from conf import Settings, load_settings
from conf.settings import PIPELINE_STAGES as STAGES

DEMO_PROFILE = "demo"


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "demo",
        help=help_text,
        description=f"{help_text}. Uses the '{DEMO_PROFILE}' profile unless --profile is given. "
        f"Stages: {' -> '.join(STAGES)}.",
    )
    p.add_argument("--from", dest="from_stage", choices=STAGES, default=None,
                   help="re-run from this stage onward (earlier stages come from the cache)")  # fmt: skip
    p.add_argument("--name", default="demo", help="the run's curriculum name (MLflow tag)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from flows.reproduce import reproduce
    from flows.runtime import configure_runtime

    profile = args.profile or DEMO_PROFILE
    if args.profile is None:  # the CLI set the runtime up for the default profile
        configure_runtime(load_settings(profile, args.overrides), force=True)
    result = reproduce(profile=profile, overrides=args.overrides, name=args.name,
                       from_stage=args.from_stage)  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    return 0
