"""The accelerate side of every training loop: processes, sharding, backward, reductions.

Each process sees the same global batch (indices are a pure function of seed and step) and takes
its contiguous share.

The one DDP reduction rule, for every loss (SFT, reward model, DPO family, PPO, GRPO): a process
backpropagates

    loss_p = (Σ of its per-example losses) · W / G

where W is the number of processes and G the number of examples in the *global* batch, summed
over every process ("example" is whatever the loss averages over: a pair for the reward model
and DPO, a response token for SFT, PPO and GRPO). DDP averages gradients over the W processes, so
the update is the gradient of Σ_global / G, the mean over the global batch: N processes make the
same update as one process with the same global batch, and with one process loss_p is the plain
mean. Two ways in, one rule:
- `global_scale(G)`: the factor W / G for a local *sum*, when every process knows G up front
  (the supervised loop's batches: pairs, or tokens counted before the forward pass).
- `global_mean(local_mean, local_count)`: the same rule for a loss already averaged over its
  `local_count` examples (the RL losses are token means); G is summed over processes here.
A per-process mean (what GRPO and PPO did before) weights a process's tokens by 1/(its own count),
which differs from the global mean whenever processes hold different token counts.
"""
from __future__ import annotations

import torch
from accelerate import Accelerator


class Runtime:
    """This process's place in the run (rank, world size, device) and the collective operations."""

    def __init__(self) -> None:
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

    def global_mean(self, local_mean: torch.Tensor, local_count: torch.Tensor) -> torch.Tensor:
        """The reduction rule for a mean over `local_count` local examples: mean · count · W / G.

        G is `local_count` summed over processes. With one process the factor is count / count,
        exactly 1.0, so the loss keeps its value and gradient bit for bit."""
        count = local_count.detach().to(local_mean.dtype)
        return local_mean * (count * self.world_size / self.sum(count).clamp(min=1))

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Elementwise sum of `tensor` over processes; `tensor` itself with one process."""
        return tensor if self.world_size == 1 else self.accelerator.reduce(tensor, reduction="sum")

    def prepare(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer
                ) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        """The model wrapped for DDP (with several processes) and the optimizer, on the device."""
        return self.accelerator.prepare(model, optimizer)

    def unwrap(self, model: torch.nn.Module) -> torch.nn.Module:
        return self.accelerator.unwrap_model(model)

    def step(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             scheduler: torch.optim.lr_scheduler.LRScheduler, loss: torch.Tensor,
             max_grad_norm: float) -> float:
        """One optimizer step on `loss` (already scaled by the reduction rule); -> the grad norm."""
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
