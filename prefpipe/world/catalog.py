"""The prompt table as rows (what the prepare stage snapshots) and back to world prompts."""
from __future__ import annotations

import json

from prefpipe.seeds import SplitPurpose, split_position
from prefpipe.vocab import Reference
from prefpipe.world.prompts import EMBEDDED, WorldPrompt, all_prompts, prompt_id, split_prompts


def world_prompt_rows(max_operand: int, heldout_fraction: float, seed: int) -> list[dict]:
    prompts = all_prompts(max_operand)
    split = split_prompts(prompts, heldout_fraction, seed)
    return [{"prompt_id": p.prompt_id, "source": EMBEDDED, "category": p.family,
             "prompt": p.prompt, "meta": p.meta_json, "split": split[p.prompt_id]}
            for p in prompts]


def user_prompt_rows(rows: list[dict], source: str, heldout_fraction: float, seed: int) -> list[dict]:
    """Rows of the user's prompts with ids and a stable split by hash. No gold: `meta` holds only the
    reference answer or tests a row gives (`prompts_io`), as {"answer": ...} / {"tests": [...]}, else None."""
    out = []
    for row in rows:
        pid = prompt_id(row["prompt"])
        bucket = split_position(seed, SplitPurpose.HELDOUT, pid)
        out.append({"prompt_id": pid, "source": source, "category": row["category"],
                    "prompt": row["prompt"], "meta": _reference_json(row),
                    "split": "heldout" if bucket < heldout_fraction else "train"})
    return out


def _reference_json(row: dict) -> str | None:
    reference = {key: row[key] for key in Reference.values() if key in row}
    return json.dumps(reference, sort_keys=True) if reference else None


def to_world_prompt(row: dict) -> WorldPrompt | None:
    """The world prompt behind a prompt row, with its gold facts; None for users' prompts (they
    carry no gold, even those with a reference answer or tests: see `to_checked_prompt`)."""
    if not row.get("meta") or row.get("source", EMBEDDED) != EMBEDDED:
        return None
    return WorldPrompt(row["prompt_id"], row["category"], row["prompt"], json.loads(row["meta"]))


def to_checked_prompt(row: dict) -> WorldPrompt | None:
    """The prompt as the verifier sees it: the world prompt, or a user's prompt with the reference
    answer or tests its row carries (its `source` is then the user's file); None with nothing to check."""
    if not row.get("meta"):
        return None
    return WorldPrompt(row["prompt_id"], row["category"], row["prompt"], json.loads(row["meta"]),
                       row.get("source", EMBEDDED))
