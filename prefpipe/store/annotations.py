"""Human annotation in the store: annotators, their task queues, the answers and gold accuracy.

Every SQL statement of human annotation lives here, behind named methods of `store.annotations`;
the rules (who gets which pair, the order shown, what a valid id or answer is) live in
`prefpipe.annotate`. No method keeps a connection open: each is one short transaction, so the
long-running annotation app and pipeline stages (other processes) take turns on DuckDB's
single-process file lock. Writes within one process are serialised by one lock (DuckDB rejects
concurrent conflicting transactions), and concurrent answers share a transaction (group commit).

Answers are ordinary `labels` rows: source 'human', the annotator's id, the choice relative to the
pair's a/b and `shown_order` recording which response the annotator saw first. Only a label that
answers a task counts as an answer (progress, gold accuracy, `human_labels`), so imported labels
(source 'import', or 'human' if the importer said so) never pass for people's work.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from prefpipe.store.group_commit import GroupCommit

if TYPE_CHECKING:
    from prefpipe.store.db import Store

_COMMITS = GroupCommit()  # answers of concurrent annotators share a transaction
_WRITE_LOCK = _COMMITS.lock  # one writer at a time in this process

# The one definition of an unanswered task (alias `t` = annotation_tasks): its annotator has no
# human label on its pair yet.
UNANSWERED = ("NOT EXISTS (SELECT 1 FROM labels l WHERE l.pair_id = t.pair_id "
              "AND l.source = 'human' AND l.annotator = t.annotator_id)")

_TASK_SQL = """
SELECT t.task_id, t.pair_id, t.annotator_id, t.position, t.shown_order, p.prompt_id, pr.prompt,
       ca.response AS response_a, ca.finished AS finished_a,
       cb.response AS response_b, cb.finished AS finished_b
FROM annotation_tasks t
LEFT JOIN pairs p ON p.pair_id = t.pair_id
LEFT JOIN prompts pr ON pr.prompt_id = p.prompt_id
LEFT JOIN candidates ca ON ca.candidate_id = p.candidate_a
LEFT JOIN candidates cb ON cb.candidate_id = p.candidate_b
"""


@dataclass(frozen=True)
class QueuedTask:
    """A task row joined with its pair's prompt and responses (None where the store lacks a row),
    and its annotator's progress."""
    task_id: str
    pair_id: str
    annotator_id: str
    position: int
    shown_order: str  # 'ab' | 'ba'
    prompt_id: str | None
    prompt: str | None
    response_a: str | None
    finished_a: bool | None
    response_b: str | None
    finished_b: bool | None
    done: int  # tasks of this annotator already answered
    total: int  # tasks in this annotator's queue


@dataclass(frozen=True)
class ExistingTask:
    """What dealing needs to know of a task already queued."""
    annotator_id: str
    pair_id: str
    position: int
    gold_choice: str | None


