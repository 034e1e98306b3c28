"""Writing one imported preference file into the store a batch at a time (`store.imports.batched`).

The importer (`prefpipe.data.interchange`) parses a batch of rows, gives each its ids and hands it
over as an Arrow table of BATCH_COLUMNS, in file order, each row saying which of its prompt,
candidates and pair are the file's first (`new_prompt`; `sample_a`/`sample_b`, the candidate's
sample_index, null where the file gave it earlier; `new_pair`), with its prompt's category as the
file first gave it: the file's own rules are applied before the store is touched
(`prefpipe.data.interchange.batches`). The store's rule is the one `insert_new` applies: a row whose
key the store holds is left as it is. Each INSERT here is the batch's firsts less the keys the
store held when the writer began (an anti-join with the connection's TEMP tables of those keys:
no index probe and no conflict handling per row, as INSERT OR IGNORE has, and no scan of what the
import itself added, which grows batch by batch). A key another writer adds meanwhile fails the
batch's INSERT: the keys are taken again and the batch retried, once.

Each batch is a transaction of its own: DuckDB keeps a transaction's inserts in memory until it
commits (a whole 500K-pair file in one would hold it all), so the importer checks the whole file
before the first batch is written. The connection runs under IMPORT_SETTINGS: a memory limit
(DuckDB spills past it) and a checkpoint threshold that lets several batches' commits share one
checkpoint (each checkpoint compresses what changed: the bulk of an import's time).
"""
from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa

IMPORT_SETTINGS = {"memory_limit": "256MB", "checkpoint_threshold": "64MB"}
BATCH_COLUMNS = ("seq", "row_where", "prompt_id", "category", "prompt", "new_prompt", "candidate_a",
                 "chosen", "tokens_a", "sample_a", "candidate_b", "rejected", "tokens_b", "sample_b",
                 "pair_id", "label_id", "new_pair")
KEYS = {"prompts": "prompt_id", "candidates": "candidate_id", "pairs": "pair_id", "labels": "label_id"}
WRITTEN = tuple(KEYS)

INSERT_PROMPTS = """
INSERT INTO prompts (prompt_id, source, category, prompt, meta, split)
SELECT prompt_id, ?, category, prompt, NULL, 'train'
FROM incoming ANTI JOIN import_known_prompts USING (prompt_id) WHERE new_prompt
"""
# Chosen (candidate a) before rejected, row by row: the order `sample_index` counts in.
INSERT_CANDIDATES = """
INSERT INTO candidates (candidate_id, prompt_id, model_version, generation_key, sample_index,
                        response, finished, num_tokens)
SELECT * FROM (
    SELECT candidate_a, prompt_id, ?, ?, sample_a, chosen, true, tokens_a
    FROM incoming WHERE sample_a IS NOT NULL
    UNION ALL
    SELECT candidate_b, prompt_id, ?, ?, sample_b, rejected, true, tokens_b
    FROM incoming WHERE sample_b IS NOT NULL) AS new (candidate_id)
ANTI JOIN import_known_candidates USING (candidate_id)
"""
INSERT_PAIRS = """
INSERT INTO pairs (pair_id, prompt_id, candidate_a, candidate_b, generation_key)
SELECT pair_id, prompt_id, candidate_a, candidate_b, ?
FROM incoming ANTI JOIN import_known_pairs USING (pair_id) WHERE new_pair
"""
INSERT_LABELS = """
INSERT INTO labels (label_id, pair_id, source, annotator, choice, confidence, rationale)
SELECT label_id, pair_id, ?, ?, 'a', 1.0, ? || row_where
FROM incoming ANTI JOIN import_known_labels USING (label_id) WHERE new_pair
"""


@dataclass(frozen=True)
class ImportSpec:
    """What every row of one file shares: the file (provenance), the labels' source and annotator,
    and the generation key of its candidates."""
    file_name: str
    source: str
    generation_key: str
    annotator: str


class ImportWriter:
    """One file's batches into the store through `con` (no transaction open: each batch is one)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, spec: ImportSpec) -> None:
        self.con, self.spec = con, spec
        for name, value in IMPORT_SETTINGS.items():
            con.execute(f"SET {name} = '{value}'")
        self.before = {name: _count(con, name) for name in WRITTEN}
        self._know()

    def _know(self) -> None:
        """The keys the store holds, in TEMP tables (empty for a new store)."""
        for table, key in KEYS.items():
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE import_known_{table} AS "
                             f"SELECT {key} FROM {table}")

    def add(self, batch: pa.Table) -> None:
        """Write one batch (BATCH_COLUMNS, later batches after earlier ones) in one transaction."""
        try:
            self._write(batch)
        except duckdb.ConstraintException:  # a key another writer added since `_know`
            self._know()
            self._write(batch)

    def _write(self, batch: pa.Table) -> None:
        con, spec = self.con, self.spec
        model_version = f"imported:{spec.file_name}"
        con.register("incoming", batch.select(list(BATCH_COLUMNS)))
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(INSERT_PROMPTS, [spec.file_name])
            con.execute(INSERT_CANDIDATES, [model_version, spec.generation_key] * 2)
            con.execute(INSERT_PAIRS, [spec.generation_key])
            con.execute(INSERT_LABELS, [spec.source, spec.annotator, f"imported from {spec.file_name} "])
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("incoming")
        con.execute("COMMIT")

    def finish(self) -> dict[str, int]:
        """The rows added per table."""
        return {name: _count(self.con, name) - self.before[name] for name in WRITTEN}


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
