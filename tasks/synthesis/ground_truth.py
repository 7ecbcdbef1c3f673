"""Generator (b): tasks over the virtual world whose answers are exact by construction.

One function per capability; each draws candidates in a fixed order, shuffles them with a
RNG seeded by (seed, capability), and keeps the first `n` that pass its checks, so the output
depends only on the world and the seed.

`evidence_urls`: every page stating (truthfully; for cross-verification, at all) a fact the
answer rests on. `mask_urls` (the reference's "Mask URL": hidden from search and visit):
- direct retrieval: the page the question was written from; the fact must be stated on
  another page too, or masking would make it unanswerable;
- aggregation, enumeration, statistics: every page that states *all* the facts used at once
  (the entity's article for aggregation, a directory or table page for the others), since
  one read of it gives the answer away; every fact must stay visible on some other page;
- cross-verification: nothing, because the skill is weighing the sources against each
  other and every source must stay visible.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tasks.synthesis.phrasing import (
    CLAUSES,
    MEMBERSHIP,
    NOUNS,
    NUMERIC,
    PLURALS,
    QUESTIONS,
    format_quantity,
    join_names,
)
from tasks.synthesis.schema import CAPABILITIES, Capability, TaskRecord, task_id
from tasks.synthesis.world_facts import (
    Entity,
    Fact,
    WorldFacts,
    giveaway_pages,
    visible_elsewhere,
)

GENERATOR_NAME = "ground_truth"
SOURCE = "virtual_world"
MAX_STATISTICS_DRAWS = 20_000  # draws with replacement: bounded, so a tiny world ends


@dataclass(frozen=True, slots=True)
class Draft:
    """A task before provenance stamping."""

    question: str
    answer: str
    evidence: list[str]
    mask: list[str]
    time_anchor: str


def rng_for(seed: int, capability: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{capability}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _urls(facts: Sequence[Fact]) -> list[str]:
    return sorted({u for f in facts for u in f.true_urls})


# ---- direct retrieval: one fact, one page ---------------------------------------------------
def direct_retrieval(world: WorldFacts, rng: random.Random) -> Iterator[Draft]:
    facts = [
        (e, f)
        for e in sorted(world.entities.values(), key=lambda e: e.entity_id)
        for a, f in sorted(e.facts.items())
        if (e.type, a) in QUESTIONS and f.clean and len(f.true_urls) >= 2
    ]
    rng.shuffle(facts)
    for entity, fact in facts:
        source = rng.choice(fact.true_urls)
        question = QUESTIONS[(entity.type, fact.attribute)].format(name=entity.name)
        yield Draft(question, fact.true_value, fact.true_urls, [source],
                    world.published.get(source, world.date))  # fmt: skip


# ---- aggregation: identify an entity from 2-3 attributes on different pages -----------------
def aggregation(world: WorldFacts, rng: random.Random) -> Iterator[Draft]:
    entities = [e for e in sorted(world.entities.values(), key=lambda e: e.entity_id)]
    rng.shuffle(entities)
    for entity in entities:
        usable = [f for a, f in sorted(entity.facts.items())
                  if (entity.type, a) in CLAUSES and f.clean]  # fmt: skip
        if len(usable) < 2:
            continue
        clues = rng.sample(usable, min(len(usable), rng.choice((2, 3))))
        mask = giveaway_pages(clues)
        pages = _distinct_pages(clues, mask)
        if pages is None:
            continue
        rivals = [
            e for e in world.of_type(entity.type)
            if all(e.value(c.attribute) == c.true_value for c in clues)
        ]  # fmt: skip
        if [e.entity_id for e in rivals] != [entity.entity_id]:
            continue  # not unique in the world
        clauses = [CLAUSES[(entity.type, c.attribute)].format(value=c.true_value) for c in clues]
        question = f"Which {NOUNS[entity.type]} {join_names(clauses)}?"
        if entity.name.lower() in question.lower():
            continue
        evidence = _urls(clues)
        yield Draft(question, entity.name, evidence, mask, world.newest(evidence))


def _distinct_pages(clues: list[Fact], mask: list[str]) -> list[str] | None:
    """One visible page per clue, all different (each attribute on its own page), or None."""
    masked, chosen = set(mask), []
    for clue in sorted(clues, key=lambda f: len(f.true_urls)):
        free = [u for u in clue.true_urls if u not in masked and u not in chosen]
        if not free:
            return None
        chosen.append(free[0])
    return chosen


# ---- enumeration: count (or list) the entities meeting a constraint -------------------------
def enumeration(world: WorldFacts, rng: random.Random, max_list_chars: int = 20) -> Iterator[Draft]:
    candidates = []
    for relation, (subject_type, predicate) in sorted(MEMBERSHIP.items()):
        for obj, members in sorted(world.groups(relation).items()):
            members = [m for m in members if m.type == subject_type]
            if members:
                candidates.append((relation, subject_type, predicate, obj, members))
    rng.shuffle(candidates)
    for relation, subject_type, predicate, obj, members in candidates:
        facts = [m.facts[relation] for m in members]
        if not all(f.clean for f in facts):
            continue
        mask = giveaway_pages(facts)
        if not visible_elsewhere(facts, mask):
            continue
        evidence = _urls(facts)
        names = sorted(m.name for m in members)
        listed = ", ".join(names)
        if len(names) <= 3 and len(listed) <= max_list_chars and rng.random() < 0.5:
            question = f"Which {PLURALS[subject_type]} {predicate.format(obj=obj)}? Name all."
            answer = listed
        else:
            question = f"How many {PLURALS[subject_type]} {predicate.format(obj=obj)}?"
            answer = str(len(members))
        yield Draft(question, answer, evidence, mask, world.newest(evidence))


# ---- cross-verification: conflicting statements, resolved by reliability then recency -------
def resolve(fact: Fact) -> str | None:
    """The value of the most reliable statement, the newest among equals; None on a tie."""
    ranked = sorted(fact.statements, key=lambda s: (s.reliability, s.published), reverse=True)
    top = ranked[0]
    rivals = [s for s in ranked if (s.reliability, s.published) == (top.reliability, top.published)]
    return top.value if len({s.value for s in rivals}) == 1 else None


def cross_verification(world: WorldFacts, rng: random.Random) -> Iterator[Draft]:
    facts = [
        (e, f)
        for e in sorted(world.entities.values(), key=lambda e: e.entity_id)
        for a, f in sorted(e.facts.items())
        if (e.type, a) in QUESTIONS and not f.clean
    ]
    rng.shuffle(facts)
    for entity, fact in facts:
        if resolve(fact) != fact.true_value:
            continue
        base = QUESTIONS[(entity.type, fact.attribute)].format(name=entity.name)
        question = (
            f"{base} Sources disagree; give the value stated by the most reliable source "
            "(the most recent one among equally reliable sources)."
        )
        evidence = sorted({s.url for s in fact.statements})
        winner = max(fact.statements, key=lambda s: (s.reliability, s.published))
        yield Draft(question, fact.true_value, evidence, [], winner.published)


# ---- statistics: sum, difference, ratio, rank over numeric attributes -----------------------
def statistics(world: WorldFacts, rng: random.Random) -> Iterator[Draft]:
    pools: list[tuple[str, list[Entity]]] = []
    for attribute in sorted(NUMERIC):
        by_block: dict[int, list[Entity]] = {}
        for e in sorted(world.entities.values(), key=lambda e: e.entity_id):
            f = e.facts.get(attribute)
            if f is not None and f.clean and f.true_num is not None:
                by_block.setdefault(e.block, []).append(e)
        pools += [(attribute, ents) for _, ents in sorted(by_block.items()) if len(ents) >= 2]
    ops: list[Callable[[str, list[Entity], random.Random], tuple[str, str] | None]] = [
        _sum, _difference, _ratio, _rank
    ]  # fmt: skip
    for _ in range(MAX_STATISTICS_DRAWS if pools else 0):
        attribute, ents = pools[rng.randrange(len(pools))]
        op = ops[rng.randrange(len(ops))]
        chosen = rng.sample(ents, min(len(ents), rng.choice((2, 3)) if op is _sum else 2))
        if op is _rank:
            group = _rank_group(world, ents, rng)
            if group is None or any(attribute not in e.facts for e in group):
                continue  # a group member whose figure is not stated cannot be ranked
            chosen = group
        facts = [e.facts[attribute] for e in chosen]
        mask = giveaway_pages(facts)
        made = op(attribute, chosen, rng)
        if made is None or not visible_elsewhere(facts, mask):
            continue
        question, answer = made
        evidence = _urls(facts + _membership_facts(chosen, op is _rank))
        yield Draft(question, answer, evidence, mask, world.newest(evidence))


def _num(e: Entity, attribute: str) -> float:
    value = e.facts[attribute].true_num
    assert value is not None
    return value


def _sum(attribute: str, ents: list[Entity], rng: random.Random) -> tuple[str, str]:
    noun = NUMERIC[attribute][0]
    total = round(sum(_num(e, attribute) for e in ents), 1)
    names = join_names([e.name for e in ents])
    return f"What is the combined {noun} of {names}?", format_quantity(
        total, ents[0].facts[attribute].unit
    )


def _difference(attribute: str, ents: list[Entity], rng: random.Random) -> tuple[str, str] | None:
    a, b = sorted(ents, key=lambda e: -_num(e, attribute))
    diff = round(_num(a, attribute) - _num(b, attribute), 1)
    if diff <= 0:
        return None
    noun, more = NUMERIC[attribute]
    question = f"By how much is the {noun} of {a.name} {more} than that of {b.name}?"
    return question, format_quantity(diff, a.facts[attribute].unit)


def _ratio(attribute: str, ents: list[Entity], rng: random.Random) -> tuple[str, str] | None:
    a, b = ents
    if _num(b, attribute) == 0:
        return None
    noun = NUMERIC[attribute][0]
    ratio = _num(a, attribute) / _num(b, attribute)
    question = (
        f"What is the ratio of the {noun} of {a.name} to that of {b.name}, "
        "rounded to two decimal places?"
    )
    return question, f"{ratio:.2f}"


RANK_GROUPS = {"organization": "headquarters", "event": "location", "place": "country"}


def _rank_group(world: WorldFacts, ents: list[Entity], rng: random.Random) -> list[Entity] | None:
    """Every entity (world-wide) sharing a group value with a random one of `ents`."""
    relation = RANK_GROUPS.get(ents[0].type)
    if relation is None:
        return None
    anchor = rng.choice(ents)
    key = anchor.value(relation)
    members = world.groups(relation).get(key or "", [])
    members = [m for m in members if m.type == anchor.type]
    return members if len(members) >= 2 else None


def _rank(attribute: str, ents: list[Entity], rng: random.Random) -> tuple[str, str] | None:
    if any(e.facts[attribute].true_num is None for e in ents):
        return None
    if not all(e.facts[attribute].clean for e in ents):
        return None
    ranked = sorted(ents, key=lambda e: -_num(e, attribute))
    if _num(ranked[0], attribute) == _num(ranked[1], attribute):
        return None
    noun = NUMERIC[attribute][0]
    relation = RANK_GROUPS[ents[0].type]
    group_value = ents[0].value(relation)
    where = {"headquarters": "headquartered in", "location": "held in", "country": "in"}[relation]
    question = (
        f"Among all {PLURALS[ents[0].type]} {where} {group_value}, which has the largest {noun}?"
    )
    return question, ranked[0].name


def _membership_facts(ents: list[Entity], rank: bool) -> list[Fact]:
    if not rank:
        return []
    relation = RANK_GROUPS[ents[0].type]
    return [e.facts[relation] for e in ents]


def commonest_answer_share(tasks: Sequence[TaskRecord]) -> dict[str, float]:
    """Per capability, the share of its tasks whose answer is its commonest answer: what a
    policy that always gives that answer would score on it."""
    by_capability: dict[str, Counter[str]] = {}
    for t in tasks:
        by_capability.setdefault(t.capability, Counter())[t.answers[0]] += 1
    return {
        c: round(counts.most_common(1)[0][1] / sum(counts.values()), 4)
        for c, counts in sorted(by_capability.items())
    }


# ---- the generator ---------------------------------------------------------------------------
class GroundTruthGenerator:
    """Tasks over a generated world directory (see `literesearcher.world`)."""

    name = GENERATOR_NAME

    def __init__(
        self,
        world_dir: Path,
        *,
        seed: int = 0,
        max_list_chars: int = 20,
        max_answer_share: float = 1.0,
        created: str | None = None,
    ) -> None:
        if not 0 < max_answer_share <= 1:
            raise ValueError(f"max_answer_share must be in (0, 1], got {max_answer_share}")
        self.world = WorldFacts.load(world_dir)
        self.seed = seed
        self.max_list_chars = max_list_chars
        self.max_answer_share = max_answer_share
        self.created = created or datetime.now(UTC).isoformat(timespec="seconds")

    def drafts(self, capability: Capability) -> Iterator[Draft]:
        rng = rng_for(self.seed, capability)
        if capability == "direct_retrieval":
            return direct_retrieval(self.world, rng)
        if capability == "aggregation":
            return aggregation(self.world, rng)
        if capability == "enumeration":
            return enumeration(self.world, rng, self.max_list_chars)
        if capability == "cross_verification":
            return cross_verification(self.world, rng)
        if capability == "statistics":
            return statistics(self.world, rng)
        raise ValueError(f"unknown capability {capability!r}; expected one of {CAPABILITIES}")

    def generate(
        self, capabilities: Sequence[Capability], per_capability: int
    ) -> Iterator[TaskRecord]:
        """Up to `per_capability` tasks of each capability, no two with the same question.

        No answer is given to more than `max_answer_share` of a capability's `per_capability`
        tasks (at least one): past that, drafts with that answer are passed over, so a world
        whose groups mostly have two members does not make "2" the answer to most "How many"
        questions. A capability may then get fewer tasks, when the world runs out of others.
        """
        cap = max(1, math.floor(self.max_answer_share * per_capability))
        for capability in capabilities:
            seen: set[str] = set()
            answers: Counter[str] = Counter()
            attempts = 0
            for draft in self.drafts(capability):
                attempts += 1
                if attempts > 50 * per_capability + 1000:
                    break  # repeated questions only: the world has no more to give
                if draft.question in seen or answers[draft.answer] >= cap:
                    continue
                seen.add(draft.question)
                answers[draft.answer] += 1
                yield self._record(capability, draft)
                if len(seen) >= per_capability:
                    break

    def _record(self, capability: Capability, draft: Draft) -> TaskRecord:
        return TaskRecord(
            id=task_id(capability, draft.question, draft.answer),
            question=draft.question,
            answers=[draft.answer],
            capability=capability,
            evidence_urls=draft.evidence,
            mask_urls=draft.mask,
            language="en",
            time_anchor=draft.time_anchor,
            source=SOURCE,
            generator=GENERATOR_NAME,
            created=self.created,
        )