class TaskDealing:
    """Queue writes inside one transaction (see `Annotations.dealing`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self._con = con

    def missing_annotators(self, annotator_ids: Sequence[str]) -> list[str]:
        """The ids, in the order given, that are not in the annotators table."""
        return self._missing("annotators", "annotator_id", annotator_ids)

    def missing_pairs(self, pair_ids: Sequence[str]) -> list[str]:
        """The ids, in the order given, that are not in the pairs table."""
        return self._missing("pairs", "pair_id", pair_ids)

    def _missing(self, table: str, column: str, ids: Sequence[str]) -> list[str]:
        if not ids:
            return []
        # table and column are constants of this class; the ids travel as a parameter
        found = {r[0] for r in self._con.execute(
            f"SELECT {column} FROM {table} WHERE list_contains(?, {column})", [list(ids)]).fetchall()}
        return [i for i in ids if i not in found]

    def existing_tasks(self) -> list[ExistingTask]:
        """Every queued task, ordered by annotator then position."""
        rows = self._con.execute("SELECT annotator_id, pair_id, position, gold_choice FROM annotation_tasks "
                                 "ORDER BY annotator_id, position").fetchall()
        return [ExistingTask(*row) for row in rows]

    def insert_tasks(self, rows: Sequence[dict]) -> int:
        """Insert task rows (task_id, pair_id, annotator_id, position, shown_order, gold_choice)."""
        if not rows:
            return 0
        self._con.register("new_tasks", pa.Table.from_pylist(list(rows)))
        self._con.execute("INSERT INTO annotation_tasks (task_id, pair_id, annotator_id, position, "
                          "shown_order, gold_choice) SELECT task_id, pair_id, annotator_id, position, "
                          "shown_order, gold_choice FROM new_tasks")
        self._con.unregister("new_tasks")
        return len(rows)


class Annotations:
    """`store.annotations`: the annotators, annotation_tasks and human labels of one store."""

    def __init__(self, store: Store):
        self.store = store

    # --- annotators -------------------------------------------------------------------------
    def upsert_annotator(self, annotator_id: str, token_sha256: str, is_admin: bool) -> None:
        """Add an annotator, or replace the token hash and admin flag of an existing one."""
        with _WRITE_LOCK, self.store.transaction() as con:
            con.execute(
                "INSERT INTO annotators (annotator_id, token_sha256, is_admin) VALUES (?, ?, ?) "
                "ON CONFLICT (annotator_id) DO UPDATE SET token_sha256 = excluded.token_sha256, "
                "is_admin = excluded.is_admin", [annotator_id, token_sha256, bool(is_admin)])

    def annotator_for_token_hash(self, token_sha256: str) -> tuple[str, bool] | None:
        """(annotator_id, is_admin) of the annotator holding this token hash, else None."""
        found = self.store.query("SELECT annotator_id, is_admin FROM annotators WHERE token_sha256 = ?",
                                 [token_sha256]).to_pylist()
        return (found[0]["annotator_id"], bool(found[0]["is_admin"])) if found else None

    def annotator_token_hash(self, annotator_id: str) -> tuple[str, bool] | None:
        """(token_sha256, is_admin) of an annotator, or None."""
        found = self.store.query("SELECT token_sha256, is_admin FROM annotators WHERE annotator_id = ?",
                                 [annotator_id]).to_pylist()
        return (found[0]["token_sha256"], bool(found[0]["is_admin"])) if found else None

    # --- queues -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def dealing(self) -> Iterator[TaskDealing]:
        """One write transaction for adding tasks: check ids, read the queues, insert new tasks;
        an error inside rolls everything back."""
        with _WRITE_LOCK, self.store.transaction() as con:
            yield TaskDealing(con)

    def next_task(self, annotator_id: str) -> QueuedTask | None:
        """The first unanswered task of this annotator's queue (by position), or None when done."""
        with self.store.transaction() as con:
            row = _fetch_one(con, _TASK_SQL + f" WHERE t.annotator_id = ? AND {UNANSWERED} "
                             "ORDER BY t.position, t.task_id LIMIT 1", [annotator_id])
            return None if row is None else QueuedTask(**row, **_counts(con, annotator_id))

    def task(self, task_id: str) -> QueuedTask | None:
        """A task by id with its annotator's progress, or None if there is no such task."""
        with self.store.transaction() as con:
            row = _fetch_one(con, _TASK_SQL + " WHERE t.task_id = ?", [task_id])
            return None if row is None else QueuedTask(**row, **_counts(con, row["annotator_id"]))

    def queue_counts(self, annotator_id: str) -> tuple[int, int]:
        """(done, total) of one annotator's queue."""
        with self.store.transaction() as con:
            counts = _counts(con, annotator_id)
        return counts["done"], counts["total"]

    def pending_count(self, pair_ids: Sequence[str] | None = None) -> int:
        """Unanswered tasks in every queue, or only those of `pair_ids`."""
        if pair_ids is not None and not pair_ids:
            return 0
        where, params = UNANSWERED, []
        if pair_ids is not None:
            where += " AND list_contains(?, t.pair_id)"
            params.append(list(pair_ids))
        table = self.store.query(f"SELECT count(*) AS n FROM annotation_tasks t WHERE {where}", params)
        return int(table["n"][0].as_py())

    # --- answers ----------------------------------------------------------------------------
    def submit_human_label(self, task_id: str, annotator_id: str, rationale: str | None,
                           pair_choice: Callable[[str], str], label_key: Callable[[str], str]) -> dict:
        """Insert an annotator's answer to one of their tasks as a 'human' label; returns the stored row.

        `pair_choice(shown_order)` gives the choice relative to the pair's a/b and `label_key(pair_id)`
        the label's id; an id already present keeps its first answer (and that one is returned).
        Raises LookupError for an unknown task and PermissionError for another annotator's task.
        Concurrent calls share a transaction; each returns once its answer has committed."""
        def write(con: duckdb.DuckDBPyConnection) -> dict:
            task = con.execute("SELECT pair_id, annotator_id, shown_order FROM annotation_tasks "
                               "WHERE task_id = ?", [task_id]).fetchall()
            if not task:
                raise LookupError(f"task {task_id!r} does not exist")
            pair_id, owner, shown_order = task[0]
            if owner != annotator_id:
                raise PermissionError(f"task {task_id!r} is not in {annotator_id!r}'s queue")
            key = label_key(pair_id)
            con.execute("INSERT INTO labels (label_id, pair_id, source, annotator, choice, confidence, "
                        "principle, rationale, shown_order) VALUES (?, ?, 'human', ?, ?, 1.0, NULL, ?, ?) "
                        "ON CONFLICT (label_id) DO NOTHING",
                        [key, pair_id, annotator_id, pair_choice(shown_order), rationale, shown_order])
            return _fetch_one(con, "SELECT * FROM labels WHERE label_id = ?", [key])

        return _COMMITS.run(self.store, write)

    def gold_accuracy(self) -> dict[str, tuple[int, int]]:
        """annotator -> (correct, answered) over their answered gold items."""
        rows = self.store.query(
            "SELECT t.annotator_id, count(*) AS n, count(*) FILTER (WHERE l.choice = t.gold_choice) AS ok "
            "FROM annotation_tasks t JOIN labels l ON l.pair_id = t.pair_id AND l.source = 'human' "
            "AND l.annotator = t.annotator_id WHERE t.gold_choice IS NOT NULL "
            "GROUP BY t.annotator_id ORDER BY t.annotator_id").to_pylist()
        return {r["annotator_id"]: (int(r["ok"]), int(r["n"])) for r in rows}

    def progress(self) -> list[dict]:
        """Per annotator (by id): done, total, gold correct/answered and accuracy (None before any gold)."""
        counts = self.store.query(
            f"SELECT a.annotator_id, a.is_admin, count(t.task_id) AS total, "
            f"count(t.task_id) FILTER (WHERE NOT {UNANSWERED}) AS done "
            "FROM annotators a LEFT JOIN annotation_tasks t ON t.annotator_id = a.annotator_id "
            "GROUP BY a.annotator_id, a.is_admin ORDER BY a.annotator_id").to_pylist()
        gold = self.gold_accuracy()
        out = []
        for r in counts:
            correct, n = gold.get(r["annotator_id"], (0, 0))
            out.append({"annotator": r["annotator_id"], "is_admin": bool(r["is_admin"]),
                        "done": int(r["done"]), "total": int(r["total"]), "gold_correct": correct,
                        "gold_n": n, "gold_accuracy": correct / n if n else None})
        return out

    def human_labels(self, pair_ids: Sequence[str] | None = None, include_gold: bool = False) -> list[dict]:
        """People's answers: 'human' labels that answer a task of their annotator's queue, ordered by
        pair then annotator; answers to gold tasks only with `include_gold`. An imported file's
        labels are never among them, whatever source it was given: they answer no task."""
        where = ["l.source = 'human'"]
        params: list[Any] = []
        if not include_gold:
            where.append("t.gold_choice IS NULL")
        if pair_ids is not None:
            where.append("list_contains(?, l.pair_id)")
            params.append(list(pair_ids))
        return self.store.query(
            "SELECT l.* FROM labels l JOIN annotation_tasks t ON t.pair_id = l.pair_id "
            f"AND t.annotator_id = l.annotator WHERE {' AND '.join(where)} ORDER BY l.pair_id, l.annotator",
            params).to_pylist()


def _fetch_one(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> dict | None:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()  # fetchone() would leave the result open for the connection's next query
    return dict(zip(names, rows[0])) if rows else None


def _counts(con: duckdb.DuckDBPyConnection, annotator_id: str) -> dict[str, int]:
    total, todo = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {UNANSWERED}) FROM annotation_tasks t "
        "WHERE t.annotator_id = ?", [annotator_id]).fetchone()
    return {"done": int(total - todo), "total": int(total)}
