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

Sharded data parallel (an FSDP2 or DeepSpeed ZeRO-3 accelerate config) follows the same rule: both
average gradients over the processes as DDP does. Each process then holds a shard of every
parameter, so whole weights come from `full_state_dict`, a collective every process must call.
On a CPU-only machine both run over gloo (`make_accelerator`).
"""
from __future__ import annotations

import os

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import (
    DistributedType,
    FullyShardedDataParallelPlugin,
    InitProcessGroupKwargs,
    parse_flag_from_env,
)
from accelerate.utils.deepspeed import DeepSpeedEngineWrapper

from prefpipe.errors import ConfigError


class Runtime:
    """This process's place in the run (rank, world size, device) and the collective operations."""

    def __init__(self) -> None:
        self.accelerator = make_accelerator()
        self.prepared: list[torch.nn.Module] = []  # what `prepare` returned, for full_state_dict

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
        """The model wrapped for DDP, FSDP or DeepSpeed (with several processes) and the optimizer."""
        if self.accelerator.distributed_type == DistributedType.DEEPSPEED:
            plugin = self.accelerator.state.deepspeed_plugin
            if plugin.is_auto("train_micro_batch_size_per_gpu"):
                # accelerate reads it off a prepared DataLoader; prefpipe batches by itself, and
                # DeepSpeed uses the value only for its own loader and throughput figures
                plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = 1
        prepared, optimizer = self.accelerator.prepare(model, optimizer)
        self.prepared.append(prepared)
        return prepared, optimizer

    def unwrap(self, model: torch.nn.Module) -> torch.nn.Module:
        return self.accelerator.unwrap_model(model)

    def step(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             scheduler: torch.optim.lr_scheduler.LRScheduler, loss: torch.Tensor,
             max_grad_norm: float) -> float:
        """One optimizer step on `loss` (already scaled by the reduction rule); -> the grad norm.

        Under DeepSpeed the backward pass also clips and steps (DeepSpeed's engine does both, with
        the config's gradient_clipping); `optimizer.step()` is then a no-op."""
        if self.accelerator.distributed_type == DistributedType.DEEPSPEED:
            self.use_deepspeed_engine(model, max_grad_norm)
        optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        grad_norm = self.clip_grad_norm(model, max_grad_norm)
        optimizer.step()
        scheduler.step()
        return grad_norm

    def use_deepspeed_engine(self, engine: torch.nn.Module, max_grad_norm: float) -> None:
        """Send the backward pass to `engine`, which must clip at `max_grad_norm`.

        accelerate sends every backward to the first engine it prepared: a second training in
        one process would step the first model. DeepSpeed clips inside its step with the
        config's value, so that value must be the loop's."""
        if self.accelerator.deepspeed_engine_wrapped.engine is not engine:
            self.accelerator.deepspeed_engine_wrapped = DeepSpeedEngineWrapper(engine)
        configured = engine.gradient_clipping()
        if abs(configured - max_grad_norm) > 1e-12:
            raise ConfigError(f"runtime.accelerate_config: deepspeed_config.gradient_clipping is "
                              f"{configured}, the optim max_grad_norm is {max_grad_norm}: set them equal")

    def clip_grad_norm(self, model: torch.nn.Module, max_norm: float) -> float:
        """Clip the gradients of `model` to `max_norm` over the whole model; -> the norm before.

        Under FSDP2 each gradient is a shard (a DTensor) and torch's clip reduces the norm over
        processes. accelerate's own clip under FSDP looks the model up among every model it
        prepared by comparing parameter lists, which fails once two same-sized models were
        prepared in one process (a training after another)."""
        if not self.accelerator.is_fsdp2:  # DeepSpeed: the norm its step measured
            return float(self.accelerator.clip_grad_norm_(model.parameters(), max_norm))
        self.accelerator.unscale_gradients()
        norm = torch.nn.utils.clip_grad_norm_(list(model.parameters()), max_norm)
        return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)

    def full_state_dict(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """Whole weights of `model` (as given to `prepare`, or what it returned) on the main
        process, on the CPU; {} on the others.

        A collective when sharded: every process must call it, or the main process waits forever.
        ZeRO-3 needs `zero3_save_16bit_model: true` in the accelerate config (it gathers the
        weights in their training dtype: fp32 weights stay fp32)."""
        model = next((p for p in self.prepared if p is model or self.unwrap(p) is model), model)
        state = self.accelerator.get_state_dict(model) or {}
        return {k: v.detach().cpu() for k, v in state.items()} if self.is_main else {}

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


def make_accelerator() -> Accelerator:
    """The Accelerator for this process: GPUs when there are any, else the CPU over gloo.

    A DeepSpeed launch on a CPU-only machine needs `cpu=False` (accelerate skips DeepSpeed for
    cpu=True and silently runs plain data parallel) and an explicit backend: without a GPU
    accelerate finds none and would take the run for one process. DeepSpeed's CPU accelerator
    then takes the tensors."""
    on_cpu = not torch.cuda.is_available()
    if on_cpu and parse_flag_from_env("ACCELERATE_USE_DEEPSPEED") and "LOCAL_RANK" in os.environ:
        accelerator = Accelerator(kwargs_handlers=[InitProcessGroupKwargs(backend="gloo")])
    else:
        accelerator = Accelerator(cpu=on_cpu)
        shard_on_cpu(accelerator)
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        load_whole_models(accelerator)
    return accelerator


def load_whole_models(accelerator: Accelerator) -> None:
    """With zero3_init_flag false, `from_pretrained` builds whole models, as the flag promises.

    accelerate registers its ZeRO-3 config with transformers whatever the flag says, and
    transformers then partitions every model it loads. A stage also loads frozen models (the
    DPO reference, the reward model that scores PPO rollouts) that no DeepSpeed engine runs: a
    partitioned one has empty weights outside an engine. The trained model is partitioned when
    `prepare` hands it to DeepSpeed."""
    if not accelerator.state.deepspeed_plugin.zero3_init_flag:
        from transformers.integrations import unset_hf_deepspeed_config

        unset_hf_deepspeed_config()


def shard_on_cpu(accelerator: Accelerator) -> None:
    """Run an FSDP2 launch on a CPU-only machine as FSDP2 over gloo, not silently as DDP.

    accelerate turns a GPU-type distributed launch into FSDP when its config asks for it, but a
    CPU launch stays plain data parallel (MULTI_CPU) while `accelerate launch` still says FSDP.
    torch's FSDP2 (`fully_shard`) runs on CPU tensors over gloo, so the state is promoted here the
    way accelerate promotes a GPU one: the same plugin, read from the launcher's FSDP_* variables."""
    state = accelerator.state
    if state.distributed_type != DistributedType.MULTI_CPU or not parse_flag_from_env("ACCELERATE_USE_FSDP"):
        return
    plugin = FullyShardedDataParallelPlugin()
    if plugin.fsdp_version != 2:
        raise ConfigError(f"runtime.accelerate_config: fsdp_config.fsdp_version {plugin.fsdp_version} "
                          "needs GPUs; on a CPU-only machine use fsdp_version: 2")
    if state.mixed_precision != "no":
        plugin.set_mixed_precision(state.mixed_precision)
    state.fsdp_plugin = plugin
    state.distributed_type = DistributedType.FSDP
    PartialState().distributed_type = DistributedType.FSDP  # as accelerate records it: a later
    # AcceleratorState() copies the process state's type over its own
