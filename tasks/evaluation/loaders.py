"""Loaders for benchmark files as each benchmark publishes them, read from local paths only.

Every loader returns `EvalItem`s. Field names are matched case-insensitively with spaces and
dashes read as underscores (GAIA's `Final answer` is `final_answer`, WebWalkerQA's `Root_Url`
is `root_url`). A file that lacks a needed field raises `BenchmarkFormatError` naming the
fields expected and the fields found. Text-only subsets drop rows with attachments (GAIA
`file_name`, HLE `image`) and count them.

Encrypted releases are decrypted in memory, never written back:
- BrowseComp / BrowseComp-ZH: base64 ciphertext XOR-ed with SHA-256(canary) repeated
  (the scheme of openai/simple-evals `browsecomp_eval.py`); the password is the row's `canary`.
- Xbench-DeepSearch: base64 ciphertext XOR-ed with the row's `canary` string repeated.
A row whose question is not base64 is taken as plaintext, so decrypted copies load too.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class BenchmarkFormatError(ValueError):
    """The file does not have the shape this benchmark publishes."""


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    answers: list[str]
    benchmark: str
    capability: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    # Pages hidden from the agent (synthesized tasks: those whose one read gives it away).
    mask_urls: list[str] = field(default_factory=list)

    def as_task(self) -> dict[str, Any]:
        """The record `rl.episode.AgentTask` reads."""
        return {"id": self.id, "question": self.question, "answers": self.answers,
                "mask_urls": list(self.mask_urls)}  # fmt: skip


@dataclass
class LoadResult:
    items: list[EvalItem]
    dropped: dict[str, int] = field(default_factory=dict)


# ------------------------------------------------------------------ reading files


def _norm_key(key: str) -> str:
    return key.strip().lower().replace(" ", "_").replace("-", "_")


def _norm_row(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        nk = _norm_key(str(k))
        out[nk] = _norm_row(v) if isinstance(v, Mapping) else v
    return out


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSON (list, or object holding one list), JSONL, Parquet, CSV or TSV file."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"benchmark file not found: {p}")
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        rows = []
        with p.open(encoding="utf-8-sig") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise BenchmarkFormatError(f"{p}:{lineno}: not valid JSON ({exc})") from None
    elif suffix == ".json":
        data = json.loads(p.read_text(encoding="utf-8-sig"))
        if isinstance(data, dict):
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise BenchmarkFormatError(f"{p}: expected a JSON list of records")
            data = lists[0]
        rows = data
    elif suffix == ".parquet":
        import pyarrow.parquet as pq  # lazily: the CLI imports this module to build --help

        rows = pq.read_table(p).to_pylist()
    elif suffix in (".csv", ".tsv"):
        with p.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ","))
    elif suffix == ".xlsx":
        rows = _read_xlsx(p)
    else:
        raise BenchmarkFormatError(
            f"{p}: unsupported extension {suffix!r}; use .json, .jsonl, .parquet, .csv or .tsv"
        )
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise BenchmarkFormatError(f"{p}: expected a list of records (objects)")
    return [_norm_row(r) for r in rows]


def _read_xlsx(p: Path) -> list[dict[str, Any]]:
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        raise BenchmarkFormatError(
            f"{p}: reading .xlsx needs openpyxl (pip install openpyxl), or export the sheet "
            "to CSV first"
        ) from None
    import pandas as pd

    return [dict(r) for r in pd.read_excel(p).to_dict(orient="records")]


# ------------------------------------------------------------------ decryption


def _xor(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % len(key)] for i, b in enumerate(data))


def is_ciphertext(value: str) -> bool:
    """Base64 with no spaces: a published question is never that, an encrypted one always."""
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return bool(value)


def _decode(value: str, key_for: Callable[[int], bytes]) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
        return _xor(raw, key_for(len(raw))).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BenchmarkFormatError(
            "an encrypted row has a field that does not decrypt with its canary"
        ) from None


def decrypt_sha256_xor(value: str, password: str) -> str:
    """BrowseComp's scheme: XOR with the SHA-256 digest of the password, repeated."""
    digest = hashlib.sha256(password.encode()).digest()
    return _decode(value, lambda n: digest)


def decrypt_canary_xor(value: str, canary: str) -> str:
    """Xbench's scheme: XOR with the canary string's bytes, repeated."""
    key = canary.encode("utf-8")
    return _decode(value, lambda n: key)


# ------------------------------------------------------------------ benchmarks


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN from pandas/CSV gaps
        return ""
    return str(value).strip()


