"""DuckDB preference store and Parquet snapshots."""
from prefpipe.store.db import Store, StoreLocked
from prefpipe.store.snapshot import read_parquet, rows, write_parquet

__all__ = ["Store", "StoreLocked", "read_parquet", "rows", "write_parquet"]
