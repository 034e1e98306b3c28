"""Writing one imported preference file into the store a batch at a time (`store.imports.batched`).

The importer (`prefpipe.data.interchange`) parses a batch of rows, gives each its ids and hands it
over as an Arrow table of BATCH_COLUMNS, in file order. The rules are the ones `insert_new` applies
to a whole file: a row whose key the store holds is left as it is, and within the file the first
occurrence of a prompt, candidate, pair or label is the one written. A candidate's sample_index
counts its prompt's distinct responses in the file in order of first appearance (chosen before
rejected). What the file has seen so far (its candidates, pairs and prompt categories) is kept in
the connection's TEMP tables, ids only, so Python holds one batch at a time.

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
BATCH_COLUMNS = ("seq", "row_where", "prompt_id", "category", "prompt", "candidate_a", "chosen",
                 "tokens_a", "candidate_b", "rejected", "tokens_b", "pair_id", "label_id")
WRITTEN = ("prompts", "candidates", "pairs", "labels")

SEEN = """
CREATE TEMP TABLE import_prompts (prompt_id VARCHAR, category VARCHAR);
CREATE TEMP TABLE import_candidates (candidate_id VARCHAR, prompt_id VARCHAR);
CREATE TEMP TABLE import_pairs (pair_id VARCHAR, seq BIGINT);
"""
NEW_PROMPTS = """
INSERT INTO import_prompts
SELECT prompt_id, category FROM incoming
WHERE prompt_id NOT IN (SELECT prompt_id FROM import_prompts)
QUALIFY row_number() OVER (PARTITION BY prompt_id ORDER BY seq) = 1
"""
INSERT_PROMPTS = """
INSERT OR IGNORE INTO prompts (prompt_id, source, category, prompt, meta, split)
SELECT prompt_id, ?, category, prompt, NULL, 'train' FROM incoming
QUALIFY row_number() OVER (PARTITION BY prompt_id ORDER BY seq) = 1
"""
# The batch's candidates new to the file, numbered after those its prompt had in earlier batches
# (ids and places only: the text stays in `incoming`, at row pos // 2, chosen if pos is even).
NEW_CANDIDATES = """
CREATE OR REPLACE TEMP TABLE import_batch_candidates AS
WITH sides AS (
    SELECT candidate_a AS candidate_id, prompt_id, 2 * seq AS pos FROM incoming
    UNION ALL
    SELECT candidate_b, prompt_id, 2 * seq + 1 FROM incoming),
new AS (
    SELECT * FROM sides WHERE candidate_id NOT IN (SELECT candidate_id FROM import_candidates)
    QUALIFY row_number() OVER (PARTITION BY candidate_id ORDER BY pos) = 1),
earlier AS (
    SELECT prompt_id, count(*) AS n FROM import_candidates
    WHERE prompt_id IN (SELECT prompt_id FROM new) GROUP BY prompt_id)
SELECT new.*, coalesce(earlier.n, 0) + row_number() OVER (PARTITION BY new.prompt_id ORDER BY new.pos) - 1
       AS sample_index
FROM new LEFT JOIN earlier USING (prompt_id)
"""
INSERT_CANDIDATES = """
INSERT OR IGNORE INTO candidates (candidate_id, prompt_id, model_version, generation_key, sample_index,
                                  response, finished, num_tokens)
SELECT c.candidate_id, c.prompt_id, ?, ?, c.sample_index,
       CASE WHEN c.pos % 2 = 0 THEN i.chosen ELSE i.rejected END, true,
       CASE WHEN c.pos % 2 = 0 THEN i.tokens_a ELSE i.tokens_b END
FROM import_batch_candidates c JOIN incoming i ON i.seq = c.pos // 2
"""
NEW_PAIRS = """
CREATE OR REPLACE TEMP TABLE import_batch_pairs AS
SELECT seq, row_where, prompt_id, candidate_a, candidate_b, pair_id, label_id FROM incoming
WHERE pair_id NOT IN (SELECT pair_id FROM import_pairs)
QUALIFY row_number() OVER (PARTITION BY pair_id ORDER BY seq) = 1
"""
INSERT_PAIRS = """
INSERT OR IGNORE INTO pairs (pair_id, prompt_id, candidate_a, candidate_b, generation_key)
SELECT pair_id, prompt_id, candidate_a, candidate_b, ? FROM import_batch_pairs
"""
INSERT_LABELS = """
INSERT OR IGNORE INTO labels (label_id, pair_id, source, annotator, choice, confidence, rationale)
SELECT label_id, pair_id, ?, ?, 'a', 1.0, ? || row_where FROM import_batch_pairs
"""
# The label stage's preference rows of the batch's pairs new to the file (chosen = candidate a),
# each with its prompt's category as the file first gave it.
PREFERENCE_ROWS = """
SELECT b.pair_id, b.prompt_id, i.prompt, p.category, i.chosen, true AS chosen_finished,
       i.rejected, true AS rejected_finished, ? AS source, 1.0::DOUBLE AS confidence
FROM import_batch_pairs b JOIN incoming i USING (seq) JOIN import_prompts p ON p.prompt_id = b.prompt_id
ORDER BY b.seq
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
        con.execute(SEEN)

    def add(self, batch: pa.Table, preference_rows: bool = False) -> pa.Table | None:
        """Write one batch (BATCH_COLUMNS, later batches after earlier ones) in one transaction; with
        `preference_rows`, return the preference rows of the pairs new to the file, in file order."""
        con, spec = self.con, self.spec
        con.register("incoming", batch.select(list(BATCH_COLUMNS)))
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(NEW_PROMPTS)
            con.execute(INSERT_PROMPTS, [spec.file_name])
            con.execute(NEW_CANDIDATES)
            con.execute("INSERT INTO import_candidates SELECT candidate_id, prompt_id "
                        "FROM import_batch_candidates")
            con.execute(INSERT_CANDIDATES, [f"imported:{spec.file_name}", spec.generation_key])
            con.execute(NEW_PAIRS)
            con.execute("INSERT INTO import_pairs SELECT pair_id, seq FROM import_batch_pairs")
            con.execute(INSERT_PAIRS, [spec.generation_key])
            con.execute(INSERT_LABELS, [spec.source, spec.annotator, f"imported from {spec.file_name} "])
            rows = None
            if preference_rows:
                rows = con.sql(PREFERENCE_ROWS, params=[spec.source]).to_arrow_table()
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("incoming")
        con.execute("COMMIT")
        return rows

    def finish(self) -> tuple[dict[str, int], int, tuple[str, ...]]:
        """(rows added per table, the file's distinct pairs, their ids in file order)."""
        added = {name: _count(self.con, name) - self.before[name] for name in WRITTEN}
        pair_ids = self.con.sql("SELECT pair_id FROM import_pairs ORDER BY seq").to_arrow_table()
        return added, pair_ids.num_rows, tuple(pair_ids.column("pair_id").to_pylist())


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
