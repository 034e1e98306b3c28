"""Route each pair to a labeler by its category, as params.label.routing says."""
from __future__ import annotations

from collections.abc import Iterable

from prefpipe.label.simulated import simulated_label
from prefpipe.label.types import Label, PairToLabel
from prefpipe.label.verifiers import verifier_label
from prefpipe.world.prompts import WorldPrompt


def labeler_for(category: str, routing: dict[str, str]) -> str:
    return routing.get(category, routing["default"])


def label_pairs(pairs: Iterable[PairToLabel], prompts: dict[str, WorldPrompt], label_params,
                seed: int) -> list[Label]:
    """One label per pair; a verifier that cannot separate the pair hands it to the annotators."""
    labels = []
    for n, pair in enumerate(pairs):
        prompt = prompts[pair.prompt_id]
        label = None
        if labeler_for(pair.category, label_params.routing) == "verifier":
            label = verifier_label(pair, prompt)
        if label is None:
            annotator = f"sim-{n % label_params.annotators + 1}"
            label = simulated_label(pair, prompt, annotator, label_params.noise,
                                    label_params.temperature, seed, label_params.length_bias)
        labels.append(label)
    return labels
