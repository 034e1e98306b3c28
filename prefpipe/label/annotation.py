"""Human annotation in the store: annotators, their queues, answers and gold accuracy.

The web app (`prefpipe.label.app`) and the label stage both call these functions; none of them
keeps a connection open: every call is one short `Store` transaction, so the long-running app and
pipeline stages (other processes) take turns on DuckDB's single-process file lock. Writes within
one process are serialised by a lock, as DuckDB rejects concurrent conflicting transactions.

Answers are stored as ordinary `labels` rows (source 'human', choice relative to the pair's a/b,
`shown_order` recording which response the annotator saw first).
"""
from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa

from prefpipe.label.group_commit import GroupCommit
from prefpipe.label.simulated import pair_rng
from prefpipe.label.types import Label, label_id
from prefpipe.store import Store

SHOWN_CHOICES = ("first", "second", "tie", "both_bad")
MAX_RATIONALE_CHARS = 5000
ANNOTATOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_COMMITS = GroupCommit()  # submits of concurrent annotators share a transaction
_WRITE_LOCK = _COMMITS.lock  # one writer at a time in this process


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


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def task_id(pair_id: str, annotator_id: str) -> str:
    return hashlib.sha256(f"{pair_id}\0{annotator_id}".encode()).hexdigest()[:20]


def to_pair_choice(choice_shown: str, shown_order: str) -> str:
    """'first'/'second' as shown -> 'a'/'b' of the pair; 'tie' and 'both_bad' are order-free."""
    if choice_shown not in SHOWN_CHOICES:
        raise ValueError(f"choice {choice_shown!r} is not one of {SHOWN_CHOICES}")
    if choice_shown in ("tie", "both_bad"):
        return choice_shown
    return "a" if (choice_shown == "first") == (shown_order == "ab") else "b"


def to_shown_choice(choice: str, shown_order: str) -> str:
    """The inverse of `to_pair_choice`."""
    if choice in ("tie", "both_bad"):
        return choice
    return "first" if (choice == "a") == (shown_order == "ab") else "second"


def add_annotator(store: Store, annotator_id: str, is_admin: bool = False) -> str:
    """Register an annotator (or rotate their token) and return the new sign-in token.

    Only the token's sha256 is stored, so the token is shown this once; rotating it signs out
    every session of the old one."""
    if not ANNOTATOR_ID.match(annotator_id or ""):
        raise ValueError(f"annotator id {annotator_id!r}: use 1-64 letters, digits, '_', '.', '@' "
                         "or '-', starting with a letter or digit")
    token = secrets.token_urlsafe(32)
    with _WRITE_LOCK, store.transaction() as con:
        con.execute(
            "INSERT INTO annotators (annotator_id, token_sha256, is_admin) VALUES (?, ?, ?) "
            "ON CONFLICT (annotator_id) DO UPDATE SET token_sha256 = excluded.token_sha256, "
            "is_admin = excluded.is_admin", [annotator_id, token_hash(token), bool(is_admin)])
    return token


def annotator_for_token(store: Store, token: str | None) -> tuple[str, bool] | None:
    """(annotator_id, is_admin) for a valid token, else None."""
    if not token or len(token) > 512:
        return None
    found = store.query("SELECT annotator_id, is_admin FROM annotators WHERE token_sha256 = ?",
                        [token_hash(token)]).to_pylist()
    return (found[0]["annotator_id"], bool(found[0]["is_admin"])) if found else None


def annotator_token_hash(store: Store, annotator_id: str) -> tuple[str, bool] | None:
    """(token_sha256, is_admin) of an annotator, or None; sessions check it is still current."""
    found = store.query("SELECT token_sha256, is_admin FROM annotators WHERE annotator_id = ?",
                        [annotator_id]).to_pylist()
    return (found[0]["token_sha256"], bool(found[0]["is_admin"])) if found else None


