"""What a finished demo's RL stages trained on, read from its data root (issue 10, session 10).

    .venv/bin/python bench/demo_rl_tasks.py --data-root .literesearcher

For each difficulty probe (`rollouts` versions written by `filter_difficulty`: k > 1 on training
tasks) it splits the tasks by whether an `sft_data` version of the catalog shows them
("demonstrated": the SFT policy was trained on a trajectory of that very task) and counts how
many were solved 0..k times. For each `curriculum_stage` version it lists the tasks RL trained
on (capability, gold answer, correct of k, demonstrated or not). For each evaluation (rollouts
with `purpose: eval`) it prints correct episodes, malformed endings, episodes with a failed
tool call, and how many questions were solved partly (1..k-1 of k) and always; then, per
capability, where its episodes stopped on the way to a correct answer: the episode ended
malformed; no search result listed an evidence page; one was listed but the policy's first visit
went to another listed result (`other_result`), to a URL no search listed (`bad_url`: a URL
miscopied from the results), or it visited nothing (`no_visit`); it visited an evidence page but
the page text did not contain the gold answer; the text did and the answer was still wrong;
correct; and of the misread ones, how many answered with words of the question itself and how
many quoted the visit's Summary line instead of the page's evidence. Last, for each later
one-sample evaluation (the RL stages' checkpoints), the questions it gained and lost against
the first (the SFT checkpoint's), by where the wrong episode stopped.

Everything is read-only: DuckDB over the catalog's Parquet files.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb

from env_service.formats import VISIT_LAYOUT
from rl.protocol import extract_answer
from rl.teacher import QUOTE_TEMPLATE, grounded, search_result_urls

_VISITED = re.compile(r"The useful information in (\S+) for user goal")
STEPS = ("malformed", "not_listed", "other_result", "bad_url", "no_visit", "not_in_page",
         "misread", "correct")  # fmt: skip


def failure_step(row: dict[str, Any], task: dict[str, Any]) -> str:
    """The first step on the way to a correct answer that an eval episode did not make."""
    if row["correct"]:
        return "correct"
    if row["termination"] == "malformed_limit":
        return "malformed"
    evidence = set(task["evidence_urls"]) - set(task["mask_urls"])
    tools = [m["content"] for m in row["messages"] if m["role"] == "tool"]
    searches = "\n".join(t for t in tools if "## Web Results" in t)
    if not any(f"({u})" in searches for u in evidence):
        return "not_listed"
    pages = [t for t in tools if _VISITED.search(t)]
    visited = [p for p in pages if set(_VISITED.findall(p)) & evidence]
    if not visited:
        urls = [u for p in pages for u in _VISITED.findall(p)]
        if not urls:
            return "no_visit"
        return "other_result" if urls[0] in search_result_urls(searches) else "bad_url"
    if not grounded(task["answers"], visited):
        return "not_in_page"
    return "misread"


# The teacher's concluding quote up to the end of the thought, and the visit text's last part.
_QUOTE = re.compile(re.escape(QUOTE_TEMPLATE.partition("{quote}")[0]) + r"(.*?)\s*</think>", re.S)
_SUMMARY = VISIT_LAYOUT.partition("{evidence}")[2].partition("{summary}")[0].strip("\n")


def misread_kinds(row: dict[str, Any], task: dict[str, Any]) -> set[str]:
    """For a `misread` episode (it visited a page that states the answer, and answered wrong):
    `from_question` when its answer is words of the question (the policy answered the
    question's own entity), `quoted_summary` when the concluding quote ("The page says: ...")
    comes from the visit's Summary line (the extractive sentence most like the goal) rather
    than from the page's evidence."""
    messages = row["messages"]
    kinds: set[str] = set()
    answer = extract_answer(messages)
    if answer and answer.strip() and grounded([answer], [task["question"]]):
        kinds.add("from_question")
    last = next((m["content"] for m in reversed(messages) if m["role"] == "assistant"), "")
    found = _QUOTE.search(last)
    quote = found.group(1).strip() if found else ""
    visits = [m["content"] for m in messages
              if m["role"] == "tool" and _VISITED.search(m["content"])]  # fmt: skip
    if quote and visits and quote in visits[-1].rpartition(_SUMMARY)[2]:
        kinds.add("quoted_summary")
    return kinds


def manifests(catalog: Path, name: str) -> list[tuple[Path, dict[str, Any]]]:
    found = [
        (p.parent, json.loads(p.read_text())) for p in catalog.glob(f"{name}/*/_manifest.json")
    ]
    return sorted(found, key=lambda x: x[1].get("created", ""))


def parquet(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*.parquet"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, required=True)
    args = parser.parse_args()
    catalog = args.data_root / "catalog"
    if not catalog.is_dir():
        raise SystemExit(f"{catalog} is not a catalog: run `literesearcher demo` first")
    con = duckdb.connect()

    shown: set[str] = set()
    for folder, _ in manifests(catalog, "sft_data"):
        files = parquet(folder)
        if files:
            shown |= {r[0] for r in con.execute("select distinct task_id from read_parquet(?)",
                                                [files]).fetchall()}  # fmt: skip
    print(f"tasks some sft_data version demonstrates: {len(shown)}")

    print("\n## difficulty probes: tasks by correct rollouts of k")
    for folder, m in manifests(catalog, "rollouts"):
        params = m.get("params", {})
        if params.get("purpose") == "eval" or params.get("k", 1) < 2:
            continue
        rows = con.execute(
            "select task_id, sum(case when correct then 1 else 0 end) from read_parquet(?) "
            "group by task_id", [parquet(folder)]
        ).fetchall()  # fmt: skip
        k, temp = params["k"], params.get("episode", {}).get("temperature")
        for label, keep in (("demonstrated", True), ("fresh", False)):
            hist = Counter(int(n) for t, n in rows if (t in shown) == keep)
            counts = ", ".join(f"{n}/{k}: {hist.get(n, 0)}" for n in range(k + 1))
            print(f"{folder.name} (T {temp}) {label:>12}: {sum(hist.values()):4d} tasks | {counts}")

    print("\n## curriculum stages: the tasks RL trains on")
    for folder, m in manifests(catalog, "curriculum_stage"):
        rows = con.execute(
            "select id, capability, answers[1], n_correct, k from read_parquet(?) order by 2, 3",
            [parquet(folder)],
        ).fetchall()
        n_shown = sum(1 for r in rows if r[0] in shown)
        print(f"{folder.name} {m.get('params', {}).get('stage', '')}: {len(rows)} tasks, "
              f"{n_shown} demonstrated")  # fmt: skip
        for tid, cap, answer, n, k in rows:
            mark = "demonstrated" if tid in shown else "fresh"
            print(f"    {cap:<20} {answer!s:<28} {n}/{k} {mark}")

    print("\n## evaluations")
    tasks = heldout_tasks(con, catalog)
    greedy: list[tuple[str, dict[str, str]]] = []  # one-sample evaluations, oldest first
    for folder, m in manifests(catalog, "rollouts"):
        params = m.get("params", {})
        if params.get("purpose") != "eval":
            continue
        files = parquet(folder)
        k = params.get("k", 1)
        total, correct, malformed = con.execute(
            "select count(*), sum(case when correct then 1 else 0 end), "
            "sum(case when termination = 'malformed_limit' then 1 else 0 end) "
            "from read_parquet(?)", [files]
        ).fetchall()[0]  # fmt: skip
        failed = con.execute(
            "select count(*) from read_parquet(?) where len(list_filter(tool_calls, "
            "lambda c: c.error is not null and c.name != '')) > 0", [files]
        ).fetchall()[0][0]  # fmt: skip
        per_q = Counter(int(n) for (n,) in con.execute(
            "select sum(case when correct then 1 else 0 end) from read_parquet(?) group by task_id",
            [files]).fetchall())  # fmt: skip
        partly = sum(v for n, v in per_q.items() if 0 < n < k)
        print(f"{folder.name} {params.get('policy')} T {params.get('episode', {}).get('temperature')}"
              f" k {k}: correct {correct}/{total}, malformed {malformed}, with a failed tool call "
              f"{failed}, questions solved partly {partly}, always {per_q.get(k, 0)}")  # fmt: skip

        rows = con.execute(
            "select task_id, correct, termination, messages from read_parquet(?)", [files]
        ).fetchall()  # fmt: skip
        by_cap: dict[str, Counter[str]] = {}
        steps: dict[str, str] = {}
        misread: Counter[str] = Counter()
        for tid, ok, term, messages in rows:
            task = tasks.get(tid)
            if task is None:
                continue
            row = {"correct": ok, "termination": term, "messages": messages}
            steps[tid] = failure_step(row, task)
            by_cap.setdefault(task["capability"], Counter())[steps[tid]] += 1
            if steps[tid] == "misread":
                misread.update(["all", *misread_kinds(row, task)])
        if k == 1:
            greedy.append((str(params.get("policy")), steps))
        print("    " + " ".join(f"{s:>11}" for s in ("capability", *STEPS)))
        for cap, tally in sorted(by_cap.items()):
            print("    " + " ".join(f"{x:>11}" for x in (cap[:11], *(tally[s] for s in STEPS))))
        print(f"    misread {misread['all']}: the answer is words of the question "
              f"{misread['from_question']}, the quote comes from the Summary line "
              f"{misread['quoted_summary']}")  # fmt: skip
    print_flips(greedy)


def print_flips(evals: list[tuple[str, dict[str, str]]]) -> None:
    """Questions each later one-sample evaluation answers differently from the first (the SFT
    checkpoint's in a demo), by the step the losing episode stopped at."""
    if len(evals) < 2:
        return
    print(f"\n## flips against the first evaluation ({evals[0][0]})")
    first = evals[0][1]
    for policy, steps in evals[1:]:
        both = first.keys() & steps.keys()
        gained = Counter(first[t] for t in both if steps[t] == "correct" != first[t])
        lost = Counter(steps[t] for t in both if first[t] == "correct" != steps[t])
        print(f"{policy}: gained {sum(gained.values())} {dict(sorted(gained.items()))}, "
              f"lost {sum(lost.values())} {dict(sorted(lost.items()))}")  # fmt: skip


def heldout_tasks(con: duckdb.DuckDBPyConnection, catalog: Path) -> dict[str, dict[str, Any]]:
    """Every held-out task of the catalog by id (question, answers, capability, evidence and
    mask URLs)."""
    out: dict[str, dict[str, Any]] = {}
    for folder, _ in manifests(catalog, "tasks_heldout"):
        for tid, question, answers, cap, evidence, mask in con.execute(
            "select id, question, answers, capability, evidence_urls, mask_urls "
            "from read_parquet(?)", [parquet(folder)],
        ).fetchall():  # fmt: skip
            out[tid] = {"question": question, "answers": answers, "capability": cap,
                        "evidence_urls": evidence, "mask_urls": mask}  # fmt: skip
    return out


if __name__ == "__main__":
    main()
