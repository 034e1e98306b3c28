"""Fixtures of the annotation tests: a DuckDB store on a real file, and pairs to annotate."""
from __future__ import annotations

import pyarrow as pa
import pytest

from prefpipe.store import Store


def seed_pairs(store: Store, responses: list[tuple[str, str]], prompt: str = "What is 2 + 3?") -> list[str]:
    """One prompt per pair, two candidates each; returns the pair ids p0, p1, ..."""
    prompts, candidates, pairs = [], [], []
    for i, (a, b) in enumerate(responses):
        prompts.append({"prompt_id": f"q{i}", "source": "test", "category": "math",
                        "prompt": f"{prompt} (#{i})", "meta": None, "split": "train"})
        for side, text in (("a", a), ("b", b)):
            candidates.append({"candidate_id": f"c{i}{side}", "prompt_id": f"q{i}", "model_version": "m",
                               "generation_key": "g", "sample_index": 0 if side == "a" else 1,
                               "response": text, "finished": True, "num_tokens": len(text.split())})
        pairs.append({"pair_id": f"p{i}", "prompt_id": f"q{i}", "candidate_a": f"c{i}a",
                      "candidate_b": f"c{i}b", "generation_key": "g"})
    store.upsert("prompts", pa.Table.from_pylist(prompts))
    store.upsert("candidates", pa.Table.from_pylist(candidates))
    store.upsert("pairs", pa.Table.from_pylist(pairs))
    return [p["pair_id"] for p in pairs]


@pytest.fixture
def seed():
    """seed_pairs as a fixture (test modules here cannot import this conftest by name)."""
    return seed_pairs


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "store.duckdb", lock_timeout_s=20)
