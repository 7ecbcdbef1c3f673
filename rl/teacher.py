"""The oracle teacher: SFT trajectories written from a task's provenance, through the real tools.

For each synthesized task the teacher plays the agent with privileged knowledge (the gold answer
and the evidence pages) but takes every observation from the environment, so the tool responses
in its trajectories are byte for byte what the policy would see:

    assistant  <think>plan</think> <tool_call>search(query = the question)</tool_call>
    tool       the env's real search result (the task's mask applied)
    assistant  <think>pick</think> <tool_call>visit(url = an unmasked evidence page)</tool_call>
    tool       the env's real visit result
    assistant  <think>conclude</think> <answer>gold</answer>

Turns are rendered with `rl.protocol` (the one protocol), judged with `rl.judge`, and only
correct trajectories are kept. The visited page is an evidence page the search showed when there
is one (the policy can learn that choice from what it sees), else any unmasked evidence page,
else the top search result. `write_sft_data` stores the kept ones as an `sft_data` version whose
`trajectories.parquet` has the `rollouts` schema; `read_sft_messages` gives the SFT trainer its
`messages` lists.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from data_catalog import Catalog, Manifest
from rl.episode import ToolEnvironment
from rl.judge import Judge, normalize_answer
from rl.protocol import (
    Message,
    initial_messages,
    render_assistant_turn,
    render_message_raw,
    render_raw,
    render_tool_turn,
)
from rl.tokens import TokenCounter, approx_token_count
from rl.trajectory import ToolCallRecord, Trajectory, TurnRecord, trajectories_to_table
from tasks.synthesis.schema import TaskRecord

CODE_VERSION = "teacher-1"
TEACHER_POLICY = "oracle-teacher"
SFT_FILE = "trajectories.parquet"

# One result line of the search tool's layout (env_service.formats.SEARCH_ITEM).
_RESULT_LINE = re.compile(r"^(\d+)\. \[[^\n]*\]\((\S+)\)$", re.MULTILINE)


@dataclass(frozen=True)
class TeacherConfig:
    """How the teacher writes its turns. Thoughts are fixed templates: short, and the same
    across tasks, so a small policy learns the plan rather than memorizing prose."""

    date: str = "2025-01-01"  # the system prompt's date: use the one the policy is run with
    top_k: int | None = None  # search results per query (None: the service's default)
    visit_urls: int = 1  # evidence pages read in the one visit call
    # Keep only trajectories whose tool responses contain the gold answer (normalized), i.e.
    # ones a reader could answer from what it saw; computed answers (counts, sums) fail this.
    require_grounded: bool = False
    plan: str = "I will search for this."
    pick: str = "Result {rank} looks relevant. I will read it."
    pick_unlisted: str = "I will read a page that should state it."
    conclude: str = "The page gives the answer."
    # With this template, the concluding thought quotes the page up to the gold answer
    # (`evidence_quote`) when the visited text states it, e.g. "The page says: Niveko Industries
    # was established in 1903"; the answer is then the quote's last words. None: `conclude`.
    quote: str | None = None
    # Write the answer as the visited text spells it, with the space before it when the text has
    # one ("<answer> August 8, 1988</answer>"): the byte-level tokenizer splits a word that
    # follows a space into other tokens than one that opens the answer (" August" vs "A", "ug",
    # "ust"), so only then can the policy's answer copy the page's tokens. The parsed answer
    # is the same (stripped).
    answer_as_page: bool = False
    # 0: visit an evidence page (`choose_visit`); N: visit the top N search results in one call,
    # in rank order, whether or not an evidence page is among them, so the policy learns a
    # choice it can make from what it sees (which result states the answer is not shown
    # before the visit) and never a URL the search did not list.
    visit_results: int = 0
    pick_results: str = "I will read the top {n} results."


@dataclass
class TeacherResult:
    trajectories: list[Trajectory]  # judged correct (and grounded when required)
    stats: Counter[str] = field(default_factory=Counter)  # kept / dropped.<reason> / visit.<how>


def search_result_urls(text: str) -> list[str]:
    """URLs of the search tool's text, in rank order."""
    return [m.group(2) for m in _RESULT_LINE.finditer(text)]


