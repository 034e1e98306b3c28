"""Rollouts for on-policy RL: sample responses (recording each token's log-prob on the way), then
score their tokens under the policy (where values are needed) and the reference."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from prefpipe.losses import masked_mean
from prefpipe.models.formatting import TokenBatch, collate
from prefpipe.models.generation import sample_batch, token_samples
from prefpipe.models.logprobs import token_logprobs
from prefpipe.seeds import SeedPurpose, derive_seed
from prefpipe.train.common import autocast

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from prefpipe.config.schema import SamplingParams
    from prefpipe.models.policy_value import PolicyWithValue


@dataclass
class Rollout:
    """Sampled rows, token-aligned: position t of `mask` and of every (B, T-1) tensor scores token t+1."""

    batch: TokenBatch
    mask: torch.Tensor  # (B, T-1) float, 1 on response tokens
    finished: torch.Tensor  # (B,) bool: the response emitted EOS
    prompt_index: list[int]  # row -> index into the prompts given to `sample_rollout`
    response_ids: list[list[int]]
    # (B, T-1) log-probs of the response tokens as the sampling pass drew them (0 elsewhere)
    sampled_logprobs: torch.Tensor | None = None

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(-1)

    def last_index(self) -> torch.Tensor:
        """Position of each row's last response token in the (B, T-1) layout."""
        width = self.mask.shape[1]
        return width - 1 - self.mask.flip(-1).argmax(-1)


def draw_prompts(n_prompts: int, count: int, seed: int, iteration: int) -> list[int]:
    """The prompt indices of an iteration: a pure function of seed and iteration (resumable)."""
    rng = random.Random(derive_seed(seed, SeedPurpose.ROLLOUT_PROMPTS, iteration))
    return [rng.randrange(n_prompts) for _ in range(count)]


@torch.no_grad()
def sample_rollout(generator: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
                   prompt_ids: list[list[int]], num_samples: int, sampling: SamplingParams,
                   seed: int, max_length: int, device: torch.device | str,
                   precision: str = "fp32") -> Rollout:
    """`num_samples` responses to each prompt from `generator`, seeded by `seed`, as a Rollout.

    The sampling pass runs under `precision` and records the log-prob of every token it draws
    (log-softmax of the unscaled logits, as `forward_tokens` computes them): `sampled_logprobs`,
    the behaviour log-probs without a second forward."""
    drawn = sample_batch(generator, tokenizer, prompt_ids, num_samples, sampling, seed, precision,
                         with_logprobs=True)
    samples = token_samples(drawn, prompt_ids, num_samples)
    batch = collate(tokenizer, [s.prompt_ids for s in samples],
                    [s.response_ids or [tokenizer.eos_token_id] for s in samples], max_length)
    mask = batch.response_mask[:, 1:].float().to(device)
    return Rollout(batch.to(device), mask,
                   torch.tensor([s.finished for s in samples], device=device),
                   [i // num_samples for i in range(len(samples))],
                   [s.response_ids for s in samples], aligned_logprobs(drawn.logprobs, mask))


def aligned_logprobs(drawn: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-token log-probs of sampled responses (B, N), response token j at column j, moved to the
    Rollout layout (B, T-1) whose `mask` marks each row's response positions in order; a response
    `collate` cut to fit keeps its first tokens, so each row takes its first mask-count columns."""
    kept = mask.sum(-1).long().to(drawn.device)
    first = torch.arange(drawn.shape[1], device=drawn.device) < kept[:, None]
    out = torch.zeros_like(mask)
    out[mask.bool()] = drawn[first].to(out)
    return out


def forward_tokens(model: torch.nn.Module, batch: TokenBatch, precision: str
                   ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(per-token log-probs (B, T-1), values (B, T-1) or None, logits) of a PolicyWithValue."""
    with autocast(precision, batch.input_ids.device.type):
        logits, values = model(batch.input_ids, batch.attention_mask)
    logprobs = token_logprobs(logits, batch.input_ids)
    return logprobs, (values[:, :-1] if values is not None else None), logits


def uses_itself_as_reference(policy: PolicyWithValue, reference: torch.nn.Module | None) -> bool:
    """True when there is neither a reference model nor LoRA adapters to switch off."""
    return reference is None and not policy.uses_lora


@torch.no_grad()
def reference_token_logprobs(policy: PolicyWithValue, reference: torch.nn.Module | None,
                             batch: TokenBatch, precision: str) -> torch.Tensor:
    """Per-token log-probs (B, T-1) under the reference, which is one of three things:

    - `reference` given: that frozen model (full fine-tuning; the stage passes a copy of SFT);
    - no `reference`, LoRA policy: the policy with its adapters off, i.e. its starting weights;
    - no `reference`, no LoRA: there is no frozen copy, so the policy itself *as it is now* is the
      reference. Called when a rollout is scored, that is the sampling policy: KL(π‖ref) is then
      zero at scoring time and the KL terms only see drift within one iteration's updates. PPO
      logs a warning when it runs this way (`uses_itself_as_reference`); GRPO refuses to (an
      error naming policy.grpo.kl_beta) and, with kl_beta 0, never asks for a reference."""
    ids, attention = batch.input_ids, batch.attention_mask
    with autocast(precision, ids.device.type):
        if reference is not None:
            logits = reference(input_ids=ids, attention_mask=attention).logits
        elif policy.uses_lora:
            with policy.reference_mode():  # adapters off
                logits = policy.lm(input_ids=ids, attention_mask=attention).logits
        else:  # the policy is its own reference (see above)
            logits = policy.lm(input_ids=ids, attention_mask=attention).logits
    return token_logprobs(logits, ids)


def minibatches(n_rows: int, size: int, seed: int, iteration: int, epoch: int) -> list[list[int]]:
    """The rows 0..n_rows-1 shuffled by (seed, iteration, epoch), cut into minibatches of `size`."""
    order = list(range(n_rows))
    random.Random(derive_seed(seed, SeedPurpose.MINIBATCH_ORDER, iteration, epoch)).shuffle(order)
    return [order[i: i + size] for i in range(0, n_rows, size)]


def sub_batch(batch: TokenBatch, rows: list[int]) -> TokenBatch:
    return TokenBatch(batch.input_ids[rows], batch.attention_mask[rows], batch.response_mask[rows])


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """1 - Var(returns - values) / Var(returns) over response tokens (1 = a perfect critic)."""
    var_returns = masked_mean((returns - masked_mean(returns, mask)) ** 2, mask).item()
    residual = returns - values
    var_residual = masked_mean((residual - masked_mean(residual, mask)) ** 2, mask).item()
    return 1.0 - var_residual / var_returns if var_returns > 0 else float("nan")


class RunningMoments:
    """Running mean and std of reward-model scores (Chan et al. parallel update), checkpointable."""

    def __init__(self):
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def update(self, values: torch.Tensor) -> None:
        n = values.numel()
        batch_mean = values.mean().item()
        batch_m2 = ((values - batch_mean) ** 2).sum().item()
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        self.m2 += batch_m2 + delta ** 2 * self.count * n / total
        self.count = total

    @property
    def std(self) -> float:
        """Population std, floored: constant scores must not divide by zero."""
        return max(math.sqrt(self.m2 / self.count), 1e-6) if self.count > 1 else 1.0

    def state_dict(self) -> dict:
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    def load_state_dict(self, state: dict) -> None:
        self.count, self.mean, self.m2 = state["count"], state["mean"], state["m2"]
