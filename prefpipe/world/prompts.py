"""Every prompt of the default world, with the hidden facts the gold preference needs."""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass

from prefpipe.world.content import (
    ARITHMETIC_TEMPLATES,
    BENIGN_REQUESTS,
    CODE_NAMES,
    CODE_TASKS,
    CODE_TEMPLATES,
    EXPLAIN_TEMPLATES,
    EXPLAIN_TOPICS,
    HARMFUL_REQUESTS,
    REQUEST_TEMPLATES,
)

EMBEDDED = "embedded"  # the source of the default world's prompts (a user's: their file)


@dataclass(frozen=True)
class WorldPrompt:
    """A prompt with what checks it: the world's hidden facts, or (source not EMBEDDED) the
    reference answer or tests a user's prompt file gives (`catalog.to_checked_prompt`)."""
    prompt_id: str
    family: str
    prompt: str
    meta: dict
    source: str = EMBEDDED

    @property
    def meta_json(self) -> str:
        return json.dumps(self.meta, sort_keys=True)


def prompt_id(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _make(family: str, text: str, **meta) -> WorldPrompt:
    return WorldPrompt(prompt_id(text), family, text, meta)


def all_prompts(max_operand: int) -> list[WorldPrompt]:
    """All templated prompts, in a fixed order (thousands with the default max_operand)."""
    prompts = []
    for op, templates in ARITHMETIC_TEMPLATES.items():
        for a in range(max_operand + 1):
            for b in range(max_operand + 1):
                if op == "-" and b > a:
                    continue
                answer = a + b if op == "+" else a - b
                for template in templates:
                    prompts.append(_make("arithmetic", template.format(a=a, b=b), a=a, b=b, op=op,
                                         answer=answer))
    for topic in EXPLAIN_TOPICS:
        for template in EXPLAIN_TEMPLATES:
            prompts.append(_make("explain", template.format(q=topic), topic=topic))
    for desc, expr in CODE_TASKS.items():
        for name in CODE_NAMES:
            for template in CODE_TEMPLATES:
                prompts.append(_make("code", template.format(name=name, desc=desc), name=name,
                                     task=desc, expr=expr))
    for request in HARMFUL_REQUESTS:
        for template in REQUEST_TEMPLATES:
            prompts.append(_make("harmful", template.format(x=request), request=request))
    for request in BENIGN_REQUESTS:
        for template in REQUEST_TEMPLATES:
            prompts.append(_make("benign", template.format(x=request), request=request))
    return prompts


def split_prompts(prompts: list[WorldPrompt], heldout_fraction: float,
                  seed: int) -> dict[str, str]:
    """prompt_id -> 'train' | 'heldout', stratified by family so every family is evaluated."""
    rng = random.Random(seed)
    split = {}
    families = sorted({p.family for p in prompts})
    for family in families:
        ids = [p.prompt_id for p in prompts if p.family == family]
        rng.shuffle(ids)
        n_heldout = max(1, round(len(ids) * heldout_fraction))
        for i, pid in enumerate(ids):
            split[pid] = "heldout" if i < n_heldout else "train"
    return split