def choose_visit(
    task: TaskRecord, shown: Sequence[str], n: int = 1
) -> tuple[list[str], int | None, str]:
    """(urls to visit, 1-based rank of the first in the search results or None, how chosen).
    Masked pages are never chosen."""
    masked = set(task.mask_urls)
    evidence = [u for u in task.evidence_urls if u not in masked]
    listed = [u for u in shown if u in evidence]
    if listed:
        rest = [u for u in evidence if u not in listed]
        return (listed + rest)[:n], shown.index(listed[0]) + 1, "evidence_in_results"
    if evidence:
        return evidence[:n], None, "evidence_unlisted"
    visible = [u for u in shown if u not in masked]
    if visible:
        return visible[:n], 1, "top_result"
    return [], None, "nothing_to_visit"


# Pieces a quote is cut from: sentences, lines, list items and table cells of the tool text.
_PIECE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z\[#])|\n+| - (?=\[)|\s\|\s(?=\[)")
QUOTE_MAX_CHARS = 200
QUOTE_TEMPLATE = "The page says: {quote}"  # TeacherConfig.quote with pipeline.teacher_quotes


def find_answer(text: str, answers: Sequence[str]) -> tuple[int, str] | None:
    """(where, which) for the first gold answer, in `answers` order, that `text` contains
    verbatim (case-insensitive); None when none does."""
    lower = text.lower()
    for answer in answers:
        at = lower.find(answer.lower()) if answer else -1
        if at >= 0:
            return at, answer
    return None


def evidence_quote(
    text: str, answers: Sequence[str], max_chars: int = QUOTE_MAX_CHARS
) -> str | None:
    """The shortest piece of a visit's text (its summary first, then its evidence) that states a
    gold answer verbatim (case-insensitive), cut right after the answer (whole when the answer
    opens it); None when none does. A piece is a sentence, a line, a list item or a table row's
    cells from a link on (`_PIECE_BREAK`)."""
    sections = text.split("Summary: ", 1)[::-1] if "Summary: " in text else [text]
    for section in sections:
        if "Evidence in page: " in section:
            section = section.split("Evidence in page: ", 1)[1]
        found: list[str] = []
        for piece in _PIECE_BREAK.split(section):
            piece = piece.strip()
            if (hit := find_answer(piece, answers)) is not None:
                at, answer = hit  # an answer that opens its piece is quoted with the whole piece
                found.append(piece[: at + len(answer)] if at > 1 else piece)
        found = [q for q in found if len(q) <= max_chars]
        if found:
            return min(found, key=len)
    return None


def page_spelling(text: str, answers: Sequence[str]) -> str | None:
    """The first gold answer as `text` spells it (case-insensitive match), with a leading space
    when the text has whitespace before it; None when no answer occurs verbatim. A visit's
    header (which repeats the goal) is skipped."""
    text = text.split(" as follows: ", 1)[-1]
    if (hit := find_answer(text, answers)) is None:
        return None
    at, answer = hit
    spelled = text[at : at + len(answer)]
    return f" {spelled}" if at > 0 and text[at - 1].isspace() else spelled


def grounded(answers: Sequence[str], texts: Sequence[str]) -> bool:
    """Some gold answer appears, as whole normalized tokens, in one of the texts."""
    haystacks = [f" {normalize_answer(t)} " for t in texts]
    return any(
        (needle := normalize_answer(a)) and any(f" {needle} " in h for h in haystacks)
        for a in answers
    )


async def teacher_episode(
    task: TaskRecord,
    env: ToolEnvironment,
    config: TeacherConfig,
    judge: Judge,
    count_tokens: TokenCounter = approx_token_count,
) -> tuple[Trajectory | None, str]:
    """One teacher trajectory and how its visit was chosen (or None and why it was dropped)."""
    t0 = time.perf_counter()
    messages: list[Message] = initial_messages(task.question, config.date)
    traj = Trajectory(
        task_id=task.id, sample_idx=0, question=task.question, gold_answers=list(task.answers),
        policy=TEACHER_POLICY, date=config.date, started_at=time.time(),
    )  # fmt: skip
    context = sum(count_tokens(render_message_raw(m)) for m in messages)

    def say(turn: int, text: str) -> None:
        nonlocal context
        message = {"role": "assistant", "content": text}
        traj.turns.append(
            TurnRecord(turn, text, "stop", context, count_tokens(text), 0.0)
        )  # fmt: skip
        messages.append(message)
        context += count_tokens(render_message_raw(message))

    async def tool(turn: int, name: str, arguments: dict[str, Any]) -> str:
        nonlocal context
        started = time.perf_counter()
        if name == "search":
            result = await env.search(
                arguments["query"], top_k=config.top_k, mask_urls=task.mask_urls
            )
        else:
            result = await env.visit(arguments["url"], arguments["goal"], mask_urls=task.mask_urls)
        latency = time.perf_counter() - started
        traj.turns[-1].tool_latency_s = latency
        args = json.dumps(arguments, ensure_ascii=False)
        traj.tool_calls.append(ToolCallRecord(turn, name, args, latency, None, len(result.text)))
        message = {"role": "tool", "content": render_tool_turn([result.text])}
        messages.append(message)
        context += count_tokens(render_message_raw(message))
        return result.text

    search_args = {"query": [task.question]}
    say(0, render_assistant_turn(config.plan, [{"name": "search", "arguments": search_args}]))
    shown_text = await tool(0, "search", search_args)
    shown = search_result_urls(shown_text)
    if config.visit_results:
        urls = shown[: config.visit_results]  # the search already left the masked pages out
        if not urls:
            return None, "nothing_to_visit"
        evidence = set(task.evidence_urls) - set(task.mask_urls)
        how = "top_results" if evidence & set(urls) else "top_results_no_evidence"
        think = config.pick_results.format(n=len(urls))
    else:
        urls, rank, how = choose_visit(task, shown, config.visit_urls)
        if not urls:
            return None, how
        think = config.pick.format(rank=rank) if rank is not None else config.pick_unlisted
    visit_args = {"url": urls, "goal": task.question}
    say(1, render_assistant_turn(think, [{"name": "visit", "arguments": visit_args}]))
    page_text = await tool(1, "visit", visit_args)
    if config.require_grounded and not grounded(task.answers, [page_text]):
        return None, "not_grounded"
    answer, conclude = task.answers[0], config.conclude
    if config.quote is not None and (quote := evidence_quote(page_text, task.answers)):
        conclude = config.quote.format(quote=quote)
        tail = next((a for a in task.answers if quote.lower().endswith(a.lower())), None)
        if tail is not None:
            answer = quote[len(quote) - len(tail) :]  # as the page writes it
    written = answer
    if config.answer_as_page and (spelled := page_spelling(page_text, task.answers)):
        written, answer = spelled, spelled.strip()
    say(2, render_assistant_turn(conclude, answer=written))

    traj.answer, traj.termination = answer, "answer"
    verdict = await judge.score(task.question, answer, task.answers)
    traj.reward, traj.correct = verdict.score, verdict.correct
    traj.judge_method, traj.judge_error = verdict.method.value, verdict.error
    traj.messages = messages
    traj.raw_text = render_raw(messages, add_generation_prompt=False)
    traj.context_tokens = context
    traj.wall_s = time.perf_counter() - t0
    return (traj, how) if verdict.correct else (None, "judged_wrong")


async def teacher_trajectories(
    tasks: Sequence[TaskRecord],
    env: ToolEnvironment,
    config: TeacherConfig,
    *,
    judge: Judge | None = None,
    count_tokens: TokenCounter = approx_token_count,
    concurrency: int = 8,
    progress: bool = True,
) -> TeacherResult:
    """Teacher trajectories for `tasks` (in task order), judge-verified; `stats` counts the kept
    ones, the dropped ones by reason, and how each visit was chosen."""
    from tqdm.auto import tqdm

    judge = judge or Judge("exact_match")
    sem = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(tasks), desc="teacher", unit="task", disable=not progress)

    async def one(task: TaskRecord) -> tuple[Trajectory | None, str]:
        async with sem:
            out = await teacher_episode(task, env, config, judge, count_tokens)
        bar.update(1)
        return out

    try:
        done = await asyncio.gather(*(one(t) for t in tasks))
    finally:
        bar.close()
    result = TeacherResult([])
    for (traj, how), task in zip(done, tasks, strict=True):
        if traj is None:
            result.stats[f"dropped.{how}"] += 1
            continue
        result.trajectories.append(traj)
        result.stats["kept"] += 1
        result.stats[f"visit.{how}"] += 1
        result.stats[f"kept.{task.capability}"] += 1
    return result


