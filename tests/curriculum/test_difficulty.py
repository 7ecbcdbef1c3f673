"""Difficulty selection and bucketing on crafted pass-rate rows (exact expected sets)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from conf import load_settings
from conf.settings import DifficultyConfig, StageSelection
from tasks.curriculum.difficulty import (
    ALWAYS_SOLVED,
    NO_ROLLOUTS,
    UNSOLVED,
    classify,
    is_heldout,
    pass_bin,
    pass_count_histogram,
    probe_subset,
    probe_tasks,
    select_stage,
    svg_bar_chart,
    token_bin,
    token_bin_labels,
)

EDGES = DifficultyConfig().token_bins
PASS_EDGES = DifficultyConfig().pass_rate_bins


def row(task_id: str, n_correct: int, k: int = 8, tokens: float = 1000.0) -> dict[str, object]:
    return {"task_id": task_id, "k": k, "n_correct": n_correct,
            "pass_rate": n_correct / k, "mean_tokens": tokens}  # fmt: skip


CAPS = {"a0": "direct_retrieval", "a1": "direct_retrieval", "a7": "direct_retrieval",
        "a8": "direct_retrieval", "b2": "aggregation", "b4": "aggregation",
        "b6": "aggregation", "c3": "statistics", "missing": "statistics"}  # fmt: skip
ROWS = [
    row("a0", 0), row("a1", 1, tokens=100), row("a7", 7, tokens=20_000), row("a8", 8),
    row("b2", 2, tokens=40_000), row("b4", 4, tokens=60_000), row("b6", 6, tokens=70_000),
    row("c3", 3, tokens=16_384),
]  # fmt: skip


def test_default_token_bins_are_the_reference_bins() -> None:
    assert token_bin_labels(EDGES) == ["<16K", "16K-32K", "32K-48K", "48K-64K", ">=64K"]
    assert [token_bin(t, EDGES) for t in (0, 16_383, 16_384, 49_151, 65_536, 1e6)] == [
        "<16K", "<16K", "16K-32K", "32K-48K", ">=64K", ">=64K"
    ]  # fmt: skip


def test_pass_bins_are_half_open_with_the_last_closed() -> None:
    got = [pass_bin(p, PASS_EDGES) for p in (0.125, 0.25, 0.5, 0.74, 0.75, 1.0)]
    assert got == ["0.00-0.25", "0.25-0.50", "0.50-0.75", "0.50-0.75", "0.75-1.00", "0.75-1.00"]
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        pass_bin(0.5, [0.5, 1.0])


def test_classify_keeps_exactly_the_partially_solved_tasks() -> None:
    found = classify(ROWS, CAPS, token_edges=EDGES, pass_edges=PASS_EDGES)
    assert [t.task_id for t in found.kept] == ["a1", "a7", "b2", "b4", "b6", "c3"]
    assert {r: dict(c) for r, c in found.dropped.items()} == {
        UNSOLVED: {"direct_retrieval": 1},
        ALWAYS_SOLVED: {"direct_retrieval": 1},
        NO_ROLLOUTS: {"statistics": 1},
    }
    assert {t.task_id: t.bucket for t in found.kept} == {
        "a1": "direct_retrieval|0.00-0.25|<16K",
        "a7": "direct_retrieval|0.75-1.00|16K-32K",
        "b2": "aggregation|0.25-0.50|32K-48K",
        "b4": "aggregation|0.50-0.75|48K-64K",
        "b6": "aggregation|0.75-1.00|>=64K",
        "c3": "statistics|0.25-0.50|16K-32K",
    }


def test_classify_uses_each_rows_own_k() -> None:
    found = classify([row("a1", 3, k=3), row("a7", 2, k=3)], {"a1": "x", "a7": "x"},
                     token_edges=EDGES, pass_edges=PASS_EDGES)  # fmt: skip
    assert [t.task_id for t in found.kept] == ["a7"]
    with pytest.raises(ValueError, match="not in the pool"):
        classify([row("zz", 1)], CAPS, token_edges=EDGES, pass_edges=PASS_EDGES)


def kept() -> list:
    return classify(ROWS, CAPS, token_edges=EDGES, pass_edges=PASS_EDGES).kept


def ids(selection: StageSelection, seed: int = 0, stage: str = "s") -> set[str]:
    return {t.task_id for t in select_stage(kept(), selection, seed=seed, stage=stage)}


def test_default_selection_takes_every_kept_task() -> None:
    assert ids(StageSelection()) == {"a1", "a7", "b2", "b4", "b6", "c3"}


def test_selection_by_capability_pass_rate_and_token_bin() -> None:
    assert ids(StageSelection(capabilities=["aggregation"])) == {"b2", "b4", "b6"}
    assert ids(StageSelection(min_pass_rate=0.25, max_pass_rate=0.5)) == {"b2", "b4", "c3"}
    assert ids(StageSelection(token_bins=["<16K", ">=64K"])) == {"a1", "b6"}
    both = StageSelection(capabilities=["aggregation", "statistics"], token_bins=["16K-32K"])
    assert ids(both) == {"c3"}
    with pytest.raises(ValueError, match="min_pass_rate"):
        ids(StageSelection(min_pass_rate=0.6, max_pass_rate=0.5))


def test_mix_ratios_set_capability_shares_of_max_tasks() -> None:
    # 4 tasks at 1:1 -> 2 + 2; statistics (not in the mix) is left out.
    sel = StageSelection(mix={"direct_retrieval": 1, "aggregation": 1}, max_tasks=4)
    picked = select_stage(kept(), sel, seed=0, stage="s")
    caps = sorted(t.capability for t in picked)
    assert caps == ["aggregation", "aggregation", "direct_retrieval", "direct_retrieval"]
    # A share larger than what exists gives all there is; the others are not raised.
    sel = StageSelection(mix={"statistics": 3, "aggregation": 1}, max_tasks=4)
    assert ids(sel) == {"c3"} | (ids(sel) & {"b2", "b4", "b6"}) and len(ids(sel)) == 2
    with pytest.raises(ValueError, match="positive share"):
        ids(StageSelection(mix={"aggregation": 0}))


def test_parts_are_disjoint_cover_the_kept_tasks_and_ignore_the_stage() -> None:
    many = classify(
        [row(f"t{i}", 1 + i % 6) for i in range(400)],
        {f"t{i}": "direct_retrieval" if i % 2 else "aggregation" for i in range(400)},
        token_edges=EDGES, pass_edges=PASS_EDGES,
    ).kept  # fmt: skip

    def part(p: int, n: int, stage: str, seed: int = 3, **kw: object) -> set[str]:
        sel = StageSelection(part=p, parts=n, **kw)  # type: ignore[arg-type]
        return {t.task_id for t in select_stage(many, sel, seed=seed, stage=stage)}

    halves = [part(1, 2, "stage1"), part(2, 2, "stage2")]
    assert not halves[0] & halves[1] and halves[0] | halves[1] == {t.task_id for t in many}
    assert all(160 < len(h) < 240 for h in halves)  # ~200 each
    assert part(1, 2, "stage2") == halves[0]  # the stage's name does not move the cut...
    assert part(1, 2, "stage1", seed=4) != halves[0]  # ...the seed does
    thirds = [part(p, 3, "s") for p in (1, 2, 3)]
    assert sum(map(len, thirds)) == 400 and not (thirds[0] & thirds[1] | thirds[1] & thirds[2])
    # Other filters narrow a part, never cross it: the easy tasks of part 1 lie in part 1.
    easy = part(1, 2, "stage1", min_pass_rate=0.5)
    assert easy and easy < halves[0]
    # max_tasks caps within the part.
    assert part(2, 2, "stage2", max_tasks=50) < halves[1]
    with pytest.raises(ValueError, match=r"part must be 1\.\.parts"):
        StageSelection(part=3, parts=2)


def test_selection_is_deterministic_given_seed_and_stage() -> None:
    sel = StageSelection(max_tasks=3)
    runs = {frozenset(ids(sel, seed=s, stage=st)) for s in range(6) for st in ("s1", "s2")}
    assert all(len(r) == 3 for r in runs) and len(runs) > 1  # the seed matters...
    assert ids(sel, seed=4, stage="s1") == ids(sel, seed=4, stage="s1")  # ...and only it
    order = [t.task_id for t in select_stage(list(reversed(kept())), sel, seed=4, stage="s1")]
    assert order == [t.task_id for t in select_stage(kept(), sel, seed=4, stage="s1")]


def test_heldout_split_is_a_stable_share_by_task_id() -> None:
    task_ids = [f"task-{i}" for i in range(2000)]
    held = {t for t in task_ids if is_heldout(t, 0.2, seed=0)}
    assert 340 < len(held) < 460  # ~20% of 2000
    assert held == {t for t in reversed(task_ids) if is_heldout(t, 0.2, seed=0)}
    assert held != {t for t in task_ids if is_heldout(t, 0.2, seed=1)}
    assert not any(is_heldout(t, 0.0, seed=0) for t in task_ids)


def test_probe_subset_is_a_seeded_sample_independent_of_order() -> None:
    task_ids = [f"task-{i}" for i in range(500)]
    chosen = probe_subset(task_ids, 96, seed=0)
    assert len(chosen) == 96 and chosen <= set(task_ids)
    assert chosen == probe_subset(list(reversed(task_ids)), 96, seed=0)
    assert chosen != probe_subset(task_ids, 96, seed=1)
    assert probe_subset(task_ids, 1000, seed=0) == set(task_ids)
    assert probe_subset(task_ids, None, seed=0) == set(task_ids)


@dataclass(frozen=True)
class _Task:
    id: str
    capability: str


def test_probe_tasks_keeps_the_selected_capabilities_then_samples() -> None:
    pool = [_Task(f"t{i}", ("aggregation", "statistics")[i % 2]) for i in range(40)]
    everything = probe_tasks(pool, None, None, seed=0)
    assert everything == pool
    chosen = probe_tasks(pool, ["aggregation"], None, seed=0)
    assert chosen == [t for t in pool if t.capability == "aggregation"]
    sampled = probe_tasks(pool, ["aggregation"], 5, seed=0)
    assert len(sampled) == 5 and {t.capability for t in sampled} == {"aggregation"}
    ids = [t.id for t in chosen]
    assert {t.id for t in sampled} == probe_subset(ids, 5, seed=0)
    assert probe_tasks(pool, [], None, seed=0) == []


def test_selected_capabilities_is_the_union_of_the_stages_selections() -> None:
    settings = load_settings("local")
    assert settings.curriculum.selected_capabilities() is None  # a stage takes every one
    stages = ("[{name: a, select: {capabilities: [statistics]}}, "
              "{name: b, select: {capabilities: [aggregation, statistics]}}]")  # fmt: skip
    picked = load_settings("local", [f"curriculum.stages={stages}"])
    assert picked.curriculum.selected_capabilities() == ["aggregation", "statistics"]
    mixed = load_settings("local", ["curriculum.stages=[{name: a, select: {capabilities: "
                                    "[statistics]}}, {name: b}]"])  # fmt: skip
    assert mixed.curriculum.selected_capabilities() is None


def test_histogram_counts_tasks_per_number_of_correct_rollouts() -> None:
    hist = pass_count_histogram(ROWS, 8)
    assert hist == {"0/8": 1, "1/8": 1, "2/8": 1, "3/8": 1, "4/8": 1, "5/8": 0, "6/8": 1,
                    "7/8": 1, "8/8": 1}  # fmt: skip
    svg = svg_bar_chart(hist, "pass <rate>")
    assert svg.startswith("<svg") and svg.count("<rect") == 9 and "&lt;rate&gt;" in svg


def test_keep_range_is_configurable():
    rows = [row("a1", 0, k=3), row("a7", 2, k=3), row("b2", 3, k=3)]
    caps = {"a1": "x", "a7": "x", "b2": "x"}
    wide = classify(rows, caps, token_edges=EDGES, pass_edges=PASS_EDGES, min_correct=0,
                    max_correct=3)  # fmt: skip
    assert [t.task_id for t in wide.kept] == ["a1", "a7", "b2"]
    only_solved = classify(rows, caps, token_edges=EDGES, pass_edges=PASS_EDGES, min_correct=3,
                           max_correct=3)  # fmt: skip
    assert [t.task_id for t in only_solved.kept] == ["b2"]
    assert {r: dict(c) for r, c in only_solved.dropped.items()} == {UNSOLVED: {"x": 2}}
