"""Rounds and the model-version registry in the store: what each round saw, made and published.

Every SQL statement about rounds lives here, behind named methods of `store.registry`; when a round
is due and what it trains on are the round stage's rules (issue 11, the `round` and `publish` stages).

- `rounds`: one row per round (a run of the flow), 'running' until `finish_round` or `publish`;
  `round_prompts` the train prompts known at each round; `round_pairs` each round's pairs with their
  final label, the history later rounds train on.
- `model_versions`: a published policy with its lineage (round, parent version, hashes of params,
  `dvc.lock` and data, label counts, metrics, gate verdicts, where its artifacts are: `artifact_uri`
  the local folder, `remote_uri` its copy in the artifact store once uploaded); `label_counts`,
  `metrics` and `gates` are stored as JSON text and returned as dicts.
- `registry_pointers`: named versions; 'current' is the one the next round samples from.

Each method is one short transaction, like the rest of the store; `publish` writes its version, the
pointer and the round together or not at all.
"""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from prefpipe.errors import StoreError
from prefpipe.vocab import Vocabulary

if TYPE_CHECKING:
    from prefpipe.store.db import Store

CURRENT = "current"  # the pointer the next round samples from
JSON_COLUMNS = ("label_counts", "metrics", "gates")
VERSION_COLUMNS = ("version", "round", "parent_version", "model_hash", "params_sha256", "git_revision",
                   "dvc_lock_sha256", "snapshot_sha256", "label_counts", "metrics", "gates",
                   "artifact_uri", "params_yaml", "dvc_lock", "remote_uri")  # + created_at, set here
PAIR_SCHEMA = pa.schema([
    ("round", pa.int32()), ("pair_id", pa.string()), ("prompt_id", pa.string()),
    ("prompt", pa.string()), ("category", pa.string()), ("response_a", pa.string()),
    ("finished_a", pa.bool_()), ("response_b", pa.string()), ("finished_b", pa.bool_()),
    ("choice", pa.string()), ("source", pa.string()), ("confidence", pa.float64())])
PAIR_OPTIONAL = ("choice", "source", "confidence")  # an unlabelled pair leaves them None

_ROUND_SQL = ("SELECT r.*, v.metrics FROM rounds r LEFT JOIN model_versions v "
              "ON r.status = 'published' AND v.version = r.published_version")


class RoundStatus(Vocabulary):
    """`rounds.status`: where a round stands."""
    RUNNING = "running"      # started, or resumed after a kill / failed stage
    PUBLISHED = "published"  # its policy is a model version
    REJECTED = "rejected"    # a gate failed: nothing published, 'current' stays


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _never_started(round: int) -> StoreError:
    return StoreError(f"round {round} was never started (no row in the store's rounds table)")


