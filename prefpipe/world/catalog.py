"""The prompt table as rows (what the prepare stage snapshots) and back to world prompts."""
from __future__ import annotations

import hashlib
import json

from prefpipe.world.prompts import WorldPrompt, all_prompts, prompt_id, split_prompts


def world_prompt_rows(max_operand: int, heldout_fraction: float, seed: int) -> list[dict]:
    prompts = all_prompts(max_operand)
    split = split_prompts(prompts, heldout_fraction, seed)
    return [{"prompt_id": p.prompt_id, "source": "embedded", "category": p.family,
             "prompt": p.prompt, "meta": p.meta_json, "split": split[p.prompt_id]}
            for p in prompts]


def user_prompt_rows(rows: list[dict], source: str, heldout_fraction: float, seed: int) -> list[dict]:
    """Rows of the user's prompts with ids and a stable split by hash (no meta: no gold)."""
    out = []
    for row in rows:
        pid = prompt_id(row["prompt"])
        bucket = int(hashlib.sha256(f"{seed}:{pid}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        out.append({"prompt_id": pid, "source": source, "category": row["category"],
                    "prompt": row["prompt"], "meta": None,
                    "split": "heldout" if bucket < heldout_fraction else "train"})
    return out


def to_world_prompt(row: dict) -> WorldPrompt | None:
    """The world prompt behind a prompt row, or None for users' prompts (they carry no gold)."""
    if not row.get("meta"):
        return None
    return WorldPrompt(row["prompt_id"], row["category"], row["prompt"], json.loads(row["meta"]))
