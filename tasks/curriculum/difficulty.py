"""Difficulty filtering on pass@k rates: keep what the policy solves only sometimes, bucket it,
and assemble each stage's task list. Pure functions over rows; the flow does the I/O.

A task is kept when 1 <= n_correct <= k-1 of its k rollouts are correct ("partially
solvable"); 0/k is dropped as `unsolved`, k/k as `always_solved`. A kept task's bucket is
capability x pass-rate bin x trajectory-token bin (on its mean completion tokens). Every choice
that samples (the held-out split, a stage's pick within a capability) hashes the task id with
a seed, so the same inputs give the same sets on every machine.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Protocol, TypeVar

from conf.settings import StageSelection

UNSOLVED = "unsolved"
ALWAYS_SOLVED = "always_solved"
NO_ROLLOUTS = "no_rollouts"


class _Probed(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def capability(self) -> str: ...


_P = TypeVar("_P", bound=_Probed)


@dataclass(frozen=True)
class RatedTask:
    """A kept task with its pass rate and bucket."""

    task_id: str
    capability: str
    k: int
    n_correct: int
    pass_rate: float
    mean_tokens: float
    pass_bin: str
    token_bin: str

    @property
    def bucket(self) -> str:
        return f"{self.capability}|{self.pass_bin}|{self.token_bin}"


@dataclass(frozen=True)
class Classified:
    kept: list[RatedTask]
    dropped: dict[str, Counter[str]]  # reason -> capability -> count

    def dropped_totals(self) -> dict[str, int]:
        return {reason: sum(c.values()) for reason, c in sorted(self.dropped.items())}


def _kilo(tokens: int) -> str:
    return f"{tokens // 1024}K" if tokens % 1024 == 0 else str(tokens)


def token_bin_labels(edges: Sequence[int]) -> list[str]:
    """Labels of the bins the edges cut: `<16K`, `16K-32K`, ..., `>=64K`."""
    if not edges:
        return ["all"]
    labels = [f"<{_kilo(edges[0])}"]
    labels += [f"{_kilo(a)}-{_kilo(b)}" for a, b in pairwise(edges)]
    return [*labels, f">={_kilo(edges[-1])}"]


def token_bin(mean_tokens: float, edges: Sequence[int]) -> str:
    labels = token_bin_labels(edges)
    for i, edge in enumerate(edges):
        if mean_tokens < edge:
            return labels[i]
    return labels[-1]


def pass_bin_labels(edges: Sequence[float]) -> list[str]:
    bounds = [0.0, *edges, 1.0]
    return [f"{a:.2f}-{b:.2f}" for a, b in pairwise(bounds)]


def pass_bin(pass_rate: float, edges: Sequence[float]) -> str:
    """Half-open bins [a, b), the last one closed: [0.75, 1.00]."""
    if any(not 0 < e < 1 for e in edges):
        raise ValueError(f"pass-rate bin edges must lie strictly between 0 and 1, got {edges}")
    labels = pass_bin_labels(edges)
    for i, edge in enumerate(edges):
        if pass_rate < edge:
            return labels[i]
    return labels[-1]


def classify(
    rates: Iterable[Mapping[str, Any]],
    capabilities: Mapping[str, str],
    *,
    token_edges: Sequence[int],
    pass_edges: Sequence[float],
    min_correct: int = 1,
    max_correct: int | None = None,
) -> Classified:
    """Keep partially solvable tasks and bucket them. `rates`: pass_rates rows (task_id, k,
    n_correct, pass_rate, mean_tokens); `capabilities`: task id -> capability, every task of
    the pool (a pool task with no rates row is dropped as `no_rollouts`). A task is kept when
    min_correct <= n_correct <= max_correct (default k - 1): solved 1 to k-1 times."""
    kept: list[RatedTask] = []
    dropped: dict[str, Counter[str]] = {}
    seen: set[str] = set()
    for row in rates:
        task_id = str(row["task_id"])
        if task_id not in capabilities:
            raise ValueError(f"pass_rates row for task {task_id!r}, which is not in the pool")
        seen.add(task_id)
        capability = capabilities[task_id]
        k, n_correct = int(row["k"]), int(row["n_correct"])
        top = k - 1 if max_correct is None else max_correct
        reason = UNSOLVED if n_correct < min_correct else ALWAYS_SOLVED if n_correct > top else None
        if reason is not None:
            dropped.setdefault(reason, Counter())[capability] += 1
            continue
        rate = n_correct / k
        tokens = float(row["mean_tokens"])
        kept.append(
            RatedTask(task_id, capability, k, n_correct, rate, tokens,
                      pass_bin(rate, pass_edges), token_bin(tokens, token_edges))
        )  # fmt: skip
    for task_id, capability in capabilities.items():
        if task_id not in seen:
            dropped.setdefault(NO_ROLLOUTS, Counter())[capability] += 1
    kept.sort(key=lambda t: t.task_id)
    return Classified(kept, dropped)


def seeded_rank(seed: int | str, task_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\x1f{task_id}".encode()).digest()[:8], "big")


def is_heldout(task_id: str, fraction: float, seed: int) -> bool:
    """The held-out split: a fixed share of task ids by hash, independent of the pool's order."""
    return seeded_rank(f"heldout:{seed}", task_id) < fraction * 2**64