def enqueue(store: Store, pair_ids: Sequence[str], annotators: Sequence[str], overlap: int,
            gold: Mapping[str, str], gold_every: int, seed: int) -> int:
    """Deal pairs to annotators' queues and mix in gold items; returns the number of tasks added.

    Each pair goes to `overlap` distinct annotators, always the least loaded ones (ties broken
    by a seeded draw per pair), so queues differ by at most one regular task. A pair already
    queued for some annotators only gets the missing ones, so enqueueing twice adds nothing.
    New tasks go after each queue's existing ones, each with a seeded random shown order. After
    every `gold_every` regular tasks (counted across calls) a gold item — a pair of `gold`
    (pair_id -> 'a'|'b') this annotator does not have yet — is added; `gold_every=0` adds none.
    Pairs that are keys of `gold` are only dealt as gold items."""
    annotators = list(annotators)
    if not annotators or len(set(annotators)) != len(annotators):
        raise ValueError(f"enqueue: annotators must be a non-empty list of distinct ids, got {annotators}")
    if not 1 <= overlap <= len(annotators):
        raise ValueError(f"enqueue: overlap {overlap} must be between 1 and the number of "
                         f"annotators ({len(annotators)}); add annotators or lower the overlap")
    if gold_every < 0:
        raise ValueError(f"enqueue: gold_every {gold_every} must be >= 0 (0 = no gold items)")
    bad_gold = {p: c for p, c in gold.items() if c not in ("a", "b")}
    if bad_gold:
        raise ValueError(f"enqueue: gold choices must be 'a' or 'b'; got {bad_gold}")
    regular = list(dict.fromkeys(p for p in pair_ids if p not in gold))
    with _WRITE_LOCK, store.transaction() as con:
        _check_exist(con, "annotators", "annotator_id", annotators, "add them with add_annotator first")
        _check_exist(con, "pairs", "pair_id", regular + list(gold), "generate the pairs first")
        existing = con.execute(
            "SELECT annotator_id, pair_id, position, gold_choice FROM annotation_tasks "
            "ORDER BY annotator_id, position").fetchall()
        have: dict[str, set[str]] = {}
        load = dict.fromkeys(annotators, 0)
        next_position = dict.fromkeys(annotators, 0)
        since_gold = dict.fromkeys(annotators, 0)
        for annotator, pair, position, gold_choice in existing:
            have.setdefault(pair, set()).add(annotator)
            if annotator in load:
                next_position[annotator] = position + 1
                load[annotator] += gold_choice is None
                since_gold[annotator] = 0 if gold_choice is not None else since_gold[annotator] + 1
        dealt: dict[str, list[str]] = {a: [] for a in annotators}
        for pair in regular:
            holders = have.get(pair, set())
            need = overlap - len(holders)
            if need <= 0:
                continue
            rng = pair_rng(seed, pair, "deal")
            draw = {a: rng.random() for a in annotators}
            for annotator in sorted((a for a in annotators if a not in holders),
                                    key=lambda a: (load[a], draw[a]))[:need]:
                load[annotator] += 1
                dealt[annotator].append(pair)
        rows = []
        for annotator in annotators:
            gold_left = [p for p in sorted(gold) if annotator not in have.get(p, set())]
            pair_rng(seed, annotator, "gold").shuffle(gold_left)
            for pair in dealt[annotator]:
                rows.append(_task_row(pair, annotator, next_position[annotator], None, seed))
                next_position[annotator] += 1
                since_gold[annotator] += 1
                if gold_every and since_gold[annotator] >= gold_every and gold_left:
                    gold_pair = gold_left.pop(0)
                    rows.append(_task_row(gold_pair, annotator, next_position[annotator],
                                          gold[gold_pair], seed))
                    next_position[annotator] += 1
                    since_gold[annotator] = 0
        if rows:
            con.register("new_tasks", pa.Table.from_pylist(rows))
            con.execute("INSERT INTO annotation_tasks (task_id, pair_id, annotator_id, position, "
                        "shown_order, gold_choice) SELECT task_id, pair_id, annotator_id, position, "
                        "shown_order, gold_choice FROM new_tasks")
            con.unregister("new_tasks")
    return len(rows)


def _task_row(pair: str, annotator: str, position: int, gold_choice: str | None, seed: int) -> dict:
    shown = "ab" if pair_rng(seed, f"{pair}\0{annotator}", "order").random() < 0.5 else "ba"
    return {"task_id": task_id(pair, annotator), "pair_id": pair, "annotator_id": annotator,
            "position": position, "shown_order": shown, "gold_choice": gold_choice}


