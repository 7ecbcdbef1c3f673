"""The leakage filter's tuning (issue 7): an answer shown only as a bare link-list item does
not leak; stated in a sentence, an inline link or a described list item, it does."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tasks.synthesis.filters import LeakageFilter, SearchResult, stated_text
from tasks.synthesis.schema import TaskRecord


def _task(answer: str) -> TaskRecord:
    return TaskRecord(id="t", question="Where is Luguse Group headquartered?", answers=[answer],
                      capability="direct_retrieval", source="test", generator="test",
                      created="2026-05-01")  # fmt: skip


@pytest.mark.parametrize(
    ("snippet", "leaks"),
    [
        (
            "Works at Luguse Group. ## See also - [Duzugamont](https://w/D) - [X](https://w/X)",
            False,
        ),
        ("## See also - [Luguse Group](https://w/L) - [Duzugamont](https://w/D)", False),
        ("Luguse Group is headquartered in [Duzugamont](https://w/D).", True),
        ("- [Luguse Group](https://w/L): headquartered in Duzugamont", True),
        ("- [Duzugamont](https://w/D): home of Luguse Group", True),
        ("The head office of Luguse Group is in Duzugamont.", True),
    ],
)
def test_leakage_counts_stated_answers_not_navigation(snippet: str, leaks: bool) -> None:
    def search(query: str, mask: Sequence[str]) -> list[SearchResult]:
        return [SearchResult("https://w/other", snippet)]

    f = LeakageFilter(search, top_k=3)
    kept = list(f([_task("Duzugamont")]))
    assert (not kept) is leaks
    assert ("Duzugamont" in stated_text(snippet)) is leaks