def _encode(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _decoded(row: dict) -> dict:
    """The row with its JSON columns (those it has) as dicts."""
    for key in JSON_COLUMNS:
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


class Registry:
    """`store.registry`: rounds, model versions and the 'current' pointer of one store."""

    def __init__(self, store: Store):
        self.store = store

    # ---- rounds ---------------------------------------------------------------------------------

    def start_round(self, round: int, generator_version: str | None, generator_hash: str | None,
                    labels_digest: str | None, new_prompts: int, new_labels: int, reason: str,
                    prompt_ids: list[str], flow_run_id: str | None,
                    labels_count: int | None = None) -> None:
        """Record round `round` as 'running' with the train prompts known at it, in one transaction;
        `labels_count` is how many human labels `labels_digest` covers. A round that exists already
        is left as it is (a resumed round keeps its first start and prompts)."""
        with self.store.transaction() as con:
            if con.execute("SELECT 1 FROM rounds WHERE round = ?", [round]).fetchall():
                return
            con.execute(
                "INSERT INTO rounds (round, status, generator_version, generator_hash, labels_digest, "
                "labels_count, new_prompts, new_labels, reason, published_version, message, flow_run_id, "
                "started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, '', ?, ?, NULL)",
                [round, RoundStatus.RUNNING, generator_version, generator_hash, labels_digest,
                 labels_count, new_prompts, new_labels, reason, flow_run_id, _now()])
            if prompt_ids:
                con.execute("INSERT INTO round_prompts SELECT ?, unnest(list_distinct(?::VARCHAR[]))",
                            [round, list(prompt_ids)])

    def note_labels(self, round: int, labels_count: int, labels_digest: str) -> None:
        """Record the human labels a round has taken in (after its label stage), so the next round
        counts only labels that arrived after them."""
        with self.store.transaction() as con:
            if not con.execute("UPDATE rounds SET labels_count = ?, labels_digest = ? WHERE round = ? "
                               "RETURNING 1", [labels_count, labels_digest, round]).fetchall():
                raise _never_started(round)

    def rounds(self) -> list[dict]:
        """Every round by number; a published round carries its version's `metrics` (a dict; None
        for a round not published)."""
        return [_decoded(r) for r in self.store.query(f"{_ROUND_SQL} ORDER BY r.round").to_pylist()]

    def last_round(self) -> dict | None:
        """The round with the highest number (as `rounds()` gives it), or None before the first."""
        rows = self.store.query(f"{_ROUND_SQL} ORDER BY r.round DESC LIMIT 1").to_pylist()
        return _decoded(rows[0]) if rows else None

    def known_prompt_ids(self, before: int | None = None) -> set[str]:
        """Train prompt ids known to any round (only to rounds numbered below `before` if given)."""
        where, params = ("WHERE round < ?", [before]) if before is not None else ("", [])
        rows = self.store.query(f"SELECT DISTINCT prompt_id FROM round_prompts {where}", params)
        return set(rows["prompt_id"].to_pylist())

    def finish_round(self, round: int, status: str, version: str | None = None,
                     message: str = "") -> None:
        """Set a round's status: 'published' (with the `version` it published, which must be
        registered), 'rejected', or back to 'running' (finished_at cleared)."""
        if status not in RoundStatus.values():
            raise ValueError(f"round {round}: status {status!r} is not one of {list(RoundStatus.values())}")
        if status == RoundStatus.PUBLISHED and version is None:
            raise ValueError(f"round {round}: status 'published' needs the version it published")
        finished_at = None if status == RoundStatus.RUNNING else _now()
        with self.store.transaction() as con:
            if version is not None and not con.execute(
                    "SELECT 1 FROM model_versions WHERE version = ?", [version]).fetchall():
                raise StoreError(f"round {round}: unknown model version {version!r}")
            self._mark(con, round, status, version, message, finished_at)

    @staticmethod
    def _mark(con, round: int, status: str, version: str | None, message: str,
              finished_at: datetime | None) -> None:
        updated = con.execute(
            "UPDATE rounds SET status = ?, published_version = ?, message = ?, finished_at = ? "
            "WHERE round = ? RETURNING 1", [status, version, message, finished_at, round]).fetchall()
        if not updated:
            raise _never_started(round)

    # ---- pairs and labels -----------------------------------------------------------------------

    def record_pairs(self, round: int, rows: list[dict]) -> None:
        """Upsert a round's pairs (keyed by round and pair_id). Each row needs the columns of
        `round_pairs` except `round` (the argument) and choice/source/confidence (None: unlabelled);
        other keys are ignored."""
        if not rows:
            return
        required = [c for c in PAIR_SCHEMA.names if c != "round" and c not in PAIR_OPTIONAL]
        for index, row in enumerate(rows):
            missing = [c for c in required if c not in row]
            if missing:
                raise StoreError(f"round {round}: pair row {index} ({row.get('pair_id', '?')}) lacks "
                                 f"{', '.join(missing)}")
        table = pa.Table.from_pylist(
            [{**{c: row.get(c) for c in PAIR_SCHEMA.names}, "round": round} for row in rows],
            schema=PAIR_SCHEMA)
        with self.store.transaction() as con:
            con.register("incoming_pairs", table)
            con.execute(f"INSERT OR REPLACE INTO round_pairs ({', '.join(PAIR_SCHEMA.names)}) "
                        f"SELECT {', '.join(PAIR_SCHEMA.names)} FROM incoming_pairs")
            con.unregister("incoming_pairs")

    def pairs_before(self, round: int) -> list[dict]:
        """The pairs of every round numbered below `round`, ordered by (round, pair_id)."""
        return self.store.query("SELECT * FROM round_pairs WHERE round < ? ORDER BY round, pair_id",
                                [round]).to_pylist()

    def human_choices(self, pair_ids: list[str] | None = None) -> dict[str, list[str]]:
        """pair_id -> the choices of its labels with source 'human', in label_id order (of the given
        pairs only, if `pair_ids`); a pair without human labels is absent."""
        sql = "SELECT pair_id, choice FROM labels WHERE source = 'human'"
        params: list = []
        if pair_ids is not None:
            if not pair_ids:
                return {}
            sql += " AND pair_id IN (SELECT unnest(?::VARCHAR[]))"
            params = [list(pair_ids)]
        choices: dict[str, list[str]] = {}
        for row in self.store.query(f"{sql} ORDER BY label_id", params).to_pylist():
            choices.setdefault(row["pair_id"], []).append(row["choice"])
        return choices

    def human_labels_digest(self) -> tuple[int, str]:
        """(count, sha256 hex) over the (label_id, choice) of labels with source 'human', sorted by
        label_id: it changes when a human label is added, removed or changes its choice."""
        rows = self.store.query("SELECT label_id, choice FROM labels WHERE source = 'human' "
                                "ORDER BY label_id").to_pylist()
        digest = hashlib.sha256()
        for row in rows:
            digest.update(f"{row['label_id']}\t{row['choice']}\n".encode())
        return len(rows), digest.hexdigest()

    # ---- model versions -------------------------------------------------------------------------

    def publish(self, version_row: dict) -> None:
        """In one transaction: register the version (its keys are `model_versions` columns but
        created_at; label_counts/metrics/gates as dicts), point 'current' at it and mark its round
        'published'. Publishing an id again with the same model_hash registers nothing new but
        still moves 'current' and marks the round; another model_hash under that id is a
        StoreError and nothing changes."""
        unknown = sorted(set(version_row) - set(VERSION_COLUMNS))
        if unknown:
            raise StoreError(f"model version row: unknown keys {unknown} (known: {list(VERSION_COLUMNS)})")
        if not version_row.get("version") or not version_row.get("model_hash"):
            raise StoreError("model version row: 'version' and 'model_hash' are required")
        row = {c: version_row.get(c) for c in VERSION_COLUMNS}
        for key in JSON_COLUMNS:
            row[key] = _encode(row[key])
        version, now = row["version"], _now()
        with self.store.transaction() as con:
            found = con.execute("SELECT model_hash FROM model_versions WHERE version = ?",
                                [version]).fetchall()
            if found and found[0][0] != row["model_hash"]:
                raise StoreError(f"model version {version} is registered with model hash {found[0][0]}, "
                                 f"not {row['model_hash']}: a version id names one model")
            if not found:
                con.execute(f"INSERT INTO model_versions ({', '.join(VERSION_COLUMNS)}, created_at) "
                            f"VALUES ({', '.join('?' * (len(VERSION_COLUMNS) + 1))})",
                            [*row.values(), now])
            self._point(con, version, now)
            self._mark(con, row["round"], RoundStatus.PUBLISHED, version, "", now)

    @staticmethod
    def _point(con, version: str, now: datetime) -> None:
        con.execute("INSERT OR REPLACE INTO registry_pointers (name, version, updated_at) "
                    "VALUES (?, ?, ?)", [CURRENT, version, now])

    def versions(self) -> list[dict]:
        """Every registered version, by round then registration time."""
        rows = self.store.query("SELECT * FROM model_versions ORDER BY round, created_at, version")
        return [_decoded(r) for r in rows.to_pylist()]

    def version(self, version: str) -> dict | None:
        rows = self.store.query("SELECT * FROM model_versions WHERE version = ?", [version]).to_pylist()
        return _decoded(rows[0]) if rows else None

    def current(self) -> dict | None:
        """The version 'current' points at, or None while nothing is published."""
        rows = self.store.query("SELECT v.* FROM registry_pointers p JOIN model_versions v "
                                "ON v.version = p.version WHERE p.name = ?", [CURRENT]).to_pylist()
        return _decoded(rows[0]) if rows else None

    def set_remote_uri(self, version: str, uri: str) -> None:
        """Record where a registered version's copy in the artifact store is (`prefpipe push`)."""
        with self.store.transaction() as con:
            if not con.execute("UPDATE model_versions SET remote_uri = ? WHERE version = ? RETURNING 1",
                               [uri, version]).fetchall():
                raise StoreError(f"unknown model version {version!r}: publish it before recording "
                                 "its remote copy")

    def set_current(self, version: str) -> None:
        """Point 'current' at a registered version (a rollback); the next round samples from it."""
        with self.store.transaction() as con:
            known = [v for (v,) in con.execute(
                "SELECT version FROM model_versions ORDER BY round, created_at, version").fetchall()]
            if version not in known:
                raise StoreError(f"unknown model version {version!r}; known versions: "
                                 f"{', '.join(known) or 'none (nothing published yet)'}")
            self._point(con, version, _now())
