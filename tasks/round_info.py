"""data/round/round.json: the round this workspace's outputs belong to, written by the round stage
(tasks/round.py) and read by the stages after it."""
from __future__ import annotations

import json

from tasks import paths


def read_round_info() -> dict:
    """{round, generator_version, generator_hash, seed, reason}."""
    if not paths.ROUND_INFO.exists():
        raise FileNotFoundError(f"{paths.ROUND_INFO}: missing; run the round stage first")
    return json.loads(paths.ROUND_INFO.read_text())
