"""The supervised training loop shared by SFT, reward-model and DPO training.

One loop gives every trainer the same behaviour: accelerate (each process takes its share of the
global batch), resumable checkpoints, progress, a per-step history, and per-step callbacks
(`prefpipe.train.callbacks`: metrics, timing, early stop) for whoever runs it as a library.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from prefpipe.config.optim import OptimParams
from prefpipe.progress import Progress
from prefpipe.train.callbacks import StepCallback, StepInfo, notify
from prefpipe.train.checkpoint import Checkpointer
from prefpipe.train.common import epoch_batches, make_optimizer, total_batches
from prefpipe.train.distributed import Runtime
from prefpipe.train.precision import attention_for, resolve_precision

# loss_fn(model, local_indices, global_indices) -> (loss scaled for the global mean, stats); a stat
# may be a 0-d tensor: the loop reads it after the optimizer step, so the step has no host sync
LossFn = Callable[[torch.nn.Module, list[int], list[int]],
                  tuple[torch.Tensor, dict[str, float | torch.Tensor]]]


@dataclass
class TrainContext:
    """Where a loop runs, how it survives a kill and who watches it; the default is one process,
    no checkpoints, no callbacks."""

    runtime: Runtime = field(default_factory=Runtime)
    checkpointer: Checkpointer = field(default_factory=lambda: Checkpointer(None, 0))
    precision: str = "fp32"  # fp32 | bf16 | auto (resolved here for the runtime's device)
    callbacks: Sequence[StepCallback] = ()
    length_groups: int = 1  # a batch's rows as this many length-sorted parts (common.rows_by_length)

    def __post_init__(self) -> None:
        self.precision = resolve_precision(self.precision, self.runtime.device.type)


def supervised_loop(name: str, model: torch.nn.Module, optim: OptimParams, n_items: int, seed: int,
                    context: TrainContext, loss_fn: LossFn, show: tuple[str, ...] = ("loss",)
                    ) -> list[dict]:
    """Run `optim.epochs` over `n_items` examples in place on `model`; returns the history.

    After each step the progress bar and then `context.callbacks` see it (`StepInfo`); a callback
    returning True or raising StopTraining ends the run after that step."""
    runtime, checkpointer = context.runtime, context.checkpointer
    steps = total_batches(n_items, optim.batch_size, optim.epochs)
    optimizer, scheduler = make_optimizer(model, optim, steps)
    start, history = checkpointer.restore(model, optimizer, scheduler, {})
    trained, optimizer = runtime.prepare(model, optimizer)
    trained.train()
    batches = epoch_batches(n_items, optim.batch_size, optim.epochs, seed, optim.shuffle)
    with (attention_for(model, context.precision, runtime.device.type),
          Progress(steps - start, name + (f" (resumed at step {start})" if start else ""), "step",
                   enabled=runtime.is_main) as progress):
        def show_progress(info: StepInfo) -> None:
            progress.update(1, **{k: info.metrics[k] for k in show})

        callbacks = (show_progress, *context.callbacks)
        for step, idx in enumerate(batches):
            if step < start:
                continue
            began = time.perf_counter()
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
            info = StepInfo(name, step, steps, dict(row), time.perf_counter() - began,
                            runtime.unwrap(trained), runtime.is_main)
            stop = notify(callbacks, info)
            if context.callbacks and stop_requested(runtime, stop):  # no collective without them
                break
    checkpointer.finish()
    return history


def stop_requested(runtime: Runtime, stop: bool) -> bool:
    """True on every process when any process's callbacks asked to stop (one process: `stop`)."""
    return stop if runtime.world_size == 1 else runtime.mean(float(stop)) > 0.0