def _check_exist(con, table: str, column: str, ids: Sequence[str], fix: str) -> None:
    if not ids:
        return
    # table and column are constants of this module; the ids travel as a parameter
    found = {r[0] for r in con.execute(f"SELECT {column} FROM {table} WHERE list_contains(?, {column})",
                                       [list(ids)]).fetchall()}
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValueError(f"enqueue: {len(missing)} {column}s not in the store's {table} table "
                         f"(first: {missing[:5]}); {fix}")


_TASK_SQL = """
SELECT t.task_id, t.pair_id, t.annotator_id, t.position, t.shown_order, pr.prompt,
       ca.response AS response_a, ca.finished AS finished_a,
       cb.response AS response_b, cb.finished AS finished_b, p.prompt_id,
       p.candidate_a, p.candidate_b
FROM annotation_tasks t
LEFT JOIN pairs p ON p.pair_id = t.pair_id
LEFT JOIN prompts pr ON pr.prompt_id = p.prompt_id
LEFT JOIN candidates ca ON ca.candidate_id = p.candidate_a
LEFT JOIN candidates cb ON cb.candidate_id = p.candidate_b
"""
_UNANSWERED = ("NOT EXISTS (SELECT 1 FROM labels l WHERE l.pair_id = t.pair_id "
               "AND l.source = 'human' AND l.annotator = t.annotator_id)")


def next_task(store: Store, annotator_id: str) -> TaskView | None:
    """The first task of this annotator's queue that they have not answered, or None when done."""
    with store.transaction() as con:
        row = _fetch_one(con, _TASK_SQL + f" WHERE t.annotator_id = ? AND {_UNANSWERED} "
                         "ORDER BY t.position, t.task_id LIMIT 1", [annotator_id])
        return None if row is None else _view(row, *_counts(con, annotator_id))


def get_task(store: Store, annotator_id: str, task_id: str) -> TaskView:
    """A task of this annotator's queue; LookupError if unknown, PermissionError if another's."""
    with store.transaction() as con:
        row = _fetch_one(con, _TASK_SQL + " WHERE t.task_id = ?", [task_id])
        if row is None:
            raise LookupError(f"task {task_id!r} does not exist")
        if row["annotator_id"] != annotator_id:
            raise PermissionError(f"task {task_id!r} is not in {annotator_id!r}'s queue")
        return _view(row, *_counts(con, annotator_id))


def queue_progress(store: Store, annotator_id: str) -> tuple[int, int]:
    """(done, total) of one annotator's queue."""
    with store.transaction() as con:
        return _counts(con, annotator_id)


def _fetch_one(con, sql: str, params: list) -> dict | None:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()  # fetchone() would leave the result open for the connection's next query
    return dict(zip(names, rows[0])) if rows else None


def _counts(con, annotator_id: str) -> tuple[int, int]:
    total, todo = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {_UNANSWERED}) FROM annotation_tasks t "
        "WHERE t.annotator_id = ?", [annotator_id]).fetchone()
    return int(total - todo), int(total)


def _view(row: dict, done: int, total: int) -> TaskView:
    missing = [name for name in ("prompt_id", "prompt", "response_a", "response_b") if row[name] is None]
    if missing:
        raise LookupError(f"task {row['task_id']}: pair {row['pair_id']!r} lacks {missing} in the "
                          "store (pairs/prompts/candidates rows); re-run generate or drop the task")
    a = (row["response_a"], bool(row["finished_a"]))
    b = (row["response_b"], bool(row["finished_b"]))
    first, second = (a, b) if row["shown_order"] == "ab" else (b, a)
    return TaskView(row["task_id"], row["pair_id"], row["prompt"], first[0], second[0], first[1],
                    second[1], int(row["position"]), done, total)


