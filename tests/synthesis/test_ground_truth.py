"""Generator (b): every capability's answers re-derived from facts.parquet, independently.

The checks below parse each question back into (entity, attribute) or a constraint and
recompute the answer with pandas over the raw fact table; they never call the generator's
own helpers.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from tasks.synthesis.ground_truth import GroundTruthGenerator, commonest_answer_share
from tasks.synthesis.phrasing import CLAUSES, MEMBERSHIP, QUESTIONS
from tasks.synthesis.schema import CAPABILITIES, TaskRecord

PER_CAPABILITY = 25
PLURAL_TO_TYPE = {"places": "place", "companies": "organization", "people": "person",
                  "works": "work", "events": "event"}  # fmt: skip
NUMERIC_NOUNS = {"population": "population", "area": "area", "elevation": "elevation",
                 "number of employees": "employees", "annual revenue": "revenue",
                 "attendance": "attendance"}  # fmt: skip


def fmt(x: float, unit: str) -> str:
    if unit == "km²":
        return f"{x:,.1f} km²"
    if unit == "USD million":
        return f"${x:,.1f} million"
    if unit == "m":
        return f"{round(x):,} m"
    return f"{round(x):,}"


@pytest.fixture(scope="module")
def tasks(world_dir: Path) -> list[TaskRecord]:
    gen = GroundTruthGenerator(world_dir, seed=5, created="2026-01-01T00:00:00+00:00")
    return list(gen.generate(CAPABILITIES, PER_CAPABILITY))


def of(tasks: list[TaskRecord], capability: str) -> list[TaskRecord]:
    chosen = [t for t in tasks if t.capability == capability]
    assert len(chosen) == PER_CAPABILITY, capability
    return chosen


def true_rows(facts: pd.DataFrame, name: str, attribute: str) -> pd.DataFrame:
    return facts[(facts.entity_name == name) & (facts.attribute == attribute)]


def truth(facts: pd.DataFrame, name: str, attribute: str) -> str:
    values = set(true_rows(facts, name, attribute).true_value)
    assert len(values) == 1, (name, attribute, values)
    return values.pop()


def parse_single(question: str) -> tuple[str, str, str]:
    """(entity type, attribute, entity name) of a one-entity question."""
    for (type_, attr), template in QUESTIONS.items():
        pattern = "^" + re.escape(template).replace(re.escape("{name}"), "(.+)")
        m = re.match(pattern, question)
        if m:
            return type_, attr, m.group(1)
    raise AssertionError(f"unparsed question {question!r}")


def test_direct_retrieval_answers_match_the_stated_fact(tasks, facts_df) -> None:
    for t in of(tasks, "direct_retrieval"):
        type_, attr, name = parse_single(t.question)
        rows = true_rows(facts_df, name, attr)
        assert set(rows.entity_type) == {type_}
        assert not rows.is_conflicting.any(), "direct retrieval must use an uncontested fact"
        assert set(rows.value) == {t.answers[0]}
        assert len(t.mask_urls) == 1 and t.mask_urls[0] in set(rows.url)
        assert set(rows.url) - set(t.mask_urls), "answer must stay visible outside the mask"
        assert set(t.evidence_urls) == set(rows.url)


def test_aggregation_answer_is_the_unique_entity_matching_all_clues(tasks, facts_df) -> None:
    truths = facts_df[~facts_df.is_conflicting]
    for t in of(tasks, "aggregation"):
        answer = t.answers[0]
        ent = truths[truths.entity_name == answer]
        type_ = ent.entity_type.iloc[0]
        clues, rest = [], t.question
        for attr, value in ent.groupby("attribute").true_value.first().items():
            template = CLAUSES.get((type_, attr))
            if template and template.format(value=value) in rest:
                clues.append((attr, value))
                rest = rest.replace(template.format(value=value), "", 1)
        assert 2 <= len(clues) <= 3, t.question
        assert re.fullmatch(r"Which \w+[\s,]*(and\s*)?[\s,]*(and\s*)?\?", rest), (t.question, rest)
        matching = set(facts_df[facts_df.entity_type == type_].entity_id)
        for attr, value in clues:
            hit = facts_df[(facts_df.attribute == attr) & (facts_df.true_value == value)]
            matching &= set(hit.entity_id)
        assert matching == set(ent.entity_id), f"{t.question} matches {matching}"
        pages = [set(ent[ent.attribute == a].url) - set(t.mask_urls) for a, _ in clues]
        assert all(pages), "every clue must be visible outside the mask"
        assert not set.intersection(*pages) or len(set.union(*pages)) >= len(clues)


def parse_membership(question: str) -> tuple[str, str, str, str]:
    """(question kind, relation, subject type, object name) of an enumeration question."""
    for relation, (subject_type, predicate) in MEMBERSHIP.items():
        head = predicate.split("{obj}")[0]
        m = re.match(r"^(How many|Which) (\w+) " + re.escape(head) + r"(.+)\?", question)
        if m and PLURAL_TO_TYPE[m.group(2)] == subject_type:
            return m.group(1), relation, subject_type, m.group(3).removesuffix("? Name all")
    raise AssertionError(f"unparsed {question!r}")


def test_enumeration_counts_and_lists_match_the_relation_table(tasks, facts_df) -> None:
    seen_count = False
    for t in of(tasks, "enumeration"):
        kind, relation, subject_type, obj = parse_membership(t.question)
        members = facts_df[(facts_df.attribute == relation) & (facts_df.true_value == obj)
                           & (facts_df.entity_type == subject_type)]  # fmt: skip
        if kind == "How many":
            seen_count = True
            assert t.answers == [str(members.entity_id.nunique())], t.question
        else:
            assert t.answers == [", ".join(sorted(set(members.entity_name)))], t.question
    assert seen_count


def test_cross_verification_answer_is_the_most_reliable_newest_value(tasks, facts_df) -> None:
    for t in of(tasks, "cross_verification"):
        _, attr, name = parse_single(t.question.split(" Sources disagree")[0])
        rows = true_rows(facts_df, name, attr)
        assert rows.is_conflicting.any(), "must be a contested fact"
        best = rows.sort_values(["source_reliability", "published"], ascending=False).iloc[0]
        assert t.answers == [best.value] == [truth(facts_df, name, attr)]
        assert set(t.evidence_urls) == set(rows.url)


def test_statistics_answers_recomputed_from_page_figures(tasks, facts_df) -> None:
    truths = facts_df[~facts_df.is_conflicting]

    def num(name: str, attr: str) -> float:
        values = set(truths[(truths.entity_name == name) & (truths.attribute == attr)].value_num)
        assert len(values) == 1
        return values.pop()

    def unit(attr: str) -> str:
        return str(truths[truths.attribute == attr].unit.iloc[0])

    nouns = "|".join(re.escape(n) for n in NUMERIC_NOUNS)
    kinds = set()
    for t in of(tasks, "statistics"):
        q, answer = t.question, t.answers[0]
        if m := re.match(rf"^What is the combined ({nouns}) of (.+)\?$", q):
            attr = NUMERIC_NOUNS[m.group(1)]
            names = re.split(r", | and ", m.group(2))
            expected = fmt(round(sum(num(n, attr) for n in names), 1), unit(attr))
            kinds.add("sum")
        elif m := re.match(rf"^By how much is the ({nouns}) of (.+) \w+ than that of (.+)\?$", q):
            attr = NUMERIC_NOUNS[m.group(1)]
            expected = fmt(round(num(m.group(2), attr) - num(m.group(3), attr), 1), unit(attr))
            kinds.add("difference")
        elif m := re.match(
            rf"^What is the ratio of the ({nouns}) of (.+) to that of (.+), rounded", q
        ):
            attr = NUMERIC_NOUNS[m.group(1)]
            expected = f"{num(m.group(2), attr) / num(m.group(3), attr):.2f}"
            kinds.add("ratio")
        elif m := re.match(r"^Among all (\w+) (held in|headquartered in|in) (.+), which has "
                           r"the largest (.+)\?$", q):  # fmt: skip
            type_ = PLURAL_TO_TYPE[m.group(1)]
            relation = {"held in": "location", "headquartered in": "headquarters",
                        "in": "country"}[m.group(2)]  # fmt: skip
            attr = NUMERIC_NOUNS[m.group(4)]
            group = set(truths[(truths.attribute == relation) & (truths.true_value == m.group(3))
                               & (truths.entity_type == type_)].entity_name)  # fmt: skip
            expected = max(group, key=lambda n: num(n, attr))
            kinds.add("rank")
        else:
            raise AssertionError(f"unparsed {q!r}")
        assert answer == expected, q
    assert {"sum", "difference", "ratio"} <= kinds


def test_records_carry_full_provenance_and_are_deterministic(world_dir, tasks) -> None:
    again = list(
        GroundTruthGenerator(world_dir, seed=5, created="2026-01-01T00:00:00+00:00").generate(
            CAPABILITIES, PER_CAPABILITY
        )
    )
    assert again == tasks
    other = list(GroundTruthGenerator(world_dir, seed=6).generate(["aggregation"], 10))
    assert {t.id for t in other} != {t.id for t in tasks if t.capability == "aggregation"}
    for t in tasks:
        assert t.evidence_urls and t.time_anchor and t.language == "en"
        assert t.source == "virtual_world" and t.generator == "ground_truth"
        assert set(t.mask_urls) <= set(t.evidence_urls)
    assert len({t.id for t in tasks}) == len(tasks)


def test_no_answer_takes_more_than_its_share_of_a_capability(world_dir: Path) -> None:
    # One `created` for both runs: each stamps its tasks with its own start second otherwise,
    # and two runs that straddle a second boundary made the equality below fail (CI, once).
    created = "2026-01-01T00:00:00+00:00"
    uncapped = list(
        GroundTruthGenerator(world_dir, seed=5, created=created).generate(["enumeration"], 40)
    )
    shares = commonest_answer_share(uncapped)
    assert shares["enumeration"] > 0.25  # the world's groups: mostly pairs

    capped = list(
        GroundTruthGenerator(world_dir, seed=5, max_answer_share=0.25, created=created).generate(
            ["enumeration"], 40
        )
    )
    counts = Counter(t.answers[0] for t in capped)
    assert max(counts.values()) == 10  # floor(0.25 * 40)
    assert commonest_answer_share(capped)["enumeration"] == pytest.approx(
        10 / len(capped), abs=1e-4
    )
    # the cap passes drafts over, it does not rewrite them: each kept task is an uncapped one
    by_question = {t.question: t for t in uncapped}
    assert all(by_question.get(t.question, t) == t for t in capped)
    with pytest.raises(ValueError, match="max_answer_share"):
        GroundTruthGenerator(world_dir, max_answer_share=0)
