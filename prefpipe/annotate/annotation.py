"""Human annotation: annotators, their queues, answers and gold accuracy.

The web app (`prefpipe.annotate.app`), the CLI and the label stage call these functions. Each one
applies the rules (`prefpipe.annotate.rules`, `prefpipe.annotate.dealing`) around one short
transaction of `store.annotations`, so the long-running app and pipeline stages (other processes)
take turns on DuckDB's single-process file lock.

Answers are stored as ordinary `labels` rows (source 'human', choice relative to the pair's a/b,
`shown_order` recording which response the annotator saw first).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from prefpipe.annotate import dealing
from prefpipe.annotate.rules import (
    MAX_TOKEN_CHARS,
    AnnotationError,
    check_annotator_id,
    check_shown_choice,
    clean_rationale,
    new_token,
    to_pair_choice,
    token_hash,
)
from prefpipe.label.types import Label
from prefpipe.store import Store
from prefpipe.store.annotations import QueuedTask
from prefpipe.store.keys import label_id
from prefpipe.vocab import LabelSource

HUMAN = LabelSource.HUMAN.value


@dataclass(frozen=True)
class TaskView:
    """One task as its annotator sees it: the responses in the order shown, and progress."""
    task_id: str
    pair_id: str
    prompt: str
    first: str
    second: str
    first_finished: bool
    second_finished: bool
    position: int
    done: int  # tasks of this annotator already answered
    total: int  # tasks in this annotator's queue


def add_annotator(store: Store, annotator_id: str, is_admin: bool = False) -> str:
    """Register an annotator (or rotate their token) and return the new sign-in token.

    Only the token's sha256 is stored, so the token is shown this once; rotating it signs out
    every session of the old one. AnnotationError for an id that is not 1-64 safe characters."""
    check_annotator_id(annotator_id)
    token = new_token()
    store.annotations.upsert_annotator(annotator_id, token_hash(token), is_admin)
    return token


def annotator_for_token(store: Store, token: str | None) -> tuple[str, bool] | None:
    """(annotator_id, is_admin) for a valid token, else None."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    return store.annotations.annotator_for_token_hash(token_hash(token))


def enqueue(store: Store, pair_ids: Sequence[str], annotators: Sequence[str], overlap: int,
            gold: Mapping[str, str], gold_every: int, seed: int) -> int:
    """Deal pairs to annotators' queues and mix in gold items; returns the number of tasks added.

    Each pair goes to `overlap` distinct annotators, always the least loaded ones (ties broken
    by a seeded draw per pair), so queues differ by at most one regular task. A pair already
    queued for some annotators only gets the missing ones, so enqueueing twice adds nothing.
    New tasks go after each queue's existing ones, each with a seeded random shown order. After
    every `gold_every` regular tasks (counted across calls) a gold item — a pair of `gold`
    (pair_id -> 'a'|'b') this annotator does not have yet — is added; `gold_every=0` adds none.
    Pairs that are keys of `gold` are only dealt as gold items. AnnotationError for a request
    that can't be dealt (bad overlap, unknown annotators or pairs); nothing is written then."""
    annotators = list(annotators)
    dealing.check_request(annotators, overlap, gold, gold_every)
    regular = dealing.regular_pairs(pair_ids, gold)
    with store.annotations.dealing() as queue:
        _refuse_missing(queue.missing_annotators(annotators), "annotator_id", "annotators",
                        "add them with add_annotator first")
        _refuse_missing(queue.missing_pairs(regular + list(gold)), "pair_id", "pairs",
                        "generate the pairs first")
        queues = dealing.Queues.from_tasks(annotators, queue.existing_tasks())
        dealt = dealing.deal(queues, regular, overlap, seed)
        return queue.insert_tasks(dealing.task_rows(queues, dealt, gold, gold_every, seed))


def _refuse_missing(missing: list[str], column: str, table: str, fix: str) -> None:
    if missing:
        raise AnnotationError(f"enqueue: {len(missing)} {column}s not in the store's {table} table "
                              f"(first: {missing[:5]}); {fix}")


def next_task(store: Store, annotator_id: str) -> TaskView | None:
    """The first task of this annotator's queue that they have not answered, or None when done."""
    task = store.annotations.next_task(annotator_id)
    return None if task is None else _view(task)


def get_task(store: Store, annotator_id: str, task_id: str) -> TaskView:
    """A task of this annotator's queue; LookupError if unknown, PermissionError if another's."""
    task = store.annotations.task(task_id)
    if task is None:
        raise LookupError(f"task {task_id!r} does not exist")
    if task.annotator_id != annotator_id:
        raise PermissionError(f"task {task_id!r} is not in {annotator_id!r}'s queue")
    return _view(task)


def queue_progress(store: Store, annotator_id: str) -> tuple[int, int]:
    """(done, total) of one annotator's queue."""
    return store.annotations.queue_counts(annotator_id)


def _view(task: QueuedTask) -> TaskView:
    """The task in the order its annotator sees it; LookupError if the store lacks its pair's rows."""
    missing = [name for name in ("prompt_id", "prompt", "response_a", "response_b")
               if getattr(task, name) is None]
    if missing:
        raise LookupError(f"task {task.task_id}: pair {task.pair_id!r} lacks {missing} in the "
                          "store (pairs/prompts/candidates rows); re-run generate or drop the task")
    a = (task.response_a, bool(task.finished_a))
    b = (task.response_b, bool(task.finished_b))
    first, second = (a, b) if task.shown_order == "ab" else (b, a)
    return TaskView(task.task_id, task.pair_id, task.prompt, first[0], second[0], first[1], second[1],
                    int(task.position), task.done, task.total)


def submit(store: Store, annotator_id: str, task_id: str, choice_shown: str,
           rationale: str | None) -> Label:
    """Record an annotator's answer to one of their tasks as a 'human' label, in one transaction.

    `choice_shown` is 'first' | 'second' | 'tie' | 'both_bad' as the annotator saw the pair; it is
    stored relative to the pair's a/b. The label id depends only on (pair, 'human', annotator), so
    a second submit of the same task keeps the first answer and returns it. Raises LookupError
    for an unknown task, PermissionError for another annotator's task, AnnotationError (a
    ValueError) for a bad choice or an over-long rationale."""
    check_shown_choice(choice_shown)
    rationale = clean_rationale(rationale)
    stored = store.annotations.submit_human_label(
        task_id, annotator_id, rationale,
        pair_choice=lambda shown_order: to_pair_choice(choice_shown, shown_order),
        label_key=lambda pair_id: label_id(pair_id, HUMAN, annotator_id))
    return _label(stored)


def _label(row: dict) -> Label:
    return Label(row["pair_id"], row["source"], row["annotator"], row["choice"], float(row["confidence"]),
                 row["principle"], row["rationale"], row["shown_order"])


def gold_accuracy(store: Store) -> dict[str, tuple[int, int]]:
    """annotator -> (correct, answered) over their answered gold items."""
    return store.annotations.gold_accuracy()


def progress(store: Store) -> list[dict]:
    """Per annotator: done, total, gold correct/answered and accuracy (None before any gold)."""
    return store.annotations.progress()


def human_labels(store: Store, pair_ids: Sequence[str] | None = None,
                 include_gold: bool = False) -> list[Label]:
    """Human labels, ordered by pair then annotator.

    By default the answers to gold tasks are left out (they measure annotators, and their pair's
    answer is known anyway); `include_gold=True` returns every human label, e.g. for agreement."""
    return [_label(r) for r in store.annotations.human_labels(pair_ids, include_gold)]
