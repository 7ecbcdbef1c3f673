"""Startup time of `literesearcher serve` (target: ready in under 10 s), measured here and not
asserted in tests/env_service/test_serve.py.

Builds the tests' tiny local web (tests/env_service/conftest.py: `demo_pages` written with
`make_settings`) in a temporary folder, then starts `serve` on it N times, each run timed from
launch to the first `GET /ready` that answers 200. The baseline, measured in the same run and
interleaved with it, is `python -c "import env_service.app"`: the import cost alone, so the
table shows how much of startup is imports; a bare `python -c pass` gives the interpreter's.

    .venv/bin/python bench/serve_startup.py [--runs 3]

Prints a Markdown table (paste into docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from literesearcher.testing import (  # noqa: E402
    free_port,
    serve_command,
    serve_subprocess,
    write_local_web,
)


def tiny_web(root: Path) -> None:
    """The env_service tests' `env_root` fixture: their demo pages, their settings."""
    spec = importlib.util.spec_from_file_location(
        "env_service_conftest", ROOT / "tests" / "env_service" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    write_local_web(conftest.make_settings(root), conftest.demo_pages())


def time_command(cmd: list[str]) -> float:
    start = time.monotonic()
    subprocess.run(cmd, cwd=ROOT, check=True)
    return time.monotonic() - start


def time_serve(root: Path, timeout_s: float) -> float:
    """Seconds from launching `serve` (as the test does) to its first 200 on /ready."""
    port = free_port()
    cmd = serve_command(root, port)
    url = f"http://127.0.0.1:{port}/ready"
    with serve_subprocess(cmd, url, cwd=ROOT, timeout_s=timeout_s, poll_s=0.01) as served:
        return served.startup_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="starts of each kind (default 3)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per serve start")
    args = parser.parse_args()

    bare: list[float] = []
    imports: list[float] = []
    serve: list[float] = []
    with tempfile.TemporaryDirectory(prefix="serve-startup-") as tmp:
        root = Path(tmp)
        tiny_web(root)
        for _ in range(args.runs):  # interleaved, so the machine's load hits each alike
            bare.append(time_command([sys.executable, "-c", "pass"]))
            imports.append(time_command([sys.executable, "-c", "import env_service.app"]))
            serve.append(time_serve(root, args.timeout))

    rows = {
        "`python -c pass` (interpreter)": bare,
        '`python -c "import env_service.app"` (imports)': imports,
        "`literesearcher serve` to first 200 on /ready": serve,
    }
    print(f"`literesearcher serve` startup on the tests' tiny local web, {args.runs} runs each\n")
    print("| what | median s | max s | share of serve's median |")
    print("|---|---:|---:|---:|")
    for name, times in rows.items():
        med = statistics.median(times)
        share = med / statistics.median(serve)
        print(f"| {name} | {med:.2f} | {max(times):.2f} | {share:.0%} |")


if __name__ == "__main__":
    main()
