"""The supervised training loop shared by SFT, reward-model and DPO training.

One loop gives every trainer the same behaviour: accelerate (each process takes its share of the
global batch), resumable checkpoints, progress, and a per-step history.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from prefpipe.progress import Progress
from prefpipe.train.checkpoint import Checkpointer
from prefpipe.train.common import epoch_batches, make_optimizer, total_batches
from prefpipe.train.distributed import Runtime

# loss_fn(model, local_indices, global_indices) -> (loss scaled for the global mean, stats)
LossFn = Callable[[torch.nn.Module, list[int], list[int]], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class TrainContext:
    """Where a loop runs and how it survives a kill; the default is one process, no checkpoints."""

    runtime: Runtime = field(default_factory=Runtime)
    checkpointer: Checkpointer = field(default_factory=lambda: Checkpointer(None, 0))
    precision: str = "fp32"


def supervised_loop(name: str, model: torch.nn.Module, optim, n_items: int, seed: int,
                    context: TrainContext, loss_fn: LossFn, show: tuple[str, ...] = ("loss",)
                    ) -> list[dict]:
    """Run `optim.epochs` over `n_items` examples in place on `model`; returns the history."""
    runtime, checkpointer = context.runtime, context.checkpointer
    steps = total_batches(n_items, optim.batch_size, optim.epochs)
    optimizer, scheduler = make_optimizer(model, optim, steps)
    start, history = checkpointer.restore(model, optimizer, scheduler, {})
    trained, optimizer = runtime.prepare(model, optimizer)
    trained.train()
    with Progress(steps - start, name + (f" (resumed at step {start})" if start else ""), "step",
                  enabled=runtime.is_main) as progress:
        for step, idx in enumerate(epoch_batches(n_items, optim.batch_size, optim.epochs, seed)):
            if step < start:
                continue
            local = runtime.shard(idx)
            if local:
                loss, stats = loss_fn(trained, local, idx)
            else:  # a last batch smaller than the process count: join the gradient sync with zeros
                loss, stats = sum(p.sum() for p in trained.parameters() if p.requires_grad) * 0.0, {}
            grad_norm = runtime.step(trained, optimizer, scheduler, loss, optim.max_grad_norm)
            row = {"step": step, **{k: runtime.mean(v) for k, v in stats.items()},
                   "lr": scheduler.get_last_lr()[0], "grad_norm": grad_norm}
            history.append(row)
            checkpointer.step_done(step + 1, runtime.unwrap(trained), optimizer, scheduler, {}, history)
            progress.update(1, **{k: row[k] for k in show})
    checkpointer.finish()
    return history