def _answers(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [t for t in (_text(v) for v in value) if t]
    text = _text(value)
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            return [t for t in (_text(v) for v in parsed) if t]
    return [text] if text else []


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    # Each entry: alternatives for one needed field (the first one present is used).
    required: tuple[tuple[str, ...], ...]
    build: Callable[[dict[str, Any], int], EvalItem | str]  # an item, or a reason to drop
    published: str


def _pick(row: dict[str, Any], *names: str) -> Any:
    for n in names:
        if n in row:
            return row[n]
    return None


def _gaia(row: dict[str, Any], i: int) -> EvalItem | str:
    if _text(row.get("file_name")):
        return "has_attachment"
    return EvalItem(
        id=_text(row["task_id"]),
        question=_text(row["question"]),
        answers=_answers(row["final_answer"]),
        benchmark="gaia",
        capability=f"level-{_text(row.get('level')) or '?'}",
        metadata={"level": _text(row.get("level"))},
    )


def _browsecomp(name: str) -> Callable[[dict[str, Any], int], EvalItem | str]:
    def build(row: dict[str, Any], i: int) -> EvalItem | str:
        canary = _text(row.get("canary"))
        question = _text(_pick(row, "problem", "question"))
        answer = _text(row["answer"])
        if canary and is_ciphertext(question):
            question = decrypt_sha256_xor(question, canary)
            answer = decrypt_sha256_xor(answer, canary)
        topic = _text(_pick(row, "problem_topic", "topic"))  # published in plaintext
        return EvalItem(
            id=_text(row.get("id")) or f"{name}-{i:05d}",
            question=question,
            answers=[answer] if answer else [],
            benchmark=name,
            capability=topic,
        )

    return build


def _xbench(row: dict[str, Any], i: int) -> EvalItem | str:
    canary = _text(row.get("canary"))
    question = _text(_pick(row, "prompt", "question"))
    answer = _text(row["answer"])
    if canary and is_ciphertext(question):
        question = decrypt_canary_xor(question, canary)
        answer = decrypt_canary_xor(answer, canary)
    return EvalItem(
        id=_text(row.get("id")) or f"xbench-deepsearch-{i:05d}",
        question=question,
        answers=[answer] if answer else [],
        benchmark="xbench-deepsearch",
        capability=_text(row.get("type")),
    )


def _hle(row: dict[str, Any], i: int) -> EvalItem | str:
    if _text(row.get("image")):
        return "has_image"
    return EvalItem(
        id=_text(row["id"]),
        question=_text(row["question"]),
        answers=_answers(row["answer"]),
        benchmark="hle",
        capability=_text(row.get("category")),
        metadata={"answer_type": _text(row.get("answer_type"))},
    )


def _frames(row: dict[str, Any], i: int) -> EvalItem | str:
    return EvalItem(
        id=_text(_pick(row, "id", "", "unnamed:_0")) or f"frames-{i:05d}",
        question=_text(row["prompt"]),
        answers=_answers(row["answer"]),
        benchmark="frames",
        capability=_text(row.get("reasoning_types")),
        metadata={"wiki_links": _text(row.get("wiki_links"))},
    )


def _webwalker(row: dict[str, Any], i: int) -> EvalItem | str:
    info = row.get("info") if isinstance(row.get("info"), Mapping) else {}
    assert isinstance(info, Mapping)
    return EvalItem(
        id=_text(row.get("id")) or f"webwalkerqa-{i:05d}",
        question=_text(row["question"]),
        answers=_answers(row["answer"]),
        benchmark="webwalkerqa",
        capability=_text(info.get("type") or info.get("hop")),
        metadata={
            "root_url": _text(row.get("root_url")),
            "difficulty_level": _text(info.get("difficulty_level")),
            "domain": _text(info.get("domain")),
            "lang": _text(info.get("lang") or info.get("language")),
        },
    )


def _seal0(row: dict[str, Any], i: int) -> EvalItem | str:
    return EvalItem(
        id=_text(row.get("id")) or f"seal-0-{i:05d}",
        question=_text(row["question"]),
        answers=_answers(row["answer"]),
        benchmark="seal-0",
        capability=_text(row.get("topic")),
        metadata={"freshness": _text(row.get("freshness"))},
    )


def _heldout(row: dict[str, Any], i: int) -> EvalItem | str:
    return EvalItem(
        id=_text(row["id"]),
        question=_text(row["question"]),
        answers=_answers(_pick(row, "answers", "answer")),
        benchmark="heldout",
        capability=_text(row.get("capability")),
        mask_urls=[_text(u) for u in row.get("mask_urls") or []],
    )


BENCHMARKS: dict[str, BenchmarkSpec] = {
    s.name: s
    for s in [
        BenchmarkSpec(
            "gaia",
            (("task_id",), ("question",), ("final_answer",)),
            _gaia,
            "GAIA validation metadata.jsonl: task_id, Question, Level, Final answer, file_name",
        ),
        BenchmarkSpec(
            "browsecomp",
            (("problem", "question"), ("answer",)),
            _browsecomp("browsecomp"),
            "browse_comp_test_set.csv: problem, answer, problem_topic, canary (encrypted)",
        ),
        BenchmarkSpec(
            "browsecomp-zh",
            (("question", "problem"), ("answer",)),
            _browsecomp("browsecomp-zh"),
            "BrowseComp-ZH: Topic, Question, Answer, canary (encrypted; xlsx exported to CSV)",
        ),
        BenchmarkSpec(
            "xbench-deepsearch",
            (("prompt", "question"), ("answer",)),
            _xbench,
            "DeepSearch.csv: id, prompt, answer, canary (encrypted)",
        ),
        BenchmarkSpec(
            "hle",
            (("id",), ("question",), ("answer",)),
            _hle,
            "HLE test parquet: id, question, image, answer, answer_type, category",
        ),
        BenchmarkSpec(
            "frames",
            (("prompt",), ("answer",)),
            _frames,
            "frames-benchmark test.tsv: Prompt, Answer, wiki_links, reasoning_types",
        ),
        BenchmarkSpec(
            "webwalkerqa",
            (("question",), ("answer",)),
            _webwalker,
            "WebWalkerQA jsonl: Question, Answer, Root_Url, Info{Hop, Domain, Difficulty_Level}",
        ),
        BenchmarkSpec(
            "seal-0",
            (("question",), ("answer",)),
            _seal0,
            "SealQA seal_0 parquet: question, answer, urls, freshness, topic",
        ),
        BenchmarkSpec(
            "heldout",
            (("id",), ("question",), ("answers", "answer")),
            _heldout,
            "held-out synthesized tasks (JSONL/Parquet): id, question, answers[], capability",
        ),
    ]
}


def _check_fields(path: Path, spec: BenchmarkSpec, rows: list[dict[str, Any]]) -> None:
    found: set[str] = set()
    for r in rows:
        found.update(r)
    expected = [" or ".join(alts) for alts in spec.required]
    missing = [e for e, alts in zip(expected, spec.required, strict=True) if not found & set(alts)]
    if missing or not rows:
        raise BenchmarkFormatError(
            f"{path} does not look like {spec.name} ({spec.published}): expected fields "
            f"{expected} (case-insensitive), missing {missing or 'all: the file has no rows'}; "
            f"found {sorted(found)}"
        )
    for i, r in enumerate(rows):
        absent = [
            e for e, alts in zip(expected, spec.required, strict=True) if not set(r) & set(alts)
        ]
        if absent:
            raise BenchmarkFormatError(f"{path}: row {i} lacks fields {absent}; has {sorted(r)}")


def load_benchmark(name: str, path: str | Path) -> LoadResult:
    """Load one benchmark file; rows without a question or answer are an error, not a drop."""
    try:
        spec = BENCHMARKS[name]
    except KeyError:
        raise BenchmarkFormatError(
            f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}"
        ) from None
    p = Path(path)
    rows = read_records(p)
    _check_fields(p, spec, rows)
    items: list[EvalItem] = []
    dropped: dict[str, int] = {}
    ids: set[str] = set()
    for i, row in enumerate(rows):
        built = spec.build(row, i)
        if isinstance(built, str):
            dropped[built] = dropped.get(built, 0) + 1
            continue
        if not built.question or not built.answers:
            raise BenchmarkFormatError(f"{p}: row {i} has an empty question or answer")
        if built.id in ids:
            raise BenchmarkFormatError(f"{p}: duplicate id {built.id!r} at row {i}")
        ids.add(built.id)
        items.append(built)
    return LoadResult(items, dropped)


def load_benchmarks(paths: Mapping[str, str | Path]) -> dict[str, LoadResult]:
    """{benchmark name: file path} -> {benchmark name: loaded items}."""
    return {name: load_benchmark(name, path) for name, path in paths.items()}


def benchmark_names() -> Iterable[str]:
    return sorted(BENCHMARKS)
