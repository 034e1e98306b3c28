"""The on-policy RL loop shared by PPO and GRPO, beside the supervised loop of `train/loop.py`.

Per iteration: draw the iteration's prompts (a pure function of seed and iteration, so a resumed
run draws the same), take this process's share, sample `samples_per_prompt` responses to each,
let the algorithm *score* the rollout (rewards, advantages, log-probs under the sampling policy
and the reference, all without gradients; the sampling pass has recorded the sampling policy's
log-probs already, so an algorithm without a critic needs no forward for them), then run `epochs`
passes of shuffled minibatches over the rows, each one optimizer step on the algorithm's
*minibatch loss*. A checkpoint after every iteration holds the model, optimizer, schedule, RNG and
the algorithm's `extras`.

An algorithm supplies only what differs (`RLAlgorithm`): how to score a rollout, the loss of a
minibatch, and the iteration's metrics. Losses are token means; the loop applies the one DDP
reduction rule (`Runtime.global_mean`, see `train/distributed.py`) so N processes make the
update of one process holding all N shares.
"""
from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from accelerate.utils import DistributedType

from prefpipe.errors import ConfigError
from prefpipe.models.generation import encode_prompts, warn_truncated
from prefpipe.progress import Progress
from prefpipe.seeds import SeedPurpose, derive_seed
from prefpipe.train.callbacks import StepInfo, notify
from prefpipe.train.common import disable_dropout, make_optimizer
from prefpipe.train.distributed import Runtime
from prefpipe.train.loop import TrainContext, stop_requested
from prefpipe.train.precision import attention_for
from prefpipe.train.rollout import (
    Rollout,
    draw_prompts,
    forward_tokens,
    minibatches,
    reference_token_logprobs,
    sample_rollout,
    uses_itself_as_reference,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger("prefpipe")


@dataclass
class RolloutInputs:
    """What an algorithm's `score` receives: the iteration's rollout and where it came from."""

    model: torch.nn.Module  # the policy (a PolicyWithValue), unwrapped from DDP
    reference: torch.nn.Module | None  # see rollout.reference_token_logprobs for None
    rollout: Rollout
    prompt_indices: list[int]  # rollout.prompt_index -> index into the loop's `prompts`
    runtime: Runtime
    precision: str

    @torch.no_grad()
    def behaviour_logprobs(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(log-probs (B, T-1), values (B, T-1) or None) of the sampling policy from one forward,
        then the reference's log-probs (B, T-1): the fixed quantities of PPO's updates."""
        self.model.eval()
        logprobs, values, _ = forward_tokens(self.model, self.rollout.batch, self.precision)
        return logprobs, values, self.reference_logprobs()

    @torch.no_grad()
    def old_logprobs(self) -> torch.Tensor:
        """(B, T-1) log-probs of the sampling policy: those its sampling pass recorded (the same
        model, dropout off, same precision), else from a forward."""
        if self.rollout.sampled_logprobs is not None:
            return self.rollout.sampled_logprobs
        self.model.eval()
        return forward_tokens(self.model, self.rollout.batch, self.precision)[0]

    @torch.no_grad()
    def reference_logprobs(self) -> torch.Tensor:
        """(B, T-1) log-probs under the reference (`rollout.reference_token_logprobs`)."""
        return reference_token_logprobs(self.model, self.reference, self.rollout.batch,
                                        self.precision)


class RLAlgorithm(ABC):
    """The algorithm-specific pieces of an on-policy RL run (see `ppo.PPO`, `grpo.GRPO`)."""

    name: str  # shown in the progress line: "train_policy (<name>)"
    iterations: int
    prompts_per_iteration: int  # global count, before sharding over processes
    samples_per_prompt: int
    epochs: int
    minibatch_size: int
    optim: object  # RLOptimParams
    sampling: object  # SamplingParams
    progress_keys: dict[str, str]  # progress label -> key of the iteration's row

    @property
    def extras(self) -> dict:
        """Stateful objects saved in (and restored from) the checkpoint beside the model."""
        return {}

    @abstractmethod
    def score(self, inputs: RolloutInputs) -> Any:
        """Score a rollout (rewards, advantages, old and reference log-probs) without gradients.

        The result is opaque to the loop: it is handed back to `minibatch_loss` and `metrics`."""

    @abstractmethod
    def minibatch_loss(self, model: torch.nn.Module, scored: Any, rows: list[int], precision: str
                       ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """(loss as a mean over the minibatch's response tokens, that token count, stats).

        `rows` index the rollout's rows; stats are logged per iteration as minibatch means."""

    @abstractmethod
    def metrics(self, scored: Any, runtime: Runtime) -> dict[str, float]:
        """The iteration's row before the minibatch stats, each reduced over processes."""

    def iteration_done(self, row: dict) -> None:
        """Called with the iteration's finished row, before it is checkpointed."""
        return None

    def check_reference(self, policy: torch.nn.Module, reference: torch.nn.Module | None) -> None:
        """Called once before training. Here: warn when the policy must be its own reference."""
        if uses_itself_as_reference(policy, reference):
            log.warning("%s: no reference model and no LoRA adapters: the sampling policy is its "
                        "own reference, so the KL term only measures drift within an iteration",
                        self.name)


def rl_loop(algorithm: RLAlgorithm, policy: torch.nn.Module, reference: torch.nn.Module | None,
            tokenizer: PreTrainedTokenizerBase, prompts: list[str], max_length: int, seed: int,
            context: TrainContext | None = None) -> list[dict]:
    """Train `policy` (a PolicyWithValue) in place with `algorithm`; returns the per-iteration rows.

    `reference` None: the policy with its LoRA adapters off is the reference, or, without LoRA,
    what `algorithm.check_reference` allows (PPO: the sampling policy itself, with a warning;
    GRPO: an error unless its kl_beta is 0). After each iteration `context.callbacks` see its row
    (`StepInfo`, one step per iteration) and may end the run early, as in the supervised loop.
    Under bf16 on a CPU the policy and the reference compute attention eagerly throughout
    (`precision.attention_for`): training steps are faster, and the log-probs the sampling pass
    records match those of the training forward, as they would not across the two kernels."""
    context = context or TrainContext()
    runtime, checkpointer, a = context.runtime, context.checkpointer, algorithm
    refuse_fsdp(runtime)
    a.check_reference(policy, reference)
    prompt_ids, cut = encode_prompts(tokenizer, prompts, max_length, a.sampling.max_new_tokens)
    if runtime.is_main:
        warn_truncated(sum(cut), len(prompts), max_length, a.sampling.max_new_tokens,
                       f"policy.{a.name}.sampling.max_new_tokens")
    local_rows = len(runtime.shard(list(range(a.prompts_per_iteration)))) * a.samples_per_prompt
    steps_per_iteration = a.epochs * -(-local_rows // a.minibatch_size)
    disable_dropout(policy)
    optimizer, scheduler = make_optimizer(policy, a.optim, a.iterations * steps_per_iteration)
    start, history = checkpointer.restore(policy, optimizer, scheduler, a.extras)
    trained, optimizer = runtime.prepare(policy, optimizer)
    unwrapped = runtime.unwrap(trained)
    name, device_type = f"train_policy ({a.name})", runtime.device.type
    with (attention_for(unwrapped.generator(), context.precision, device_type),
          attention_for(reference, context.precision, device_type),
          Progress(a.iterations - start, name + (f" resumed at {start}" if start else ""),
                   "iteration", enabled=runtime.is_main) as progress):
        for iteration in range(start, a.iterations):
            began = time.perf_counter()
            chosen = runtime.shard(draw_prompts(len(prompts), a.prompts_per_iteration, seed,
                                                iteration))
            rollout = sample_rollout(unwrapped.generator(), tokenizer, [prompt_ids[i] for i in chosen],
                                     a.samples_per_prompt, a.sampling,
                                     derive_seed(seed, SeedPurpose.ROLLOUT_SAMPLING, iteration,
                                                 runtime.rank),
                                     max_length, runtime.device, context.precision)
            scored = a.score(RolloutInputs(unwrapped, reference, rollout, chosen, runtime,
                                           context.precision))
            trained.train()
            stats = _update(a, trained, scored, len(rollout.finished), seed, iteration, context,
                            optimizer, scheduler)
            row = {"step": iteration, **a.metrics(scored, runtime),
                   **{k: runtime.mean(sum(v) / len(v)) for k, v in stats.items()},
                   "lr": scheduler.get_last_lr()[0]}
            a.iteration_done(row)
            history.append(row)
            checkpointer.step_done(iteration + 1, unwrapped, optimizer, scheduler, a.extras, history)
            progress.update(1, **{label: row[key] for label, key in a.progress_keys.items()})
            info = StepInfo(name, iteration, a.iterations, dict(row), time.perf_counter() - began,
                            unwrapped, runtime.is_main)
            if stop_requested(runtime, notify(context.callbacks, info)):
                break
    checkpointer.finish()
    return history


def refuse_fsdp(runtime: Runtime) -> None:
    """Sampling runs the policy's forward on each process alone, with plain tensors; under FSDP its
    parameters are DTensor shards, which those do not mix with (`models/generation.py`)."""
    if runtime.accelerator.distributed_type == DistributedType.FSDP:
        raise ConfigError("runtime.accelerate_config: PPO/GRPO under FSDP are not supported yet: "
                          "use DDP (infra/accelerate/ddp.yaml) or one process")


def _update(algorithm: RLAlgorithm, trained, scored, n_rows: int, seed: int, iteration: int,
            context: TrainContext, optimizer, scheduler) -> dict[str, list[float]]:
    """`epochs` passes of shuffled minibatches over the rollout's rows, one optimizer step each;
    returns every minibatch's stats, "loss" (under the reduction rule) first."""
    runtime = context.runtime
    stats: dict[str, list[float]] = {}
    for epoch in range(algorithm.epochs):
        for rows in minibatches(n_rows, algorithm.minibatch_size, seed, iteration, epoch):
            token_mean, tokens, mb_stats = algorithm.minibatch_loss(trained, scored, rows,
                                                                    context.precision)
            loss = runtime.global_mean(token_mean, tokens)
            runtime.step(trained, optimizer, scheduler, loss, algorithm.optim.max_grad_norm)
            for key, value in (("loss", loss.item()), *mb_stats.items()):
                stats.setdefault(key, []).append(value)
    return stats
