"""The real build-env flow, killed mid-way with SIGKILL and run again: nothing is duplicated."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import zstandard

from env_service.stores.duckdb_pages import DuckDBPageStore
from env_service.stores.tantivy_index import TantivyIndex
from tasks.corpus.passages import split_passages

PAGES = 3000
URL_DUPS = 300
TEXT_DUPS = 200
SHARDS = 24
COMMIT_SHARDS = 2  # index.load_commit_shards: one tantivy commit per 2 shards


def write_corpus(path: Path) -> int:
    """A corpus with URL duplicates (other spellings) and text duplicates; returns passages."""
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(3000)]
    texts = [" ".join(rng.choices(vocab, k=rng.randint(40, 400))) for _ in range(PAGES)]
    lines = [{"url": f"https://k.example/p{i}", "title": f"P{i}", "doc": t}
             for i, t in enumerate(texts)]  # fmt: skip
    lines += [{"url": f"http://www.k.example/p{i}/", "title": "dup", "doc": "short"}
              for i in range(URL_DUPS)]  # fmt: skip
    lines += [{"url": f"https://k.example/q{i}", "title": "copy", "doc": texts[i]}
              for i in range(TEXT_DUPS)]  # fmt: skip
    rng.shuffle(lines)
    data = "".join(json.dumps(x) + "\n" for x in lines).encode()
    path.write_bytes(zstandard.ZstdCompressor().compress(data))
    return sum(len(split_passages(f"https://k.example/p{i}", "", t, 160, 32))
               for i, t in enumerate(texts))  # fmt: skip


def dask_workers(pid: int) -> list[psutil.Process]:
    """Dask worker processes (multiprocessing spawn children) under `pid`."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
    return found


def cli(data_root: Path, corpus: Path) -> list[str]:
    exe = Path(sys.executable).parent / "literesearcher"
    return [str(exe), "--set", f"data_root={data_root}", "--set", "dask.n_workers=2",
            "--set", "corpus.ingest_chunk_records=1000",
            "--set", f"index.load_commit_shards={COMMIT_SHARDS}",
            "build-env", "--input", str(corpus), "--shards", str(SHARDS)]  # fmt: skip


@pytest.mark.slow
def test_kill_mid_build_then_resume_leaves_no_duplicates(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl.zst"
    expected_passages = write_corpus(corpus)
    data_root = tmp_path / "data"
    catalog = data_root / "catalog"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with (tmp_path / "run1.log").open("wb") as log:
        first = subprocess.Popen(cli(data_root, corpus), stdout=log, stderr=subprocess.STDOUT,
                                 env=env, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 400
        loaded: list[Path] = []
        while time.monotonic() < deadline and first.poll() is None:
            loaded = list(catalog.glob("search_index/*/parts/*/_part.json"))
            if loaded:
                break
            time.sleep(0.02)
        assert first.poll() is None, "the first run ended before it could be killed mid-way"
        assert loaded, "no shard was loaded in time"
        # The stores load in the flow process: the Dask workers were shut down before.
        assert not dask_workers(first.pid), "Dask workers still running while the stores load"
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert not list(catalog.glob("search_index/*/_manifest.json")), "killed after the last shard"
    loaded_before = len(list(catalog.glob("search_index/*/parts/*/_part.json")))
    assert 1 <= loaded_before < SHARDS
    # The page store loads only after the index (one after the other, their peaks never add).
    assert not list(catalog.glob("page_store/*/parts/*/_part.json"))

    second = subprocess.run(cli(data_root, corpus), capture_output=True, env=env, timeout=600)
    assert second.returncode == 0, second.stderr.decode()[-3000:]
    result = json.loads(second.stdout.decode()[second.stdout.decode().index("{") :])
    assert result["pages"] == PAGES
    assert result["duplicates"] == {"url": URL_DUPS, "text": TEXT_DUPS}
    assert result["passages"] == expected_passages
    marks = result["stage_started_at"]
    assert list(marks) == ["ingest", "shard", "passages", "load", "end"]
    assert list(marks.values()) == sorted(marks.values())
    # Finished shards were skipped: the resumed run loaded only the rest into the index (in
    # groups of COMMIT_SHARDS, a shard recorded only after its group's commit), then every
    # shard into the page store.
    log2 = second.stderr.decode() + second.stdout.decode()
    groups = -(-(SHARDS - loaded_before) // COMMIT_SHARDS)
    assert log2.count("Task run 'load-index-shards") == groups
    assert log2.count("Task run 'load-pages-shard") == SHARDS

    pages = DuckDBPageStore(data_root / "pages.duckdb")
    index = TantivyIndex(data_root / "index" / "tantivy")
    try:
        assert pages.count() == PAGES
        assert index.count() == expected_passages  # delete-then-add: no passage twice
        [hits] = index.search(["w17 w230"], top_k=5)
        assert hits and all(h.url.startswith("https://k.example/p") for h in hits)
    finally:
        pages.close()
        index.close()
