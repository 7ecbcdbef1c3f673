"""Quality filters: small streaming steps over tasks, each counting what it kept and dropped why.

A filter is an object with `name`, `stats` (`FilterStats`) and `__call__(tasks) -> tasks`
(an iterator in, an iterator out: nothing is loaded whole). `run_filters` chains them and
returns the kept tasks with every filter's counts, which go into the manifest and MLflow.

Matching an answer against text (question, snippets, pages) uses `normalize`: NFKC, lower
case, thousands separators removed ("1,979" == "1979"), other punctuation to spaces, spaces
collapsed; a match is a whole-token substring (" 3 " does not match "13").
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from env_service.stores.base import PageStore
from literesearcher.urls import try_canonical_url
from tasks.synthesis.schema import TaskRecord

_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3})")
_PUNCT_RE = re.compile(r"[^\w\s.]|_|(?<!\d)\.|\.(?!\d)")
_SPACE_RE = re.compile(r"\s+")
_NUMERIC_ANSWER_RE = re.compile(r"^[$€£]?-?[\d,]+(\.\d+)?( ?[%\w²]+( \w+)?)?$")


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = _THOUSANDS_RE.sub("", text)
    text = _PUNCT_RE.sub(" ", text)
    return _SPACE_RE.sub(" ", text).strip()


def contains_answer(text: str, answer: str) -> bool:
    """Whole-token containment of the normalized answer in the normalized text."""
    needle = normalize(answer)
    return bool(needle) and f" {needle} " in f" {normalize(text)} "


def is_computed(task: TaskRecord) -> bool:
    """A number derived from several figures (a count, a sum, a ratio): no page states it."""
    return task.capability in ("enumeration", "statistics") and all(
        _NUMERIC_ANSWER_RE.match(a.strip()) for a in task.answers
    )


@dataclass
class FilterStats:
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    skipped: str | None = None  # why the filter did not run at all

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kept": self.kept, "dropped": sum(self.dropped.values())}
        out.update({f"dropped.{reason}": n for reason, n in sorted(self.dropped.items())})
        if self.skipped:
            out["skipped"] = self.skipped
        return out


class TaskFilter:
    """Base: subclasses implement `reason(task) -> str | None` (None keeps the task)."""

    name = "filter"

    def __init__(self) -> None:
        self.stats = FilterStats()

    def reason(self, task: TaskRecord) -> str | None:
        raise NotImplementedError

    def __call__(self, tasks: Iterable[TaskRecord]) -> Iterator[TaskRecord]:
        for task in tasks:
            why = self.reason(task)
            if why is None:
                self.stats.kept += 1
                yield task
            else:
                self.stats.dropped[why] += 1


class Step(Protocol):
    name: str
    stats: FilterStats

    def __call__(self, tasks: Iterable[TaskRecord]) -> Iterator[TaskRecord]: ...


def run_filters(
    tasks: Iterable[TaskRecord], steps: Sequence[Step]
) -> tuple[list[TaskRecord], dict[str, dict[str, object]]]:
    stream: Iterable[TaskRecord] = tasks
    for step in steps:
        stream = step(stream)
    kept = list(stream)
    return kept, {step.name: step.stats.as_dict() for step in steps}


# ---- answer form -----------------------------------------------------------------------------
class AnswerFormFilter(TaskFilter):
    """Short exact answers: not empty, at most `max_chars`, not a sentence."""

    name = "answer_form"

    def __init__(self, max_chars: int = 20, max_words: int = 6) -> None:
        super().__init__()
        self.max_chars, self.max_words = max_chars, max_words

    def reason(self, task: TaskRecord) -> str | None:
        answers = [a.strip() for a in task.answers]
        if not answers or any(not a for a in answers):
            return "empty_answer"
        if any(len(a) > self.max_chars for a in answers):
            return "answer_too_long"
        for a in answers:
            words = a.split()
            if len(words) > self.max_words or (len(words) >= 3 and a[-1] in ".!?"):
                return "answer_is_sentence"
        return None


class AnswerInQuestionFilter(TaskFilter):
    name = "answer_in_question"

    def reason(self, task: TaskRecord) -> str | None:
        if any(contains_answer(task.question, a) for a in task.answers):
            return "answer_in_question"
        return None


# ---- dedup -----------------------------------------------------------------------------------
class DedupFilter(TaskFilter):
    """Exact duplicates by normalized question, then near-duplicates by word-shingle Jaccard.

    Near-duplicate candidates come from MinHash LSH (`bands` x `rows` hashes), and each
    candidate is confirmed with the exact Jaccard, so the threshold is exact, not estimated.
    """

    name = "dedup"

    def __init__(self, threshold: float = 0.8, shingle: int = 3, bands: int = 16, rows: int = 4):
        super().__init__()
        self.threshold, self.shingle, self.bands, self.rows = threshold, shingle, bands, rows
        self._exact: set[str] = set()
        self._buckets: dict[tuple[int, int], list[int]] = {}
        self._shingles: list[frozenset[str]] = []

    def _shingles_of(self, text: str) -> frozenset[str]:
        words = text.split()
        n = min(self.shingle, len(words)) or 1
        return frozenset(" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1)))

    def _signature(self, shingles: frozenset[str]) -> list[int]:
        sig = []
        for seed in range(self.bands * self.rows):
            salt = seed.to_bytes(2, "big")
            sig.append(min(_h64(salt + s.encode()) for s in shingles))
        return sig

    def reason(self, task: TaskRecord) -> str | None:
        text = normalize(task.question)
        if text in self._exact:
            return "duplicate_question"
        shingles = self._shingles_of(text)
        sig = self._signature(shingles)
        keys = [(b, hash(tuple(sig[b * self.rows : (b + 1) * self.rows])))
                for b in range(self.bands)]  # fmt: skip
        candidates = {i for k in keys for i in self._buckets.get(k, ())}
        for i in sorted(candidates):
            other = self._shingles[i]
            if len(shingles & other) / len(shingles | other) >= self.threshold:
                return "near_duplicate_question"
        self._exact.add(text)
        index = len(self._shingles)
        self._shingles.append(shingles)
        for k in keys:
            self._buckets.setdefault(k, []).append(index)
        return None


def _h64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


# ---- corpus checks ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SearchResult:
    url: str
    text: str  # the snippet (or passage) shown for this result


# (query, mask_urls) -> ranked results with the mask applied (masked URLs never appear).
SearchFn = Callable[[str, Sequence[str]], list[SearchResult]]


def _canonical_set(urls: Iterable[str]) -> set[str]:
    return {try_canonical_url(u) or u for u in urls}


# A bare item of a link list ("## See also - [Name](url) - [Other](url)"): navigation that
# names pages without stating any fact about them, so an answer there gives nothing away.
# An item with a description ("- [Name](url): founded 1927") states one and is kept.
_NAV_LINK_RE = re.compile(r"(?:^|(?<=\s))-\s\[[^\]]*\]\([^)]*\)(?!\s*:)")


def stated_text(snippet: str) -> str:
    """The snippet without bare link-list items (inline links in sentences are kept)."""
    return _NAV_LINK_RE.sub(" ", snippet)


class LeakageFilter(TaskFilter):
    """Too easy: the answer already shows in the top-k snippets for the question (masked).

    The snippets are the ones the agent's search shows (query-aware, `snippet_chars` long);
    an answer that appears only as a bare item of a link list does not count (`stated_text`).
    """

    name = "leakage"

    def __init__(self, search: SearchFn, top_k: int = 10) -> None:
        super().__init__()
        self.search, self.top_k = search, top_k
        self.unchecked_computed = 0

    def reason(self, task: TaskRecord) -> str | None:
        if is_computed(task):
            self.unchecked_computed += 1  # a derived number is in no snippet by construction
            return None
        masked = _canonical_set(task.mask_urls)
        results = [r for r in self.search(task.question, task.mask_urls)
                   if (try_canonical_url(r.url) or r.url) not in masked][: self.top_k]  # fmt: skip
        if any(contains_answer(stated_text(r.text), a) for r in results for a in task.answers):
            return "answer_in_snippets"
        return None


class AnswerabilityFilter(TaskFilter):
    """The answer must be readable in the local corpus on a page the agent may see.

    Candidate pages: the task's evidence pages plus the top search results for the question
    and for the answer, minus the mask. An extractive answer must appear in one of them; a
    computed one (a count, a sum) needs every unmasked evidence page to exist in the store.
    """

    name = "answerability"

    def __init__(self, pages: PageStore, search: SearchFn | None = None, top_k: int = 10) -> None:
        super().__init__()
        self.pages, self.search, self.top_k = pages, search, top_k

    def reason(self, task: TaskRecord) -> str | None:
        masked = _canonical_set(task.mask_urls)
        evidence = [u for u in task.evidence_urls if (try_canonical_url(u) or u) not in masked]
        if is_computed(task):
            if not evidence:
                return "no_visible_evidence"
            found = self.pages.get_many(evidence)
            return None if all(u in found for u in evidence) else "evidence_not_in_corpus"
        candidates = list(evidence)
        if self.search is not None:
            for query in (task.question, *task.answers):
                candidates += [r.url for r in self.search(query, task.mask_urls)[: self.top_k]]
        candidates = [u for u in dict.fromkeys(candidates)
                      if (try_canonical_url(u) or u) not in masked]  # fmt: skip
        if not candidates:
            return "answer_not_in_corpus"
        found = self.pages.get_many(candidates)
        for page in found.values():
            if any(contains_answer(f"{page.title}\n{page.text}", a) for a in task.answers):
                return None
        return "answer_not_in_corpus"
