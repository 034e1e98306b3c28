"""Head to head on gold: two models (e.g. two published versions) answer the same held-out prompts.

Each side answers every prompt once, sampled with the same settings and the same seed (so two copies
of one model give identical answers and a win rate of exactly 0.5); gold judges each prompt's two
answers (`world.gold.prefer`: 1 first better, 0.5 tie, 0 second better) and the win rate of the first
with its 95% interval is `stats.win_rate` over those outcomes: the same machinery, through
`compare.gold_report`, as evaluation's policy-vs-SFT gold win rate."""
from __future__ import annotations

from collections.abc import Callable

from prefpipe.evaluate.compare import gold_report
from prefpipe.models.generation import sample_responses
from prefpipe.world.prompts import WorldPrompt

# prompt texts -> one (response, finished) per prompt, in order
Responder = Callable[[list[str]], list[tuple[str, bool]]]
SIDE_NAMES = {"policy": "first", "reference": "second"}  # gold_report's sides, named for a duel


def sampled_responder(model, tokenizer, sampling, seed: int, max_length: int | None = None) -> Responder:
    """`model` answering each prompt once (`models.generation.sample_responses` with `sampling`,
    `seed`): give both sides the same sampling and seed, as evaluation does to policy and SFT."""
    def respond(prompts: list[str]) -> list[tuple[str, bool]]:
        samples = sample_responses(model, tokenizer, prompts, 1, sampling, seed, max_length=max_length)
        return [(s.response, s.finished) for s in samples]
    return respond


def gold_head_to_head(prompts: list[WorldPrompt], first: Responder, second: Responder) -> dict:
    """Gold win rate of `first` over `second` on `prompts` (embedded-world prompts carrying gold facts).

    Returns `win_rate`, `win_rate_low`, `win_rate_high` (95%), `wins`, `ties`, `losses` (of the
    first), `prompts`, and each side's share of well-formed and correct answers and mean flaws
    (`first_correct`, `second_flaws`, ...)."""
    texts = [p.prompt for p in prompts]
    report, _ = gold_report(prompts, first(texts), second(texts))
    renamed = {}
    for key, value in report.items():
        side, _, rest = key.partition("_")
        renamed[f"{SIDE_NAMES[side]}_{rest}" if side in SIDE_NAMES else key] = value
    return {**renamed, "prompts": len(prompts)}
