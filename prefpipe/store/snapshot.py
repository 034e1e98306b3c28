"""Byte-stable Parquet snapshots: the files DVC versions."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def write_parquet(table: pa.Table, path: str | Path) -> Path:
    """Write atomically (temp file then rename) so a killed stage never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)
    return path


@contextlib.contextmanager
def parquet_parts(path: str | Path, schema: pa.Schema) -> Iterator[Callable[[pa.Table], None]]:
    """A function writing tables of `schema` to `path` one after another (a row group or more
    each: a big snapshot never held whole), atomically like `write_parquet`: the file appears when
    the block ends, and a block that raises leaves the old file, if any, as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    writer = pq.ParquetWriter(tmp, schema, compression="zstd")

    def write(table: pa.Table) -> None:
        if table.num_rows:
            writer.write_table(table.select(schema.names).cast(schema))

    try:
        yield write
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    tmp.replace(path)


def read_parquet(path: str | Path) -> pa.Table:
    return pq.read_table(_existing(path))


def parquet_batches(path: str | Path, columns: Sequence[str] | None = None,
                    batch_rows: int = 65_536) -> Iterator[pa.RecordBatch]:
    """The file's record batches of at most `batch_rows` rows (of `columns` only, if given), read
    one at a time as they are asked for; a missing file raises at the call, not at the first batch."""
    # pre_buffer=False: pre-buffering caches each row group's column chunks until the iterator is
    # done (pyarrow 26), so a streamed read's memory grew with the file (+14 MiB a 20K-row group)
    reader = pq.ParquetFile(_existing(path), pre_buffer=False)
    return reader.iter_batches(batch_size=batch_rows, columns=columns)


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; run the stage that writes it first")
    return path


def rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()
