"""DuckDB preference store and Parquet snapshots."""
from prefpipe.store.db import Store, StoreLocked
from prefpipe.store.snapshot import parquet_batches, parquet_parts, read_parquet, rows, write_parquet

__all__ = ["Store", "StoreLocked", "parquet_batches", "parquet_parts", "read_parquet", "rows",
           "write_parquet"]
