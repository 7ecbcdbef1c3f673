"""Load test of env_service: /search, /visit and the RL mix, cache off and on.

Builds (once, resumably skipped when its marker exists) a BM25 environment of N virtual-world
pages directly through the store implementations (tantivy + DuckDB), starts
`literesearcher serve` on loopback, and drives it with C concurrent clients for a bounded
number of requests per workload. The baseline, measured in the same run, is the stores called
directly in-process (no HTTP, no service): the service's own cost is the difference. The page
store baseline is taken twice: the store's `get_many` (point lookups on the primary key) and
the earlier `IN (SELECT unnest(?))` semi-join, which scans the table.

Several server variants can be compared in one run, interleaved per workload so that the
machine's load hits them alike: `--variant LABEL=SERVE ARGS` (repeatable), optionally
`LABEL@TREE=SERVE ARGS` to run `serve` from another source tree (e.g. an export of an older
commit). The server's CPU time per request is summed over its whole process tree (workers).
The load generator is a minimal asyncio HTTP/1.1 client (`--client raw`, ~0.2 ms of CPU per
request); `--client httpx` costs ~4.6 ms per request on the same cores.

    python bench/env_load.py --pages 100000 --root .literesearcher/bench/env-100k
    python bench/env_load.py --pages 1000000 --requests 3000 \
        --variant "1 worker=--workers 1" --variant "2 workers=--workers 2"

Prints a Markdown table (paste into docs/BENCHMARKS.md) and writes JSON with --json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conf import Settings, load_settings  # noqa: E402
from env_service.stores.base import Page  # noqa: E402
from env_service.stores.factory import open_lexical_index, open_page_store  # noqa: E402
from literesearcher.urls import canonical_url  # noqa: E402
from literesearcher.world.generate import iter_world  # noqa: E402
from tasks.corpus.passages import split_passages  # noqa: E402

SEARCH_SHARE = 45.8 / (45.8 + 27.4)  # the paper's RL tool-call split: 62.6% search
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9]{2,}")


def bench_settings(root: Path, *extra: str) -> Settings:
    return load_settings("local", [f"data_root={root}", "index.retrieval_mode=bm25", *extra])


def build(root: Path, pages: int, seed: int) -> None:
    marker = root / f"BUILT-{pages}-{seed}"
    if marker.exists():
        print(f"environment at {root} already built ({pages} pages)")
        return
    settings = bench_settings(root)
    lexical = open_lexical_index(settings, writable=True)
    store = open_page_store(settings, writable=True)
    words, overlap = settings.corpus.passage_words, settings.corpus.passage_overlap
    batch: list[Page] = []
    try:
        with tqdm(total=pages, unit="page", desc="build") as bar:
            for _, _, world_pages in iter_world(seed, pages):
                for wp in world_pages:
                    page = Page(canonical_url(wp.url), wp.title, wp.doc)
                    lexical.add(split_passages(page.url, page.title, page.text, words, overlap))
                    batch.append(page)
                if len(batch) >= 20_000:
                    store.upsert(batch)
                    bar.update(len(batch))
                    batch = []
            if batch:
                store.upsert(batch)
                bar.update(len(batch))
        lexical.commit()
    finally:
        lexical.close()
        store.close()
    marker.write_text(json.dumps({"pages": pages, "seed": seed}))


def sample_workload(
    root: Path, n: int, distinct: int, seed: int
) -> list[tuple[str, dict[str, Any]]]:
    """`n` requests drawn from `distinct` search and visit bodies (RL repeats tasks: 8 rollouts
    each, so the same queries and pages recur); the share of search follows the paper."""
    settings = bench_settings(root)
    rng = random.Random(seed)
    # Read the page file as a plain DuckDB table (read-only) to draw a repeatable sample.
    with duckdb.connect(str(settings.path(settings.page_store.duckdb_path)), read_only=True) as con:
        rows = con.execute(
            f"SELECT url, title, text FROM {settings.page_store.table} "
            f"USING SAMPLE reservoir({int(distinct)} ROWS) REPEATABLE ({int(seed)})"
        ).fetchall()
    searches: list[dict[str, Any]] = []
    visits: list[dict[str, Any]] = []
    for url, title, text in rows:
        words = _WORD_RE.findall(f"{title} {text}")
        if not words:
            continue
        q = " ".join(rng.sample(words, min(len(words), rng.randint(2, 5))))
        searches.append({"query": [q], "top_k": 10})
        visits.append(
            {"url": [url], "goal": f"Find {' '.join(rng.sample(words, min(3, len(words))))}"}
        )
    requests: list[tuple[str, dict[str, Any]]] = []
    for _ in range(n):
        if rng.random() < SEARCH_SHARE:
            requests.append(("search", rng.choice(searches)))
        else:
            requests.append(("visit", rng.choice(visits)))
    return requests


@dataclass(frozen=True)
class Variant:
    label: str
    tree: Path  # the source tree `serve` runs from
    args: tuple[str, ...]  # extra arguments of `serve`; `--set K=V` pairs go before `serve`

    @staticmethod
    def parse(spec: str) -> Variant:
        head, sep, args = spec.partition("=")
        if not sep or not head.strip():
            raise argparse.ArgumentTypeError(f"--variant {spec!r}: expected LABEL[@TREE]=ARGS")
        label, _, tree = head.partition("@")
        root = Path(tree).resolve() if tree else ROOT
        if not (root / "literesearcher" / "cli.py").exists():
            raise argparse.ArgumentTypeError(f"--variant {spec!r}: {root} is no source tree")
        return Variant(label.strip(), root, tuple(args.split()))


@dataclass
class RunResult:
    workload: str
    cache: str
    requests: int
    errors: int
    seconds: float
    throughput: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cache_hit_ratio: float | None = None
    server_cpu_ms: float = 0.0  # server process CPU time per request (robust to contention)
    client_cpu_ms: float = 0.0  # this load generator's CPU time per request
    load_avg: float = 0.0  # 1-minute load average at the end of the run (2 cores)
    variant: str = ""


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


@dataclass
class Drive:
    latencies: list[float]
    errors: int
    seconds: float
    cache_hits: int  # responses with `x-cache: hit`
    cache_misses: int  # responses with `x-cache: miss`


async def drive(
    base_url: str, requests: list[tuple[str, dict[str, Any]]], concurrency: int
) -> Drive:
    latencies: list[float] = []
    errors = 0
    cache = {"hit": 0, "miss": 0}
    queue = iter(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            for route, body in queue:
                start = time.perf_counter()
                try:
                    r = await client.post(f"/{route}", json=body)
                    ok = r.status_code == 200
                    seen = r.headers.get("x-cache")
                    if seen in cache:
                        cache[seen] += 1
                    kind = f"{route} {r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as exc:
                    ok = False
                    kind = f"{route} {type(exc).__name__}: {exc}"
                latencies.append(time.perf_counter() - start)
                if not ok:
                    errors += 1
                    if errors <= 5:
                        print(f"error: {kind}", file=sys.stderr, flush=True)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return Drive(latencies, errors, elapsed, cache["hit"], cache["miss"])


async def drive_raw(
    base_url: str, requests: list[tuple[str, dict[str, Any]]], concurrency: int
) -> Drive:
    """`drive` on a minimal HTTP/1.1 keep-alive client over asyncio streams (one connection
    per client): httpx costs the load generator about as much CPU per request as the service
    itself, and both share the same two cores."""
    url = httpx.URL(base_url)
    host, port = url.host, url.port or 80
    encoded = [
        (
            route,
            b"POST /%s HTTP/1.1\r\nhost: %s:%d\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (route.encode(), host.encode(), port, len(raw), raw),
        )
        for route, raw in ((r, json.dumps(b).encode()) for r, b in requests)
    ]
    latencies: list[float] = []
    errors = 0
    cache = {b"hit": 0, b"miss": 0}
    queue = iter(encoded)

    async def worker() -> None:
        nonlocal errors
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for route, request in queue:
            start = time.perf_counter()
            try:
                if conn is None:
                    conn = await asyncio.open_connection(host, port)
                reader, writer = conn
                async with asyncio.timeout(30):
                    writer.write(request)
                    head = await reader.readuntil(b"\r\n\r\n")
                    lines = head.split(b"\r\n")
                    status = int(lines[0].split(b" ", 2)[1])
                    headers = {}
                    for line in lines[1:]:
                        name, _, value = line.partition(b":")
                        headers[name.strip().lower()] = value.strip()
                    if b"content-length" not in headers:
                        raise ValueError(f"no content-length in {head!r}")
                    body = await reader.readexactly(int(headers[b"content-length"]))
                ok = status == 200
                seen = headers.get(b"x-cache")
                if seen in cache:
                    cache[seen] += 1
                kind = f"{route} {status}: {body[:200]!r}"
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                ok = False
                kind = f"{route} {type(exc).__name__}: {exc}"
                if conn is not None:
                    conn[1].close()
                conn = None
            latencies.append(time.perf_counter() - start)
            if not ok:
                errors += 1
                if errors <= 5:
                    print(f"error: {kind}", file=sys.stderr, flush=True)
        if conn is not None:
            conn[1].close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    return Drive(latencies, errors, elapsed, cache[b"hit"], cache[b"miss"])


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and all its live descendants (Linux /proc)."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited meanwhile
    return total


def cache_lookups(base_url: str) -> tuple[float, float]:
    """(hits, misses) of the response cache so far, summed over routes."""
    text = httpx.get(f"{base_url}/metrics").text
    found = re.findall(
        r'^env_cache_lookups_total\{result="(hit|miss)",route="[^"]*"\} (\S+)$', text, re.M
    )
    hits = sum(float(v) for k, v in found if k == "hit")
    return hits, sum(float(v) for k, v in found if k == "miss")


def serve(root: Path, port: int, cache: bool, variant: Variant) -> subprocess.Popen[bytes]:
    overrides: list[str] = []
    serve_args: list[str] = []
    args = iter(variant.args)
    for arg in args:
        if arg == "--set":
            overrides += [arg, next(args)]
        else:
            serve_args.append(arg)
    cmd = [
        sys.executable, "-m", "literesearcher.cli",
        "--set", f"data_root={root}", "--set", "index.retrieval_mode=bm25",
        "--set", f"cache.enabled={str(cache).lower()}", "--set", "cache.backend=lru",
        *overrides, "serve", "--port", str(port), *serve_args,
    ]  # fmt: skip
    env = dict(os.environ)
    if variant.tree != ROOT:  # its packages first, ahead of the editable install
        env["PYTHONPATH"] = os.pathsep.join([str(variant.tree), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(cmd, cwd=variant.tree, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("service did not become ready in 60 s")


def direct_baseline(
    root: Path, requests: list[tuple[str, dict[str, Any]]], n: int
) -> dict[str, float]:
    """The stores alone, in-process, one call at a time: the floor under the service."""
    settings = bench_settings(root)
    lexical, store = open_lexical_index(settings), open_page_store(settings)
    pool = settings.env_service.top_k * settings.index.fusion.candidate_multiplier
    out: dict[str, list[float]] = {"search": [], "visit": [], "visit_semijoin": []}
    # The earlier page lookup, for comparison: a semi-join against the unnested URL list.
    old = duckdb.connect(
        str(settings.path(settings.page_store.duckdb_path)),
        read_only=True,
        config={"memory_limit": settings.page_store.duckdb_memory_limit},
    )
    semijoin = (
        f"SELECT url, title, text FROM {settings.page_store.table} "
        "WHERE url IN (SELECT unnest(?::VARCHAR[]))"
    )
    for route, body in requests[:n]:
        t = time.perf_counter()
        if route == "search":
            lexical.search(body["query"], pool)
            out[route].append(time.perf_counter() - t)
            continue
        got = store.get_many(body["url"])
        out[route].append(time.perf_counter() - t)
        t = time.perf_counter()
        rows = old.execute(semijoin, [body["url"]]).fetchall()
        out["visit_semijoin"].append(time.perf_counter() - t)
        if len(rows) != len(got):
            raise RuntimeError(f"page lookups disagree on {body['url']}: {len(rows)} != {len(got)}")
    old.close()
    lexical.close()
    store.close()
    return {f"{k}_p50_ms": round(1000 * statistics.median(v), 3) for k, v in out.items() if v}


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pages", type=int, default=100_000)
    ap.add_argument(
        "--root",
        type=Path,
        default=None,
        help="environment dir (default .literesearcher/bench/env-<pages>)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--requests", type=int, default=10_000, help="requests per workload and cache setting"
    )
    ap.add_argument("--distinct", type=int, default=5_000, help="distinct request bodies sampled")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--port", type=int, default=18765)
    ap.add_argument("--workloads", default="search,visit,mixed")
    ap.add_argument("--caches", default="off,on")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--single-requests", type=int, default=500,
                    help="requests of the one-client service-time runs (0: skip them)")  # fmt: skip
    ap.add_argument("--build-only", action="store_true", help="build the environment and stop")
    ap.add_argument("--client", choices=["raw", "httpx"], default="raw",
                    help="load generator: a minimal asyncio HTTP/1.1 client, or httpx")  # fmt: skip
    ap.add_argument("--variant", type=Variant.parse, action="append", default=[],
                    help="server variant LABEL[@TREE]=SERVE ARGS (repeatable; default: one "
                    "variant, `serve` with no extra arguments)")  # fmt: skip
    args = ap.parse_args()
    variants: list[Variant] = args.variant or [Variant("", ROOT, ())]
    root = (args.root or ROOT / ".literesearcher" / "bench" / f"env-{args.pages}").resolve()
    t = time.perf_counter()
    build(root, args.pages, args.seed)
    build_s = time.perf_counter() - t
    if args.build_only:
        return 0
    mixed = sample_workload(root, args.requests, args.distinct, args.seed)
    by_route = {
        "search": [r for r in mixed if r[0] == "search"],
        "visit": [r for r in mixed if r[0] == "visit"],
    }
    workloads = {
        "search": (by_route["search"] * (args.requests // max(1, len(by_route["search"])) + 1))[
            : args.requests
        ],
        "visit": (by_route["visit"] * (args.requests // max(1, len(by_route["visit"])) + 1))[
            : args.requests
        ],
        "mixed": mixed,
    }
    baseline = direct_baseline(root, mixed, min(2000, len(mixed)))
    results: list[RunResult] = []
    warm = sample_workload(root, 1000, args.distinct, args.seed + 1)  # other bodies
    runs = [(name, args.concurrency, cache) for cache in args.caches.split(",")
            for name in args.workloads.split(",")]  # fmt: skip
    # Service time: one client, one request at a time (what the paper's 0.15 s compares to).
    runs += [(name, 1, "off") for name in ("search", "visit") if args.single_requests]
    plan = [(run, v) for run in runs for v in variants]  # variants interleaved per workload
    for (name, concurrency, cache), variant in tqdm(plan, desc="runs", unit="run"):
        reqs = workloads[name] if concurrency > 1 else workloads[name][: args.single_requests]
        # Fresh server: every run starts with a cold cache.
        proc = serve(root, args.port, cache == "on", variant)
        base = f"http://127.0.0.1:{args.port}"
        try:
            warm_reqs = [r for r in warm if name == "mixed" or r[0] == name][:500]
            driver = drive_raw if args.client == "raw" else drive
            asyncio.run(driver(base, warm_reqs, concurrency))  # warm-up (not counted)
            cpu0, lookups0 = process_cpu_s(proc.pid), cache_lookups(base)
            client0 = time.process_time()
            d = asyncio.run(driver(base, reqs, concurrency))
            client_ms = 1000 * (time.process_time() - client0) / len(reqs)
            cpu_ms = 1000 * (process_cpu_s(proc.pid) - cpu0) / len(reqs)
            if d.cache_hits + d.cache_misses:  # the header counts every worker's cache
                hits, misses = float(d.cache_hits), float(d.cache_misses)
            else:  # a server without the header (one worker): its metrics
                hits, misses = (b - a for a, b in zip(lookups0, cache_lookups(base), strict=True))
            lat = d.latencies
            results.append(
                RunResult(
                    workload=name if concurrency > 1 else f"{name}, 1 client", cache=cache,
                    requests=len(reqs), errors=d.errors,
                    seconds=round(d.seconds, 2), throughput=round(len(reqs) / d.seconds, 1),
                    p50_ms=round(1000 * percentile(lat, 0.50), 2),
                    p95_ms=round(1000 * percentile(lat, 0.95), 2),
                    p99_ms=round(1000 * percentile(lat, 0.99), 2),
                    cache_hit_ratio=round(hits / max(1.0, hits + misses), 3) if cache == "on" else None,
                    server_cpu_ms=round(cpu_ms, 2), client_cpu_ms=round(client_ms, 2),
                    load_avg=round(os.getloadavg()[0], 1), variant=variant.label,
                )
            )  # fmt: skip
            tqdm.write(str(results[-1]))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"\n{args.pages:,} pages, BM25, {args.concurrency} clients, build {build_s:.0f} s")
    print(f"direct store baseline (in-process, sequential): {baseline}\n")
    print("| server | workload | cache | requests | p50 ms | p95 ms | p99 ms | req/s | errors "
          "| server CPU ms/req | client CPU ms/req | hit ratio | load avg |")  # fmt: skip
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        hit = "" if r.cache_hit_ratio is None else f"{r.cache_hit_ratio:.2f}"
        print(f"| {r.variant} | {r.workload} | {r.cache} | {r.requests} | {r.p50_ms} | {r.p95_ms} "
              f"| {r.p99_ms} | {r.throughput} | {r.errors} | {r.server_cpu_ms} "
              f"| {r.client_cpu_ms} | {hit} | {r.load_avg} |")  # fmt: skip
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "pages": args.pages,
                    "concurrency": args.concurrency,
                    "baseline": baseline,
                    "build_s": build_s,
                    "results": [asdict(r) for r in results],
                },
                indent=2,
            )
        )
    return 0 if all(r.errors == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
