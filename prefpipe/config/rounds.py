"""Params of rounds (`rounds` section): when a scheduled run starts a round, which prompts and
preferences a round uses, and which models its policy starts from and is held to.

A round is one run of the flow; the `round` stage decides whether one is due (docs/architecture.md)."""
from __future__ import annotations

from dataclasses import dataclass

from prefpipe.config.knobs import knob
from prefpipe.vocab import RoundData, RoundModel, literal

RoundDataName = literal(RoundData)
RoundModelName = literal(RoundModel)


@dataclass(frozen=True)
class RoundsParams:
    iterations: int = knob(1, "rounds the pipeline runs on the same prompts before a scheduled run is a "
                              "no-op (new prompts or new human labels always start a round)")
    replay_share: float = knob(0.0, "share of a round's prompts drawn from prompts earlier rounds "
                                    "already used, when there are new prompts")
    data: RoundDataName = knob(RoundData.LATEST.value, "preferences the policy trains on: all (every "
                               "round's), latest (this round's), window (the last `window` rounds'); "
                               "the reward model always trains on all")
    window: int = knob(2, "rounds in the window when data is window")
    init: RoundModelName = knob(RoundModel.PREVIOUS.value, "the policy a round starts training from: sft, "
                                "or previous (the generator: the last published version)")
    reference: RoundModelName = knob(RoundModel.PREVIOUS.value, "the frozen reference of DPO/PPO/GRPO and of "
                                     "the KL penalty: sft, or previous (iterative DPO)")

    def validate(self) -> str | None:
        if self.iterations < 1:
            return f"iterations: must be an integer >= 1, got {self.iterations}"
        if not 0.0 <= self.replay_share < 1.0:
            return f"replay_share: must be in [0, 1), got {self.replay_share}"
        if self.window < 1:
            return f"window: must be an integer >= 1, got {self.window}"
        return None
