"""The accelerate side of every training loop: processes, sharding, backward, reductions.

Each process sees the same global batch (indices are a pure function of seed and step) and takes
its contiguous share. Losses are scaled so that DDP's gradient average over processes equals the
gradient of the global-batch mean: 2 processes give the same update as 1 process with the same
global batch.
"""
from __future__ import annotations

import torch
from accelerate import Accelerator


class Runtime:
    def __init__(self):
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available())

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def world_size(self) -> int:
        return self.accelerator.num_processes

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def shard(self, items: list) -> list:
        """This process's contiguous share of a global batch (shares differ by at most one item)."""
        base, extra = divmod(len(items), self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return items[start: start + base + (self.rank < extra)]

    def global_scale(self, global_count: float) -> float:
        """Multiply a local *sum* by this to get a loss whose DDP-averaged gradient is the global mean."""
        return self.world_size / max(global_count, 1)

    def prepare(self, model, optimizer):
        return self.accelerator.prepare(model, optimizer)

    def unwrap(self, model):
        return self.accelerator.unwrap_model(model)

    def step(self, model, optimizer, scheduler, loss: torch.Tensor, max_grad_norm: float) -> float:
        optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        grad_norm = self.accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        scheduler.step()
        return float(grad_norm)

    def mean(self, value: float) -> float:
        """Mean of a scalar over processes (for logging)."""
        if self.world_size == 1:
            return float(value)
        tensor = torch.tensor([float(value)], device=self.device)
        return self.accelerator.reduce(tensor, reduction="mean").item()

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Concatenation of every process's `tensor` (in rank order); itself with one process."""
        return tensor if self.world_size == 1 else self.accelerator.gather(tensor)

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()
