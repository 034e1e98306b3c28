"""The preference store: the only code that writes SQL.

DuckDB lets one process hold a read-write connection to a file at a time, so every method opens a
connection, does its work in one transaction and closes it; a locked file is retried with backoff.
"""
from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from prefpipe.errors import StoreError
from prefpipe.store.annotations import Annotations
from prefpipe.store.interchange import Exports, Imports
from prefpipe.store.registry import Registry
from prefpipe.store.schema import TABLES
from prefpipe.store.sessions import Sessions

LOCK_MARKERS = ("Could not set lock", "Conflicting lock")


class StoreLocked(StoreError):
    """Another process kept the store locked for longer than the retry budget."""


class Store:
    def __init__(self, path: str | Path, lock_timeout_s: float = 60.0):
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        self.annotations = Annotations(self)  # annotators, their queues and answers
        self.sessions = Sessions(self)  # the annotation app's signed-in sessions
        self.imports = Imports(self)  # preference files imported (prefpipe.data.interchange)
        self.exports = Exports(self)  # decisive labels an export writes
        self.registry = Registry(self)  # rounds, model versions and the 'current' pointer
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.transaction() as con:
            con.execute(TABLES)

    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path))
                break
            except duckdb.IOException as err:
                if not any(m in str(err) for m in LOCK_MARKERS) or time.monotonic() > deadline:
                    if any(m in str(err) for m in LOCK_MARKERS):
                        raise StoreLocked(f"{self.path}: locked by another process for "
                                          f"{self.lock_timeout_s:.0f}s: {err}") from err
                    raise
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)
        try:
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: on any error the transaction rolls back and nothing is written."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def upsert(self, table: str, rows: pa.Table) -> int:
        """Insert rows, replacing those whose primary key already exists; one transaction."""
        if rows.num_rows == 0:
            return 0
        columns = ", ".join(rows.column_names)
        with self.transaction() as con:
            con.register("incoming", rows)
            con.execute(f"INSERT OR REPLACE INTO {table} ({columns}) SELECT {columns} FROM incoming")
            con.unregister("incoming")
        return rows.num_rows

    def query(self, sql: str, params: Sequence = ()) -> pa.Table:
        """A read-only query (parameterised) returning an Arrow table."""
        with self.connect() as con:
            return con.sql(sql, params=list(params) or None).to_arrow_table()

    def count(self, table: str) -> int:
        return int(self.query(f"SELECT count(*) AS n FROM {table}")["n"][0].as_py())

    def record_run(self, run_id: str, stage: str, status: str, params: dict | None = None,
                   metrics: dict | None = None, started_at: datetime | None = None) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        with self.transaction() as con:
            con.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                [run_id, stage, status, json.dumps(params or {}, sort_keys=True, default=str),
                 json.dumps(metrics or {}, sort_keys=True), started_at or now, now],
            )
