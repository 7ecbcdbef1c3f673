"""Benchmark: build the local web from N virtual-world pages (BM25 mode), beside a naive baseline.

    .venv/bin/python bench/build_env.py --pages 100000
    .venv/bin/python bench/build_env.py --pages 1000000 --shards 32

The pipeline runs as the real CLI (`literesearcher build-env`: Prefect flow, Dask LocalCluster,
catalog, MLflow) in a subprocess; a sampler sums the RSS of that process and all of its
children (Dask workers, the ephemeral Prefect server) every 0.2 s, split by role (flow, Dask
worker, Prefect server) and into anonymous and file-backed pages, and attributes each sample to
the stage the flow was in (the flow reports each stage's start time). The baseline is the
reference's design: read the whole file into memory, then insert one page at a time into the
page store and the index. It runs in its own subprocess, sampled the same way.

`--replicas K` builds K times the world's pages: the world plus K-1 rewritten copies, copy k
with every host renamed `r<k>-<host>` and `[r<k>] ` before every text, so neither URL nor text
dedup drops them. It reaches 3M pages from a 1M world in a minute rather than the generator's
hour on a shared machine; the page size distribution is the world's.

`--compare-ref REF` also runs the build with the code of git revision REF (extracted with
`git archive`, put first on PYTHONPATH) on the same world, so a change's before and after are
measured side by side under the same machine load.

    .venv/bin/python bench/build_env.py --pages 1000000 --shards 32 --compare-ref HEAD
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]


ROLES = ("flow", "dask worker", "prefect server", "other")


@dataclass
class Sample:
    """One look at the process tree: seconds since the epoch, then bytes per role and kind."""

    at: float
    load1: float
    by_role: dict[str, int] = field(default_factory=dict)
    anon: int = 0
    file: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_role.values())


def role_of(proc: psutil.Process, root_pid: int) -> str:
    if proc.pid == root_pid:
        return "flow"
    cmd = " ".join(proc.cmdline())
    if "spawn_main" in cmd or "distributed" in cmd:
        return "dask worker"
    if "prefect" in cmd and ("server" in cmd or "uvicorn" in cmd):
        return "prefect server"
    return "other"


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon and RssFile of a process in bytes (cheap: one /proc read)."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(value.split()[0]) * 1024
    return out


def tree_sample(root: psutil.Process) -> Sample:
    sample = Sample(time.time(), os.getloadavg()[0])
    for p in [root, *root.children(recursive=True)]:
        try:
            st = proc_status(p.pid)
            role = role_of(p, root.pid)
        except (psutil.Error, OSError):
            continue
        sample.by_role[role] = sample.by_role.get(role, 0) + st.get("VmRSS", 0)
        sample.anon += st.get("RssAnon", 0)
        sample.file += st.get("RssFile", 0) + st.get("RssShmem", 0)
    return sample


def run_sampled(
    cmd: list[str], env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[bytes], float, list[Sample]]:
    """Run `cmd`; return the result, wall seconds and the RSS samples of its process tree."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                            env=env)  # fmt: skip
    samples: list[Sample] = []
    done = threading.Event()

    def sample() -> None:
        ps = psutil.Process(proc.pid)
        while not done.is_set():
            with contextlib.suppress(psutil.Error):
                samples.append(tree_sample(ps))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - started
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), wall, samples


def peak(samples: list[Sample]) -> Sample:
    return max(samples, key=lambda s: s.total, default=Sample(0.0, 0.0))


def stage_peaks(samples: list[Sample], marks: dict[str, float]) -> dict[str, Sample]:
    """The peak sample within each stage ("start-up" before the first, "shut-down" after)."""
    bounds = sorted(marks.items(), key=lambda kv: kv[1])
    out: dict[str, Sample] = {}
    for s in samples:
        stage = "start-up"
        for name, at in bounds:
            if s.at >= at:
                stage = "shut-down" if name == "end" else name
        if s.total > out.get(stage, Sample(0.0, 0.0)).total:
            out[stage] = s
    return out


def naive_build(world_file: Path, out_dir: Path, limit: int) -> None:
    """The baseline: whole file in memory, one INSERT and one index add per page."""
    import duckdb
    import zstandard

    sys.path.insert(0, str(ROOT))
    from env_service.stores.tantivy_index import TantivyIndex
    from literesearcher.urls import canonical_url
    from tasks.corpus.passages import split_passages

    shutil.rmtree(out_dir, ignore_errors=True)  # a fresh baseline each run
    out_dir.mkdir(parents=True)
    started = time.perf_counter()
    raw = zstandard.ZstdDecompressor().stream_reader(world_file.open("rb")).read()
    records = [json.loads(line) for line in io.BytesIO(raw).read().splitlines() if line.strip()]
    con = duckdb.connect(str(out_dir / "naive.duckdb"))
    con.execute("CREATE TABLE pages (url VARCHAR PRIMARY KEY, title VARCHAR, text VARCHAR)")
    index = TantivyIndex(out_dir / "naive-tantivy", writable=True)
    for record in records[:limit]:
        url = canonical_url(record["url"])
        con.execute("INSERT OR REPLACE INTO pages VALUES (?, ?, ?)",
                    [url, record["title"], record["doc"]])  # fmt: skip
        index.add(split_passages(url, record["title"], record["doc"], 160, 32))
    index.commit()
    index.close()
    con.close()
    print(json.dumps({"pages": min(limit, len(records)), "seconds": time.perf_counter() - started}))


