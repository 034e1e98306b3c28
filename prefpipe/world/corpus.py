"""The SFT corpus of the default world: demonstrations in mixed good and bad styles."""
from __future__ import annotations

import random

from prefpipe.world.prompts import WorldPrompt
from prefpipe.world.responses import render, sample_style


def sample_by_family(prompts: list[WorldPrompt], count: int, rng: random.Random) -> list[WorldPrompt]:
    """Draw `count` prompts with families equally likely (arithmetic would otherwise dominate)."""
    by_family: dict[str, list[WorldPrompt]] = {}
    for prompt in prompts:
        by_family.setdefault(prompt.family, []).append(prompt)
    families = sorted(by_family)
    return [rng.choice(by_family[rng.choice(families)]) for _ in range(count)]


def sft_corpus(train_prompts: list[WorldPrompt], count: int, world_params,
               seed: int) -> list[dict]:
    """`count` (prompt, response) demonstrations whose styles follow the world's probabilities."""
    rng = random.Random(seed)
    rows = []
    for prompt in sample_by_family(train_prompts, count, rng):
        style = sample_style(prompt.family, world_params, rng)
        rows.append({"prompt_id": prompt.prompt_id, "prompt": prompt.prompt,
                     "response": render(prompt, style, rng)})
    return rows
