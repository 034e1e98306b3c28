"""A persistent answer cache for model judges (prefpipe.label.critic.http_judge): sqlite3, keyed by
the sha256 of the endpoint and the request content. It lives in the store, which owns every SQL
statement. Keys made before the endpoint was part of them simply miss (the file stays usable).

One short connection per call, so threads and processes can share the file (sqlite locks it; WAL
lets readers run beside a writer). Only request content goes into the key, never credentials."""
from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from prefpipe.errors import StoreError

BUSY_TIMEOUT_S = 30.0
CHUNK = 500  # keys per SELECT ... IN (...)


def cache_key(endpoint: str, model: str, messages: list[dict], params: dict) -> str:
    """sha256 over (endpoint, model, messages, params) in a canonical JSON form: another server,
    model, prompt or sampling knob is another answer."""
    blob = json.dumps({"endpoint": endpoint, "model": model, "messages": messages, "params": params},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class AnswerCache:
    """key -> stored answer text, in the sqlite file at `path` (created with its folder)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path}: not a usable judge cache ({err}); delete it or point "
                               "critic.http.cache_path elsewhere") from err
        finally:
            db.close()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        db.execute("PRAGMA synchronous=NORMAL")  # with WAL a commit survives a process crash, no fsync
        return db

    def get_many(self, keys: list[str]) -> dict[str, str]:
        """The stored answers among `keys`, read over one connection."""
        unique, found = list(dict.fromkeys(keys)), {}
        db = self._connect()
        try:
            for start in range(0, len(unique), CHUNK):
                chunk = unique[start:start + CHUNK]
                marks = ",".join("?" * len(chunk))
                found.update(db.execute(f"SELECT key, value FROM answers WHERE key IN ({marks})", chunk))
        finally:
            db.close()
        return found

    def put(self, key: str, value: str) -> None:
        db = self._connect()
        try:
            with db:
                db.execute("INSERT OR REPLACE INTO answers (key, value) VALUES (?, ?)", (key, value))
        finally:
            db.close()