def submit(store: Store, annotator_id: str, task_id: str, choice_shown: str,
           rationale: str | None) -> Label:
    """Record an annotator's answer to one of their tasks as a 'human' label, in one transaction.

    `choice_shown` is 'first' | 'second' | 'tie' | 'both_bad' as the annotator saw the pair; it is
    stored relative to the pair's a/b. The label id depends only on (pair, 'human', annotator), so
    a second submit of the same task keeps the first answer and returns it. Raises LookupError
    for an unknown task, PermissionError for another annotator's task, ValueError for a bad
    choice or an over-long rationale."""
    if choice_shown not in SHOWN_CHOICES:
        raise ValueError(f"choice {choice_shown!r} is not one of {SHOWN_CHOICES}")
    rationale = (rationale or "").strip() or None
    if rationale is not None and len(rationale) > MAX_RATIONALE_CHARS:
        raise ValueError(f"rationale has {len(rationale)} characters; keep it under {MAX_RATIONALE_CHARS}")
    def write(con) -> dict:
        task = con.execute("SELECT pair_id, annotator_id, shown_order FROM annotation_tasks "
                           "WHERE task_id = ?", [task_id]).fetchall()
        if not task:
            raise LookupError(f"task {task_id!r} does not exist")
        pair_id, owner, shown_order = task[0]
        if owner != annotator_id:
            raise PermissionError(f"task {task_id!r} is not in {annotator_id!r}'s queue")
        key = label_id(pair_id, "human", annotator_id)
        con.execute("INSERT INTO labels (label_id, pair_id, source, annotator, choice, confidence, "
                    "principle, rationale, shown_order) VALUES (?, ?, 'human', ?, ?, 1.0, NULL, ?, ?) "
                    "ON CONFLICT (label_id) DO NOTHING",
                    [key, pair_id, annotator_id, to_pair_choice(choice_shown, shown_order), rationale,
                     shown_order])
        return _fetch_one(con, "SELECT * FROM labels WHERE label_id = ?", [key])

    stored = _COMMITS.run(store, write)
    return _label(stored)


def _label(row: dict) -> Label:
    return Label(row["pair_id"], row["source"], row["annotator"], row["choice"], float(row["confidence"]),
                 row["principle"], row["rationale"], row["shown_order"])


def gold_accuracy(store: Store) -> dict[str, tuple[int, int]]:
    """annotator -> (correct, answered) over their answered gold items."""
    rows = store.query(
        "SELECT t.annotator_id, count(*) AS n, count(*) FILTER (WHERE l.choice = t.gold_choice) AS ok "
        "FROM annotation_tasks t JOIN labels l ON l.pair_id = t.pair_id AND l.source = 'human' "
        "AND l.annotator = t.annotator_id WHERE t.gold_choice IS NOT NULL "
        "GROUP BY t.annotator_id ORDER BY t.annotator_id").to_pylist()
    return {r["annotator_id"]: (int(r["ok"]), int(r["n"])) for r in rows}


def progress(store: Store) -> list[dict]:
    """Per annotator: done, total, gold correct/answered and accuracy (None before any gold)."""
    counts = store.query(
        f"SELECT a.annotator_id, a.is_admin, count(t.task_id) AS total, "
        f"count(t.task_id) FILTER (WHERE NOT {_UNANSWERED}) AS done "
        "FROM annotators a LEFT JOIN annotation_tasks t ON t.annotator_id = a.annotator_id "
        "GROUP BY a.annotator_id, a.is_admin ORDER BY a.annotator_id").to_pylist()
    gold = gold_accuracy(store)
    out = []
    for r in counts:
        correct, n = gold.get(r["annotator_id"], (0, 0))
        out.append({"annotator": r["annotator_id"], "is_admin": bool(r["is_admin"]),
                    "done": int(r["done"]), "total": int(r["total"]), "gold_correct": correct,
                    "gold_n": n, "gold_accuracy": correct / n if n else None})
    return out


def human_labels(store: Store, pair_ids: Sequence[str] | None = None,
                 include_gold: bool = False) -> list[Label]:
    """Human labels, ordered by pair then annotator.

    By default the answers to gold tasks are left out (they measure annotators, and their pair's
    answer is known anyway); `include_gold=True` returns every human label, e.g. for agreement."""
    where = ["l.source = 'human'"]
    params: list = []
    if not include_gold:
        where.append("t.gold_choice IS NULL")
    if pair_ids is not None:
        where.append("list_contains(?, l.pair_id)")
        params.append(list(pair_ids))
    rows = store.query(
        "SELECT l.* FROM labels l LEFT JOIN annotation_tasks t ON t.pair_id = l.pair_id "
        f"AND t.annotator_id = l.annotator WHERE {' AND '.join(where)} ORDER BY l.pair_id, l.annotator",
        params).to_pylist()
    return [_label(r) for r in rows]
