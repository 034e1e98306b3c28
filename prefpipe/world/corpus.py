"""The SFT corpus of the default world (demonstrations in mixed good and bad styles), and the
family-balanced prompt draws the stages make from a prompt table."""
from __future__ import annotations

import random
from dataclasses import dataclass

from prefpipe.world.prompts import WorldPrompt
from prefpipe.world.responses import render, sample_style


def sample_by_family(prompts: list[WorldPrompt], count: int, rng: random.Random) -> list[WorldPrompt]:
    """Draw `count` prompts with families equally likely (arithmetic would otherwise dominate)."""
    by_family: dict[str, list[WorldPrompt]] = {}
    for prompt in prompts:
        by_family.setdefault(prompt.family, []).append(prompt)
    families = sorted(by_family)
    return [rng.choice(by_family[rng.choice(families)]) for _ in range(count)]


@dataclass(frozen=True)
class PromptChoice:
    """The prompts a stage uses, against the count its params asked for."""
    prompts: list[WorldPrompt]
    requested: int  # the params' count
    available: int  # distinct prompts there were to draw from

    @property
    def distinct(self) -> int:
        return len({p.prompt_id for p in self.prompts})

    @property
    def capped(self) -> bool:
        """Fewer prompts than requested: there were not that many distinct ones."""
        return len(self.prompts) < self.requested

    def metrics(self) -> dict[str, int]:
        return {"prompts_requested": self.requested, "prompts": len(self.prompts),
                "distinct_prompts": self.distinct}


def choose_prompts(prompts: list[WorldPrompt], count: int, rng: random.Random,
                   repeats: bool) -> PromptChoice:
    """`count` prompts with families drawn equally often; the order follows `rng`.

    repeats=True (the embedded world: its small families repeat prompts by design, each draw's
    response sampled afresh): `sample_by_family`, draws with replacement, exactly `count`.
    repeats=False (your own prompts): without replacement, families balanced while they last; a
    count over the distinct prompts is capped there, each prompt used once."""
    seen: set[str] = set()
    pools: dict[str, list[WorldPrompt]] = {}  # family -> its distinct prompts (first row of an id)
    for prompt in prompts:
        if prompt.prompt_id not in seen:
            seen.add(prompt.prompt_id)
            pools.setdefault(prompt.family, []).append(prompt)
    available = len(seen)
    if repeats:
        return PromptChoice(sample_by_family(prompts, count, rng), count, available)
    for family in sorted(pools):
        rng.shuffle(pools[family])
    chosen = []
    for _ in range(min(count, available)):
        family = rng.choice(sorted(f for f, pool in pools.items() if pool))
        chosen.append(pools[family].pop())
    return PromptChoice(chosen, count, available)


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
