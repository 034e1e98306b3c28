"""The store's side of preference interchange: inserting an imported file's rows, all at once or a
batch at a time (`prefpipe.store.import_batches`), bringing an older store's labels table up to
today's label sources first; and reading the decisive labels an export writes. The rules (parsing,
ids, chosen/rejected) stay in `prefpipe.data.interchange`; this module holds their SQL.

    added = store.imports.insert_new({"prompts": [...], "candidates": [...], "pairs": [...],
                                      "labels": [...]})
    with store.imports.batched(ImportSpec("prefs.jsonl", "import", gen_key, "import:file")) as writer:
        for batch in batches:  # pa.Table of BATCH_COLUMNS, in file order, firsts marked
            writer.add(batch)
        added = writer.finish()  # rows added per table
    votes = store.exports.decisive_votes()
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from prefpipe.store.import_batches import ImportSpec, ImportWriter
from prefpipe.store.schema import TABLES

if TYPE_CHECKING:
    from prefpipe.store.db import Store

# Per pair, the decisive labels ('a' or 'b') vote; a split vote carries no preference. The
# confidence is the mean confidence of the labels on the winning side.
DECISIVE_SQL = """
WITH votes AS (
    SELECT pair_id,
           count(*) FILTER (WHERE choice = 'a') AS n_a,
           count(*) FILTER (WHERE choice = 'b') AS n_b,
           avg(confidence) FILTER (WHERE choice = 'a') AS conf_a,
           avg(confidence) FILTER (WHERE choice = 'b') AS conf_b
    FROM labels WHERE choice IN ('a', 'b') GROUP BY pair_id
)
SELECT p.pair_id, p.prompt_id, pr.prompt, ca.response AS response_a, cb.response AS response_b,
       v.n_a, v.n_b, v.conf_a, v.conf_b
FROM votes v
JOIN pairs p ON p.pair_id = v.pair_id
JOIN prompts pr ON pr.prompt_id = p.prompt_id
JOIN candidates ca ON ca.candidate_id = p.candidate_a
JOIN candidates cb ON cb.candidate_id = p.candidate_b
WHERE v.n_a <> v.n_b
ORDER BY p.pair_id
"""


class Imports:
    """Writes of `prefpipe.data.interchange`'s importer (`store.imports`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def insert_new(self, tables: dict[str, list[dict]]) -> dict[str, int]:
        """Insert rows whose primary key is new (the rest are left as they are), all tables in one
        transaction; returns the rows added per table, so a repeated import reports 0s.

        Each table's rows are dicts with the same keys, a subset of its columns (the others take
        their defaults); their types are the store's own, read from the table."""
        added = {}
        with self.store.transaction() as con:
            admit_label_sources(con, {row["source"] for row in tables.get("labels", [])})
            for name, rows in tables.items():
                if not rows:
                    added[name] = 0
                    continue
                columns = ", ".join(rows[0])
                schema = _arrow_schema(con, name, columns)
                before = _count(con, name)
                con.register("incoming", pa.Table.from_pylist(rows, schema=schema))
                con.execute(f"INSERT OR IGNORE INTO {name} ({columns}) SELECT {columns} FROM incoming")
                con.unregister("incoming")
                added[name] = _count(con, name) - before
        return added

    @contextlib.contextmanager
    def batched(self, spec: ImportSpec) -> Iterator[ImportWriter]:
        """An `ImportWriter` for one file on one connection, each batch a transaction of its own
        (`prefpipe.store.import_batches`): check the file before the first batch."""
        with self.store.transaction() as con:
            admit_label_sources(con, {spec.source})
        with self.store.connect() as con:
            yield ImportWriter(con, spec)


class Exports:
    """Reads of `prefpipe.data.interchange`'s exporter (`store.exports`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def decisive_votes(self) -> list[dict]:
        """Per pair whose 'a'/'b' labels have a majority (an equal vote is left out; ties and
        'both bad' do not vote), by pair id: {pair_id, prompt_id, prompt, response_a, response_b,
        n_a, n_b, conf_a, conf_b}, conf_x being the mean confidence of the labels choosing x."""
        return self.store.query(DECISIVE_SQL).to_pylist()


def admit_label_sources(con: duckdb.DuckDBPyConnection, sources: set[str]) -> None:
    """Rebuild the labels table with today's CHECK on `source` (schema.TABLES) if the store was made
    before one of `sources` was a label source (e.g. 'import'): DuckDB can't alter a CHECK, and a
    table's CHECK stays the one it was created with. Every row and column is kept."""
    checks = [row[0] for row in con.execute(
        "SELECT expression FROM duckdb_constraints() WHERE table_name = 'labels' "
        "AND constraint_type = 'CHECK'").fetchall()]
    source_check = next((c for c in checks if '"source"' in c or "source IN" in c), None)
    if source_check is None or all(f"'{source}'" in source_check for source in sources):
        return
    con.execute("ALTER TABLE labels RENAME TO labels_before_migration")
    con.execute(TABLES)  # every table IF NOT EXISTS: only labels is made anew
    con.execute("INSERT INTO labels BY NAME SELECT * FROM labels_before_migration")
    con.execute("DROP TABLE labels_before_migration")


def _arrow_schema(con: duckdb.DuckDBPyConnection, table: str, columns: str) -> pa.Schema:
    """The Arrow schema of `columns` (comma-separated) of `table`, as the store declares them."""
    return con.sql(f"SELECT {columns} FROM {table} LIMIT 0").to_arrow_table().schema


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]  # fetchall: result complete
