"""The label stage's side of human annotation: queue pairs for annotators, collect their labels.

The annotation app (prefpipe.annotate.app) serves the queues; both sides meet only in the store."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from prefpipe.annotate import annotation
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
