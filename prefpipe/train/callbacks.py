"""Per-step callbacks: watch a training loop (metrics, timing) or end it early, without subclassing.

A callback is any `Callable[[StepInfo], bool | None]`. The loop calls every callback after each
optimizer step, once the step's history row and checkpoint are written; returning True (or raising
`StopTraining`) ends training after that step, as a finished run (its checkpoint is removed, the
history so far is returned). Every callback still sees the step on which a stop was asked.

Under several processes the loop calls the callbacks on every process (`StepInfo.is_main` tells
the main one, e.g. to log once); the run stops when any process asks, so processes never part.

    def stop_when_accurate(info: StepInfo) -> bool:
        return info.metrics.get("accuracy", 0.0) > 0.95

    train_reward_model(..., context=TrainContext(callbacks=[stop_when_accurate]))
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


class StopTraining(Exception):  # noqa: N818 (a signal, not an error)
    """Raise from a callback to end training after the current step (same as returning True)."""


@dataclass(frozen=True)
class StepInfo:
    """What a callback learns after one optimizer step."""

    trainer: str               # the loop's name, e.g. "sft", "train_reward", "train_policy (dpo, ...)"
    step: int                  # 0-based index of the step just taken
    total_steps: int           # steps the run would take without an early stop
    metrics: dict[str, float]  # a copy of the step's history row: step, the loss stats, lr, grad_norm
    seconds: float             # wall time of this step (forward, backward, optimizer, checkpoint)
    model: Any                 # the model being trained, unwrapped from DDP
    is_main: bool              # the main process (the one that logs and saves)


StepCallback = Callable[[StepInfo], "bool | None"]


def notify(callbacks: Sequence[StepCallback], info: StepInfo) -> bool:
    """Call every callback with `info`; True when any of them asks to stop."""
    stop = False
    for callback in callbacks:
        try:
            stop = bool(callback(info)) or stop
        except StopTraining:
            stop = True
    return stop