def sft_params(
    tasks: Sequence[TaskRecord], config: TeacherConfig, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The parameters an `sft_data` version is keyed on: the teacher's config and the tasks."""
    ids = "\n".join(t.id for t in tasks)
    teacher = asdict(config)
    for name, off in (("quote", None), ("answer_as_page", False), ("visit_results", 0)):
        if teacher[name] == off:  # the key of teacher data written before the option existed
            del teacher[name]
    if not config.visit_results:
        del teacher["pick_results"]  # not used
    return {
        "teacher": teacher,
        "tasks": hashlib.sha256(ids.encode()).hexdigest()[:16],
        "n_tasks": len(tasks),
        **dict(extra or {}),
    }


def find_sft_data(
    catalog: Catalog, inputs: Sequence[Manifest], params: Mapping[str, Any]
) -> Manifest | None:
    """The committed `sft_data` version for these inputs and params, if any (skip the work)."""
    return catalog.find("sft_data", catalog.key("sft_data", inputs, dict(params), CODE_VERSION))


def write_sft_data(
    catalog: Catalog,
    trajectories: Sequence[Trajectory],
    inputs: Sequence[Manifest],
    params: Mapping[str, Any],
    stats: Mapping[str, int] | None = None,
) -> Manifest:
    """Commit the trajectories as an `sft_data` version (`trajectories.parquet`, the `rollouts`
    schema); an existing version with the same key is returned as is."""
    if not trajectories:
        raise ValueError("no teacher trajectories to write: every task was dropped")
    found = find_sft_data(catalog, inputs, params)
    if found is not None:
        return found
    with catalog.create("sft_data", inputs, dict(params), CODE_VERSION) as w:
        w.write_table(trajectories_to_table(list(trajectories)), SFT_FILE)
        w.stats = dict(stats or {}) | {
            "trajectories": len(trajectories),
            "mean_context_tokens": sum(t.context_tokens for t in trajectories) / len(trajectories),
        }
    assert w.manifest is not None
    return w.manifest


def merge_sft_data(catalog: Catalog, parts: Sequence[Manifest]) -> Manifest:
    """One `sft_data` version holding the trajectories of `parts`, in order (the demo world's
    teacher data and other worlds'); its inputs are the parts, so it is found again, not
    rewritten, for the same parts. A single part is returned as is."""
    import pyarrow as pa

    if not parts:
        raise ValueError("merge_sft_data needs at least one sft_data version")
    if len(parts) == 1:
        return parts[0]
    params = {"merge": [p.version for p in parts]}
    found = find_sft_data(catalog, parts, params)
    if found is not None:
        return found
    tables = [catalog.to_arrow("sft_data", p.version) for p in parts]
    table = pa.concat_tables(tables, promote_options="default")
    rows = max(1, table.num_rows)
    with catalog.create("sft_data", parts, params, CODE_VERSION) as w:
        w.write_table(table, SFT_FILE)
        w.stats = {
            "trajectories": table.num_rows,
            "parts": {p.version: t.num_rows for p, t in zip(parts, tables, strict=True)},
            "mean_context_tokens": sum(
                p.stats.get("mean_context_tokens", 0.0) * t.num_rows
                for p, t in zip(parts, tables, strict=True)
            ) / rows,
        }  # fmt: skip
    assert w.manifest is not None
    return w.manifest


def read_sft_messages(catalog: Catalog, manifest: Manifest) -> list[list[Message]]:
    """The `messages` of every trajectory of an `sft_data` version: `LocalSFTTrainer`'s input."""
    rows = catalog.read("sft_data", manifest.version).project("messages").fetchall()
    return [[{"role": m["role"], "content": m["content"]} for m in row[0]] for row in rows]
