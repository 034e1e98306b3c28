"""Parquet snapshots written part by part (`parquet_parts`): the file appears whole when the block
ends, each part cast to the schema; a block that raises leaves the file as it was. Read back whole
(`read_parquet`) or a record batch at a time (`parquet_batches`); a missing file names the stage to run."""
from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefpipe.store import parquet_batches, parquet_parts, read_parquet, write_parquet

SCHEMA = pa.schema([("name", pa.string()), ("round", pa.int64())])


def test_parts_make_one_file_of_the_schema(tmp_path):
    path = tmp_path / "sub" / "snap.parquet"
    with parquet_parts(path, SCHEMA) as write:
        write(pa.table({"round": [1, 2], "name": ["a", "b"]}))  # columns in another order
        assert not path.exists()  # not before the block ends
        write(pa.table({"name": ["c"], "round": pa.nulls(1, pa.int32())}))  # cast to int64
        write(pa.table({"name": pa.array([], pa.string()), "round": pa.array([], pa.int64())}))
    table = read_parquet(path)
    assert table.schema == SCHEMA and table.to_pylist() == [
        {"name": "a", "round": 1}, {"name": "b", "round": 2}, {"name": "c", "round": None}]
    assert pq.ParquetFile(path).metadata.num_row_groups == 2  # the empty part added none


def test_nothing_written_leaves_an_empty_table_of_the_schema(tmp_path):
    with parquet_parts(tmp_path / "empty.parquet", SCHEMA):
        pass
    assert read_parquet(tmp_path / "empty.parquet").schema == SCHEMA


def test_a_block_that_raises_leaves_the_old_file(tmp_path):
    path = tmp_path / "snap.parquet"
    write_parquet(pa.table({"name": ["old"], "round": [0]}), path)
    with pytest.raises(RuntimeError):
        with parquet_parts(path, SCHEMA) as write:
            write(pa.table({"name": ["new"], "round": [1]}))
            raise RuntimeError("the import failed")
    assert read_parquet(path).to_pylist() == [{"name": "old", "round": 0}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap.parquet"]


def test_batches_of_the_columns_asked_and_a_missing_file_at_the_call(tmp_path):
    path = tmp_path / "snap.parquet"
    names = [f"n{i}" for i in range(10)]
    write_parquet(pa.table({"name": names, "round": list(range(10))}), path)
    batches = list(parquet_batches(path, ["round"], batch_rows=4))
    assert [batch.num_rows for batch in batches] == [4, 4, 2]
    assert all(batch.schema.names == ["round"] for batch in batches)
    assert [v for batch in batches for v in batch.column("round").to_pylist()] == list(range(10))
    assert pa.Table.from_batches(parquet_batches(path)).equals(read_parquet(path))  # every column
    missing = tmp_path / "nothing.parquet"
    for read in (read_parquet, parquet_batches):  # raised by the call itself, not a first next()
        with pytest.raises(FileNotFoundError, match=r"nothing\.parquet: missing; run the stage that "
                                                    r"writes it first$"):
            read(missing)


def test_batches_hold_one_row_group_not_the_file_read_so_far(tmp_path):
    """Arrow memory while streaming 20 row groups of ~1 MiB stays near one row group's (pyarrow's
    pre-buffering kept every row group read until the iterator ended: ~20 MiB here)."""
    path = tmp_path / "big.parquet"
    with pq.ParquetWriter(path, SCHEMA) as writer:
        for group in range(20):  # random hex: ~1 MiB a row group, however it is compressed
            names = [os.urandom(128).hex() for _ in range(4096)]
            writer.write_table(pa.table({"name": names, "round": [group] * 4096}))
    before = pa.total_allocated_bytes()
    held = max(pa.total_allocated_bytes() - before for _ in parquet_batches(path, batch_rows=1024))
    assert held < 4 * 2**20, f"{held / 2**20:.1f} MiB held while streaming"
