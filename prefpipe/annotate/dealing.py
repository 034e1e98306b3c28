"""Dealing pairs to annotators' queues: who gets which pair, where gold items go, the order shown.

Pure functions of the queues already there, the request and the seed: every draw comes from
`prefpipe.seeds.pair_rng` keyed by the pair or annotator, so the same request deals the same
queues on any store in any order."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from prefpipe.annotate.rules import AnnotationError, task_id
from prefpipe.seeds import pair_rng
from prefpipe.store.annotations import ExistingTask
from prefpipe.vocab import Choice


@dataclass
class Queues:
    """The state of the queues that dealing reads: per pair its holders, per annotator (of this
    request) their regular-task load, next free position and regular tasks since their last gold."""
    annotators: list[str]
    have: dict[str, set[str]] = field(default_factory=dict)
    load: dict[str, int] = field(default_factory=dict)
    next_position: dict[str, int] = field(default_factory=dict)
    since_gold: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_tasks(cls, annotators: Sequence[str], existing: Sequence[ExistingTask]) -> Queues:
        """`existing` ordered by annotator then position, as the store returns them."""
        queues = cls(list(annotators), {}, dict.fromkeys(annotators, 0), dict.fromkeys(annotators, 0),
                     dict.fromkeys(annotators, 0))
        for task in existing:
            queues.have.setdefault(task.pair_id, set()).add(task.annotator_id)
            annotator = task.annotator_id
            if annotator in queues.load:
                queues.next_position[annotator] = task.position + 1
                queues.load[annotator] += task.gold_choice is None
                queues.since_gold[annotator] = (0 if task.gold_choice is not None
                                                else queues.since_gold[annotator] + 1)
        return queues


def check_request(annotators: Sequence[str], overlap: int, gold: Mapping[str, str], gold_every: int) -> None:
    """AnnotationError for a request no queue could satisfy (before the store is touched)."""
    annotators = list(annotators)
    if not annotators or len(set(annotators)) != len(annotators):
        raise AnnotationError("enqueue: annotators must be a non-empty list of distinct ids, "
                              f"got {annotators}")
    if not 1 <= overlap <= len(annotators):
        raise AnnotationError(f"enqueue: overlap {overlap} must be between 1 and the number of "
                              f"annotators ({len(annotators)}); add annotators or lower the overlap")
    if gold_every < 0:
        raise AnnotationError(f"enqueue: gold_every {gold_every} must be >= 0 (0 = no gold items)")
    bad_gold = {p: c for p, c in gold.items() if c not in Choice.decisive()}
    if bad_gold:
        raise AnnotationError(f"enqueue: gold choices must be 'a' or 'b'; got {bad_gold}")


def regular_pairs(pair_ids: Sequence[str], gold: Mapping[str, str]) -> list[str]:
    """The pairs dealt as regular tasks: distinct, in order, gold pairs left out."""
    return list(dict.fromkeys(p for p in pair_ids if p not in gold))


def deal(queues: Queues, regular: Sequence[str], overlap: int, seed: int) -> dict[str, list[str]]:
    """annotator -> the regular pairs dealt to them, in order (updates `queues.load`).

    Each pair goes to the `overlap - holders` least-loaded annotators not holding it yet, ties
    broken by a seeded draw per pair; so queues differ by at most one regular task."""
    dealt: dict[str, list[str]] = {a: [] for a in queues.annotators}
    for pair in regular:
        holders = queues.have.get(pair, set())
        need = overlap - len(holders)
        if need <= 0:
            continue
        rng = pair_rng(seed, pair, "deal")
        draw = {a: rng.random() for a in queues.annotators}
        for annotator in sorted((a for a in queues.annotators if a not in holders),
                                key=lambda a: (queues.load[a], draw[a]))[:need]:
            queues.load[annotator] += 1
            dealt[annotator].append(pair)
    return dealt


def task_rows(queues: Queues, dealt: Mapping[str, list[str]], gold: Mapping[str, str], gold_every: int,
              seed: int) -> list[dict]:
    """The new annotation_tasks rows: each queue's dealt pairs after its existing tasks, and after
    every `gold_every` regular tasks (counted across calls) a gold pair this annotator lacks, in a
    seeded order per annotator; `gold_every=0` adds none."""
    rows = []
    for annotator in queues.annotators:
        gold_left = [p for p in sorted(gold) if annotator not in queues.have.get(p, set())]
        pair_rng(seed, annotator, "gold").shuffle(gold_left)
        for pair in dealt[annotator]:
            rows.append(task_row(pair, annotator, queues.next_position[annotator], None, seed))
            queues.next_position[annotator] += 1
            queues.since_gold[annotator] += 1
            if gold_every and queues.since_gold[annotator] >= gold_every and gold_left:
                gold_pair = gold_left.pop(0)
                rows.append(task_row(gold_pair, annotator, queues.next_position[annotator],
                                     gold[gold_pair], seed))
                queues.next_position[annotator] += 1
                queues.since_gold[annotator] = 0
    return rows


def task_row(pair: str, annotator: str, position: int, gold_choice: str | None, seed: int) -> dict:
    """One task, shown in a seeded random order ('ab': the pair's a first)."""
    shown = "ab" if pair_rng(seed, f"{pair}\0{annotator}", "order").random() < 0.5 else "ba"
    return {"task_id": task_id(pair, annotator), "pair_id": pair, "annotator_id": annotator,
            "position": position, "shown_order": shown, "gold_choice": gold_choice}
