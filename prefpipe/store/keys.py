"""Primary keys of store rows that several writers create (the label stage, the app, imports)."""
from __future__ import annotations

import hashlib


def label_id(pair_id: str, source: str, annotator: str) -> str:
    """The labels table's primary key: one label per (pair, source, annotator), so relabelling
    replaces and a repeated submit or import adds nothing."""
    return hashlib.sha256(f"{pair_id}:{source}:{annotator}".encode()).hexdigest()[:16]