def probe_subset(ids: Sequence[str], max_tasks: int | None, seed: int) -> set[str]:
    """The ids to roll out when at most `max_tasks` may be: a seeded sample by hash of the id
    (the same ids on every machine, whatever the pool's order); all of them when None."""
    if max_tasks is None or max_tasks >= len(ids):
        return set(ids)
    return set(sorted(ids, key=lambda i: seeded_rank(f"probe:{seed}", i))[:max_tasks])


def probe_tasks(
    pool: Sequence[_P], capabilities: Iterable[str] | None, max_tasks: int | None, seed: int
) -> list[_P]:
    """The training tasks the difficulty probe rolls out: those of `capabilities` (None: every
    capability; the ones no RL stage selects would be probed for nothing), then at most
    `max_tasks` of them (`probe_subset`), in `pool`'s order."""
    if capabilities is not None:
        wanted = set(capabilities)
        pool = [t for t in pool if t.capability in wanted]
    probed = probe_subset([t.id for t in pool], max_tasks, seed)
    return [t for t in pool if t.id in probed]


def in_part(task_id: str, part: int, parts: int, seed: int) -> bool:
    """Whether `task_id` falls in part `part` (1-based) of `parts`: the hash range cut into
    `parts` equal slices, so the parts are disjoint and cover every id, each about 1/`parts`
    of them, independent of the stage and the pool."""
    return seeded_rank(f"part:{seed}", task_id) * parts >> 64 == part - 1


def _quotas(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split `total` by weight, largest remainder first (ties by name): sums to `total`."""
    norm = sum(weights.values())
    exact = {c: total * w / norm for c, w in weights.items()}
    quotas = {c: int(x) for c, x in exact.items()}
    left = total - sum(quotas.values())
    for c in sorted(exact, key=lambda c: (-(exact[c] - quotas[c]), c))[:left]:
        quotas[c] += 1
    return quotas


def select_stage(
    kept: Sequence[RatedTask], selection: StageSelection, *, seed: int, stage: str
) -> list[RatedTask]:
    """The stage's tasks: the kept tasks in its buckets and part, mixed by capability share,
    capped at `max_tasks`; which tasks fill a quota is decided by a seeded hash of the task id."""
    if selection.min_pass_rate > selection.max_pass_rate:
        raise ValueError(
            f"stage {stage}: min_pass_rate {selection.min_pass_rate} > max_pass_rate "
            f"{selection.max_pass_rate}"
        )
    caps = set(selection.capabilities) if selection.capabilities is not None else None
    bins = set(selection.token_bins) if selection.token_bins is not None else None
    pool = [
        t
        for t in kept
        if (caps is None or t.capability in caps)
        and selection.min_pass_rate <= t.pass_rate <= selection.max_pass_rate
        and (bins is None or t.token_bin in bins)
        and in_part(t.task_id, selection.part, selection.parts, seed)
    ]

    def rank(t: RatedTask) -> tuple[int, str]:
        return seeded_rank(f"{seed}:{stage}", t.task_id), t.task_id

    pool.sort(key=rank)
    total = min(selection.max_tasks or len(pool), len(pool))
    if selection.mix is None:
        return pool[:total]
    weights = {c: w for c, w in selection.mix.items() if w > 0}
    if not weights:
        raise ValueError(f"stage {stage}: mix gives no capability a positive share")
    chosen: list[RatedTask] = []
    for capability, quota in _quotas(total, weights).items():
        chosen += [t for t in pool if t.capability == capability][:quota]
    return sorted(chosen, key=rank)


def bucket_sizes(tasks: Iterable[RatedTask]) -> dict[str, int]:
    return dict(sorted(Counter(t.bucket for t in tasks).items()))


def pass_count_histogram(rates: Iterable[Mapping[str, Any]], k: int) -> dict[str, int]:
    """How many tasks were solved 0, 1, ..., k times out of k (the pass-rate histogram)."""
    counts = Counter(int(r["n_correct"]) for r in rates)
    return {f"{n}/{k}": counts.get(n, 0) for n in range(k + 1)}


def svg_bar_chart(counts: Mapping[str, int], title: str, *, width: int = 480) -> str:
    """A small self-contained SVG bar chart (no plotting library needed)."""
    height, top, bottom, left = 240, 30, 40, 40
    n = max(len(counts), 1)
    peak = max(counts.values(), default=0) or 1
    slot = (width - left - 10) / n
    bars = []
    for i, (label, value) in enumerate(counts.items()):
        h = (height - top - bottom) * value / peak
        x = left + i * slot + slot * 0.1
        y = height - bottom - h
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" height="{h:.1f}" '
            f'fill="#4c72b0"/>'
            f'<text x="{x + slot * 0.4:.1f}" y="{y - 4:.1f}" font-size="11" '
            f'text-anchor="middle">{value}</text>'
            f'<text x="{x + slot * 0.4:.1f}" y="{height - bottom + 16:.1f}" font-size="11" '
            f'text-anchor="middle">{_xml(label)}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif">'
        f'<text x="{width / 2:.0f}" y="18" font-size="13" text-anchor="middle">{_xml(title)}</text>'
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" '
        f'stroke="#333"/>{"".join(bars)}</svg>'
    )


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
