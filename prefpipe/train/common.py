"""Pieces every training loop shares: seeding, batching, optimizer, schedule and dropout."""
from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterator, Sequence

import torch

from prefpipe.config.optim import OptimParams, RLOptimParams
from prefpipe.errors import ConfigError
from prefpipe.models.formatting import TokenBatch, collate
from prefpipe.seeds import SeedPurpose, derive_seed
from prefpipe.vocab import LRSchedule, OptimizerName

log = logging.getLogger("prefpipe")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def epoch_batches(n_items: int, batch_size: int, epochs: float, seed: int,
                  shuffle: bool = True) -> Iterator[list[int]]:
    """Index batches over `epochs` passes (fractions allowed), reshuffled per epoch by `seed`.

    With `shuffle=False` every epoch visits 0..n_items-1 in order (and `seed` is unused)."""
    if n_items < 1:
        raise ValueError("no training examples: nothing to batch")
    total_steps = total_batches(n_items, batch_size, epochs)
    step, epoch = 0, 0
    while step < total_steps:
        order = list(range(n_items))
        if shuffle:
            random.Random(derive_seed(seed, SeedPurpose.DATA_ORDER, epoch)).shuffle(order)
        for start in range(0, n_items, batch_size):
            if step >= total_steps:
                return
            yield order[start: start + batch_size]
            step += 1
        epoch += 1


def total_batches(n_items: int, batch_size: int, epochs: float) -> int:
    return max(1, math.ceil(math.ceil(n_items / batch_size) * epochs))


def make_optimizer(model: torch.nn.Module, optim: OptimParams | RLOptimParams, total_steps: int
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """The configured optimizer over the trainable parameters, and its warmup-then-decay schedule.

    The defaults (adamw, fused null, cosine to 10%) are exactly
    `AdamW(params, lr=lr, weight_decay=weight_decay)` with linear warmup then cosine decay to 10%
    of the peak learning rate."""
    trainable = [p for p in model.parameters() if p.requires_grad]  # LoRA: the adapters only
    optimizer = build_optimizer(trainable, optim)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(optim, total_steps))


def build_optimizer(parameters: list[torch.nn.Parameter], optim: OptimParams | RLOptimParams
                    ) -> torch.optim.Optimizer:
    """torch.optim.AdamW or SGD; arguments left at their defaults are not passed (torch's own)."""
    if optim.optimizer == OptimizerName.SGD:
        return torch.optim.SGD(parameters, lr=optim.lr, momentum=optim.momentum,
                               weight_decay=optim.weight_decay)
    extra = {} if optim.fused is None else {"fused": optim.fused}
    try:
        return torch.optim.AdamW(parameters, lr=optim.lr, weight_decay=optim.weight_decay, **extra)
    except RuntimeError as err:  # fused=True on a device or dtype without the fused kernel
        raise ConfigError(f"optim.fused: true is not available here ({err}); set it to null") from err


def lr_factor(optim: OptimParams | RLOptimParams, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the peak lr at each step: linear warmup (capped at half the run), then the
    schedule; the decaying ones end at `min_lr_ratio` and stay there."""
    warmup = max(1, min(optim.warmup_steps, total_steps // 2))
    floor = optim.min_lr_ratio

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if optim.schedule == LRSchedule.CONSTANT:
            return 1.0
        progress = min((step - warmup) / max(1, total_steps - warmup), 1.0)
        if optim.schedule == LRSchedule.LINEAR:
            return floor + (1 - floor) * (1.0 - progress)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def take(items: Sequence, indices: list[int]) -> list:
    return [items[i] for i in indices]


def length_groups(indices: list[int], lengths: Sequence[int], groups: int) -> list[list[int]]:
    """`indices` sorted by `lengths[i]` and cut into at most `groups` near-equal runs.

    Each run is collated to its own longest row, so a batch of mixed lengths computes less
    padding; ties keep the batch's order (a stable sort), so the cut is deterministic."""
    ordered = sorted(indices, key=lambda i: lengths[i])
    size = -(-len(ordered) // max(1, groups))
    return [ordered[start: start + size] for start in range(0, len(ordered), size)]


def rows_by_length(per_row: Callable[[TokenBatch], torch.Tensor], tokenizer, prompts: list[list[int]],
                   responses: list[list[int]], max_length: int, groups: int, device) -> torch.Tensor:
    """`per_row(batch)` -> (rows,) over the (prompt, response) rows, collated as `groups`
    length-sorted parts (`length_groups`); the values come back in the rows' order. -> (N,)

    One part (groups 1) is the plain batch, in order. More parts compute less padding; each row's
    value is the same up to float rounding, and autograd flows through the reordering."""
    if groups <= 1:
        return per_row(collate(tokenizer, prompts, responses, max_length).to(device))
    lengths = [min(len(p) + len(r), max_length) for p, r in zip(prompts, responses)]
    parts = length_groups(list(range(len(prompts))), lengths, groups)
    values = torch.cat([per_row(collate(tokenizer, take(prompts, part), take(responses, part),
                                        max_length).to(device)) for part in parts])
    order = torch.tensor([i for part in parts for i in part], device=values.device)
    return values[torch.argsort(order)]


def autocast(precision: str, device_type: str = "cpu"):
    """bf16 autocast when `precision` is 'bf16', a no-op context for 'fp32' (runtime.precision
    'auto' is resolved first: `TrainContext.precision`, `prefpipe.train.precision`)."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"autocast takes a resolved precision (fp32 | bf16), got {precision!r}")
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


def set_dropout(model: torch.nn.Module, p: float | None) -> None:
    """Set every `torch.nn.Dropout` of `model` (LoRA's included) to `p`; None leaves the model's own.

    The model's config is left as it is (what is saved stays the model's). Architectures whose
    attention reads a dropout float from the config at construction (e.g. Llama's
    attention_dropout) are not reached: pass the value when loading such a model."""
    if p is None:
        return
    modules = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    if not modules and p > 0:
        log.warning("dropout %.3g asked for, but the model has no torch.nn.Dropout modules", p)
    for module in modules:
        module.p = p


def disable_dropout(model: torch.nn.Module) -> None:
    """Dropout off: DPO's log-ratios must compare the policy and reference on equal terms."""
    set_dropout(model, 0.0)