GIB = 1 << 30


@dataclass
class BuildRun:
    label: str
    build: dict[str, Any]
    wall: float
    samples: list[Sample]


def export_revision(ref: str, dest: Path) -> Path:
    """The files of git revision `ref` under `dest` (read-only use of git)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def write_replica(world_dir: Path, k: int) -> Path:
    """Copy k of the world's pages with distinct URLs and texts (kept once written)."""
    import zstandard

    out = world_dir.parent / f"{world_dir.name}-replica-{k}.jsonl.zst"
    if out.exists():
        return out
    tmp = out.with_suffix(".partial")
    reader = zstandard.ZstdDecompressor().stream_reader((world_dir / "pages.jsonl.zst").open("rb"))
    with tmp.open("wb") as raw, zstandard.ZstdCompressor(level=3).stream_writer(raw) as sink:
        for line in io.TextIOWrapper(reader, encoding="utf-8"):
            rec = json.loads(line)
            rec["url"] = rec["url"].replace("://", f"://r{k}-", 1)
            rec["doc"] = f"[r{k}] {rec['doc']}"
            sink.write((json.dumps(rec, ensure_ascii=False) + "\n").encode())
    tmp.replace(out)
    return out


def run_build(label: str, inputs: list[Path], work: Path, shards: int, code: Path | None,
              extra: list[str]) -> BuildRun:  # fmt: skip
    data_root = work / f"data-{inputs[0].name}-{int(time.time())}"
    exe = Path(sys.executable).parent / "literesearcher"
    cmd = [str(exe), "--set", f"data_root={data_root}", "--set", "index.retrieval_mode=bm25",
           *[a for kv in extra for a in ("--set", kv)], "build-env",
           *[a for i in inputs for a in ("--input", str(i))], "--shards", str(shards)]  # fmt: skip
    env = dict(os.environ)
    if code is not None:  # that revision's packages shadow the editable install
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH")]))
    print(f"[{label}] building {[i.name for i in inputs]}", file=sys.stderr, flush=True)
    result, wall, samples = run_sampled(cmd, env)
    if result.returncode != 0:
        print(result.stderr.decode()[-4000:], file=sys.stderr)
        raise SystemExit(f"[{label}] build-env failed")
    stdout = result.stdout.decode()
    build = json.loads(stdout[stdout.index("{") :])
    shutil.rmtree(data_root, ignore_errors=True)  # a 3M-page build is several GB
    return BuildRun(label, build, wall, samples)


