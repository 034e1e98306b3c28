"""Pieces every training loop shares: seeding, batching, optimizer and schedule."""
from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence

import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def epoch_batches(n_items: int, batch_size: int, epochs: float, seed: int) -> Iterator[list[int]]:
    """Index batches over `epochs` passes (fractions allowed), reshuffled per epoch by `seed`."""
    if n_items < 1:
        raise ValueError("no training examples: nothing to batch")
    total_steps = total_batches(n_items, batch_size, epochs)
    step, epoch = 0, 0
    while step < total_steps:
        order = list(range(n_items))
        random.Random(seed * 7919 + epoch).shuffle(order)
        for start in range(0, n_items, batch_size):
            if step >= total_steps:
                return
            yield order[start: start + batch_size]
            step += 1
        epoch += 1


def total_batches(n_items: int, batch_size: int, epochs: float) -> int:
    return max(1, math.ceil(math.ceil(n_items / batch_size) * epochs))


def make_optimizer(model: torch.nn.Module, optim, total_steps: int):
    """AdamW with linear warmup then cosine decay to 10% of the peak learning rate."""
    trainable = [p for p in model.parameters() if p.requires_grad]  # LoRA: the adapters only
    optimizer = torch.optim.AdamW(trainable, lr=optim.lr, weight_decay=optim.weight_decay)
    warmup = max(1, min(optim.warmup_steps, total_steps // 2))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def take(items: Sequence, indices: list[int]) -> list:
    return [items[i] for i in indices]


def autocast(precision: str, device_type: str = "cpu"):
    """bf16 autocast when params.runtime.precision is 'bf16', else a no-op context."""
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


def disable_dropout(model: torch.nn.Module) -> None:
    """Dropout off: DPO's log-ratios must compare the policy and reference on equal terms."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
