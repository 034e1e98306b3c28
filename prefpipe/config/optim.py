"""Typed params of the trainers' optimizer, schedule and data order (`*.optim` sections)."""
from __future__ import annotations

from dataclasses import dataclass

from prefpipe.config.knobs import knob
from prefpipe.vocab import LRSchedule, OptimizerName, literal

OptimizerNameLit = literal(OptimizerName)
LRScheduleName = literal(LRSchedule)


def _optimizer_problem(optim: RLOptimParams) -> str | None:
    """The checks OptimParams and RLOptimParams share: the optimizer and its schedule."""
    if optim.lr <= 0:
        return f"lr must be > 0, got {optim.lr}"
    if optim.fused is not None and optim.optimizer != OptimizerName.ADAMW:
        return f"fused applies to optimizer adamw only (optimizer is '{optim.optimizer}'); set it to null"
    if optim.momentum and optim.optimizer != OptimizerName.SGD:
        return f"momentum applies to optimizer sgd only (optimizer is '{optim.optimizer}'); set it to 0"
    if optim.momentum < 0:
        return f"momentum must be >= 0, got {optim.momentum}"
    if not 0.0 <= optim.min_lr_ratio <= 1.0:
        return f"min_lr_ratio must be in [0, 1], got {optim.min_lr_ratio}"
    return None


@dataclass(frozen=True)
class RLOptimParams:
    """The optimizer and its schedule: PPO's and GRPO's `optim` (their data order is the RL loop's)."""
    lr: float = knob(1e-4, "peak learning rate: linear warmup to it, then `schedule`")
    warmup_steps: int = knob(5, "linear warmup (optimizer steps; capped at half the run, at least 1)")
    schedule: LRScheduleName = knob(LRSchedule.COSINE.value, "after the warmup: cosine or linear decay "
                                                             "to min_lr_ratio x lr, or constant")
    min_lr_ratio: float = knob(0.1, "where the decaying schedules end, as a share of lr")
    optimizer: OptimizerNameLit = knob(OptimizerName.ADAMW.value, "adamw (torch.optim.AdamW) or sgd")
    fused: bool | None = knob(None, "AdamW's fused kernel: null = torch's default (the argument is "
                                    "not passed), true = use it (CUDA, CPU in recent torch), false = not")
    momentum: float = knob(0.0, "SGD momentum (optimizer sgd only)")
    weight_decay: float = knob(0.0, "weight decay (AdamW: decoupled; SGD: L2)")
    max_grad_norm: float = knob(1.0, "gradient clipping norm")

    def validate(self) -> str | None:
        return _optimizer_problem(self)


@dataclass(frozen=True)
class OptimParams(RLOptimParams):
    """The supervised trainers' `optim` (SFT, reward model, DPO): the optimizer plus the data order."""
    lr: float = knob(1e-3, "peak learning rate: linear warmup to it, then `schedule`")
    warmup_steps: int = knob(20, "linear warmup steps (capped at half the run, at least 1)")
    epochs: float = knob(1.0, "passes over the training data (fractions allowed)")
    batch_size: int = knob(32, "examples (or pairs) per optimizer step")
    shuffle: bool = knob(True, "reshuffle the examples each epoch (seeded by `seed`); false = in the "
                               "order given, 0..n-1 every epoch")

    def validate(self) -> str | None:
        if self.epochs <= 0:
            return f"epochs must be > 0, got {self.epochs}"
        if self.batch_size < 1:
            return f"batch_size must be >= 1, got {self.batch_size}"
        return _optimizer_problem(self)