def report_rows(runs: list[BuildRun]) -> list[str]:
    """Markdown rows: one column per run."""

    def row(name: str, cells: list[str]) -> str:
        return f"| {name} | " + " | ".join(cells) + " |"

    def gib(n: int) -> str:
        return f"{n / GIB:.2f}"

    rows = [row("input records", [f"{r.build['records']:,}" for r in runs]),
            row("pages after dedup / passages",
                [f"{r.build['pages']:,} / {r.build['passages']:,}" for r in runs])]  # fmt: skip
    stages = list(runs[0].build["seconds"])
    for st in stages:
        rows.append(row(f"{st}: seconds, pages/s", [
            f"{r.build['seconds'][st]:.1f} s, {r.build['pages'] / r.build['seconds'][st]:,.0f}"
            for r in runs]))  # fmt: skip
    pipeline = [sum(r.build["seconds"].values()) for r in runs]
    rows.append(row("**pipeline, end to end (sum of stages)**", [
        f"**{sec:.1f} s, {r.build['pages'] / sec:,.0f} pages/s**"
        for r, sec in zip(runs, pipeline, strict=True)]))  # fmt: skip
    rows.append(row("CLI wall (incl. Prefect server, Dask start, MLflow)", [
        f"{r.wall:.1f} s, {r.build['pages'] / r.wall:,.0f} pages/s" for r in runs]))  # fmt: skip
    peaks = [peak(r.samples) for r in runs]
    rows.append(row("**peak RSS, whole process tree (GiB)**", [f"**{gib(p.total)}**"
                                                              for p in peaks]))  # fmt: skip
    rows.append(row("at the peak: flow / Dask workers / Prefect server / other (GiB)", [
        " / ".join(gib(p.by_role.get(role, 0)) for role in ROLES) for p in peaks]))  # fmt: skip
    rows.append(row("at the peak: anonymous / file-backed (GiB)", [
        f"{gib(p.anon)} / {gib(p.file)}" for p in peaks]))  # fmt: skip
    per_stage = [stage_peaks(r.samples, r.build.get("stage_started_at", {})) for r in runs]
    names = ["start-up", *stages, "shut-down"]
    for st in names:
        if not any(st in ps for ps in per_stage):
            continue
        rows.append(row(f"peak RSS in {st}: tree (flow / workers / server; anon / file) GiB", [
            f"{gib(ps[st].total)} ({' / '.join(gib(ps[st].by_role.get(x, 0)) for x in ROLES[:3])}"
            f"; {gib(ps[st].anon)} / {gib(ps[st].file)})"
            if st in ps else "n/a (no stage marks)" for ps in per_stage]))  # fmt: skip
    rows.append(row("1-min load average during the run: mean / max", [
        f"{sum(s.load1 for s in r.samples) / max(len(r.samples), 1):.1f} / "
        f"{max((s.load1 for s in r.samples), default=0):.1f}" for r in runs]))  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--baseline-pages", type=int, default=20_000,
                        help="pages the naive baseline inserts (it reads the whole file "
                        "anyway); it runs at ~100 pages/s, so the default is a subset; "
                        "0 skips the baseline")  # fmt: skip
    parser.add_argument("--replicas", type=int, default=1,
                        help="build the world's pages this many times (rewritten copies)")  # fmt: skip
    parser.add_argument("--compare-ref", default=None, metavar="REF",
                        help="also build with git revision REF's code, side by side")  # fmt: skip
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="settings override for the builds")  # fmt: skip
    parser.add_argument("--work", type=Path, default=Path("/tmp/literesearcher-bench-build"))
    parser.add_argument("--naive-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    world_dir = args.work / f"world-{args.pages}"
    if args.naive_only:
        naive_build(world_dir / "pages.jsonl.zst", args.work / "naive", args.baseline_pages)
        return 0

    sys.path.insert(0, str(ROOT))
    from literesearcher.world.generate import generate_world

    t0 = time.perf_counter()
    generate_world(world_dir, pages=args.pages, seed=0)
    print(f"world: {args.pages} pages ready in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    inputs = [world_dir, *(write_replica(world_dir, k) for k in range(1, args.replicas))]
    runs: list[BuildRun] = []
    if args.compare_ref:
        code = export_revision(args.compare_ref, args.work / "code-compare-ref")
        runs.append(run_build(f"{args.compare_ref} (before)", inputs, args.work, args.shards,
                              code, args.overrides))  # fmt: skip
    runs.append(run_build("this tree", inputs, args.work, args.shards, None, args.overrides))
    for r in runs:
        ps = stage_peaks(r.samples, r.build.get("stage_started_at", {}))
        print(json.dumps({"label": r.label, "build": r.build, "cli_wall_s": r.wall,
                          "peak": asdict(peak(r.samples)),
                          "stage_peaks": {k: asdict(v) for k, v in ps.items()},
                          "series_s_flow_tree_gib": [  # one sample in five: about 1 s apart
                              (round(x.at - r.samples[0].at, 1),
                               round(x.by_role.get("flow", 0) / GIB, 3), round(x.total / GIB, 3))
                              for x in r.samples[::5]]}),
              file=sys.stderr)  # fmt: skip

    print("| measure | " + " | ".join(r.label for r in runs) + " |")
    print("|---|" + "---|" * len(runs))
    print("\n".join(report_rows(runs)))
    if args.baseline_pages <= 0:
        return 0
    baseline_pages = min(args.baseline_pages, args.pages)
    naive_cmd = [sys.executable, str(Path(__file__).resolve()), "--naive-only", "--pages",
                 str(args.pages), "--baseline-pages", str(baseline_pages), "--work",
                 str(args.work)]  # fmt: skip
    naive, _, naive_samples = run_sampled(naive_cmd)
    if naive.returncode != 0:
        print(naive.stderr.decode()[-4000:], file=sys.stderr)
        return 1
    naive_out = json.loads(naive.stdout.decode().strip().splitlines()[-1])
    naive_rate = naive_out["pages"] / naive_out["seconds"]
    last = runs[-1]
    rate = last.build["pages"] / sum(last.build["seconds"].values())
    print(
        f"| naive baseline ({naive_out['pages']:,} pages) | {naive_out['seconds']:.1f} s, "
        f"{naive_rate:,.0f} pages/s, peak RSS {peak(naive_samples).total / GIB:.2f} GiB |"
    )
    print(f"| {last.label} / baseline throughput | {rate / naive_rate:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
