"""Byte-stable Parquet snapshots: the files DVC versions."""
from __future__ import annotations

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


def read_parquet(path: str | Path) -> pa.Table:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; run the stage that writes it first")
    return pq.read_table(path)


def rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()
