"""The verifier labeler: a pair whose two responses verify differently gets a 'verifier' label for
the better one; equal rewards leave the pair to the next labeler (`label.verifier.undecided`).

The rewards themselves (sympy for math answers, the sandbox for code) are `prefpipe.verify`'s."""
from __future__ import annotations

from collections.abc import Sequence

from prefpipe.label.types import Label, PairToLabel
from prefpipe.verify.sandbox import SandboxLimits, isolation
from prefpipe.verify.verifiers import checked_rewards
from prefpipe.world.prompts import WorldPrompt


class Verifier:
    """The label stage's verifier: sympy for math answers, the sandbox for code."""

    def __init__(self, limits: SandboxLimits, workers: int) -> None:
        self.limits, self.workers = limits, workers

    @property
    def sandbox(self) -> str:
        """How code is confined: "bubblewrap", or "rlimits+audit-hook" where bubblewrap does not work."""
        return isolation(self.limits)

    def rewards(self, items: Sequence[tuple[WorldPrompt, str, bool]]) -> list[float]:
        """Reward in [0, 1] per (prompt, response, finished); unfinished responses get 0."""
        return checked_rewards(items, self.limits, self.workers)

    def label(self, pairs: Sequence[PairToLabel], prompts: dict[str, WorldPrompt]) -> list[Label | None]:
        """Per pair, a 'verifier' Label for the better-verified response, or None on equal rewards."""
        items = []
        for pair in pairs:
            if pair.prompt_id not in prompts:
                raise KeyError(f"pair {pair.pair_id} names prompt {pair.prompt_id}, which is not among the "
                               "prompts given; rebuild the prompts table or drop the pair")
            prompt = prompts[pair.prompt_id]
            items += [(prompt, pair.response_a, pair.finished_a), (prompt, pair.response_b, pair.finished_b)]
        rewards = self.rewards(items)
        labels: list[Label | None] = []
        for n, pair in enumerate(pairs):
            reward_a, reward_b = rewards[2 * n], rewards[2 * n + 1]
            if reward_a == reward_b:
                labels.append(None)
                continue
            labels.append(Label(pair.pair_id, "verifier", f"verifier:{prompts[pair.prompt_id].family}",
                                "a" if reward_a > reward_b else "b", 1.0,
                                rationale=f"verified reward {reward_a:g} vs {reward_b:g}"))
        return labels
