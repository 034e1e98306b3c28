"""The label stage's side of human annotation: queue pairs for annotators, collect their labels;
and `queue_pairs`, which puts any pairs of the store (an imported file's: `prefpipe label queue`) in
front of people.

The annotation app (prefpipe.annotate.app) serves the queues; both sides meet only in the store."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from prefpipe.annotate import annotation, dealing
from prefpipe.annotate.rules import AnnotationError
from prefpipe.config.label import HumanParams
from prefpipe.label.types import Label, PairToLabel
from prefpipe.store import Store


class HumanQueue:
    """Human annotators as a labeler: `label.human` params say who gets each pair and how often gold."""

    def __init__(self, store: Store, params: HumanParams, seed: int):
        self.store, self.params, self.seed = store, params, seed

    def collect(self, pairs: Sequence[PairToLabel], gold: Mapping[str, str]) -> tuple[int, list[Label]]:
        """Queue `pairs` (and gold items) for the configured annotators; return (newly queued tasks,
        the human labels already submitted for `pairs`)."""
        pair_ids = [p.pair_id for p in pairs]
        queued = annotation.enqueue(self.store, pair_ids, self.params.annotators, self.params.overlap,
                                    gold=gold if self.params.gold_every else {},
                                    gold_every=self.params.gold_every, seed=self.seed)
        return queued, annotation.human_labels(self.store, pair_ids)

    def pending(self, pair_ids: Sequence[str]) -> int:
        """Tasks for these pairs that their annotator has not answered yet."""
        return self.store.annotations.pending_count(pair_ids)


def pending_tasks(store: Store) -> int:
    """All unanswered tasks in every queue (what `prefpipe run` waits for)."""
    return store.annotations.pending_count()


def check_queue_request(store: Store, annotators: Sequence[str], overlap: int) -> None:
    """AnnotationError, before anything is written, for annotators that are not distinct registered
    ids or an overlap outside 1..len(annotators)."""
    dealing.check_request(annotators, overlap, {}, 0)
    with store.annotations.dealing() as queue:
        missing = queue.missing_annotators(list(annotators))
    if missing:
        raise AnnotationError(f"annotators {missing} are not registered; add each with `prefpipe label "
                              "annotators add ID` (it prints their sign-in token)")


def queue_pairs(store: Store, pair_ids: Sequence[str], annotators: Sequence[str], overlap: int,
                seed: int) -> int:
    """Deal `pair_ids` to `overlap` of `annotators` each (no gold items), after what their queues
    hold; returns the tasks added, 0 for pairs already dealt. Their answers are 'human' labels
    like any others: `prefpipe label status` and the admin page count them."""
    check_queue_request(store, annotators, overlap)
    return annotation.enqueue(store, pair_ids, annotators, overlap, gold={}, gold_every=0, seed=seed)
