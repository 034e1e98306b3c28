"""Rollouts for on-policy RL: sample responses, then score their tokens under policy and reference."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch

from prefpipe.losses import masked_mean
from prefpipe.models.formatting import TokenBatch, collate
from prefpipe.models.generation import sample_token_ids
from prefpipe.models.logprobs import token_logprobs
from prefpipe.train.common import autocast


@dataclass
class Rollout:
    """Sampled rows, token-aligned: position t of `mask` and of every (B, T-1) tensor scores token t+1."""

    batch: TokenBatch
    mask: torch.Tensor  # (B, T-1) float, 1 on response tokens
    finished: torch.Tensor  # (B,) bool: the response emitted EOS
    prompt_index: list[int]  # row -> index into the prompts given to `sample_rollout`
    response_ids: list[list[int]]

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(-1)

    def last_index(self) -> torch.Tensor:
        """Position of each row's last response token in the (B, T-1) layout."""
        width = self.mask.shape[1]
        return width - 1 - self.mask.flip(-1).argmax(-1)


def draw_prompts(n_prompts: int, count: int, seed: int, iteration: int) -> list[int]:
    """The prompt indices of an iteration: a pure function of seed and iteration (resumable)."""
    rng = random.Random(seed * 1_000_003 + iteration)
    return [rng.randrange(n_prompts) for _ in range(count)]


@torch.no_grad()
def sample_rollout(generator, tokenizer, prompt_ids: list[list[int]], num_samples: int, sampling,
                   seed: int, max_length: int, device) -> Rollout:
    samples = sample_token_ids(generator, tokenizer, prompt_ids, num_samples, sampling, seed)
    batch = collate(tokenizer, [s.prompt_ids for s in samples],
                    [s.response_ids or [tokenizer.eos_token_id] for s in samples], max_length)
    return Rollout(batch.to(device), batch.response_mask[:, 1:].float().to(device),
                   torch.tensor([s.finished for s in samples], device=device),
                   [i // num_samples for i in range(len(samples))],
                   [s.response_ids for s in samples])


def forward_tokens(model, batch: TokenBatch, precision: str):
    """(per-token log-probs (B, T-1), values (B, T-1) or None, logits) of a PolicyWithValue."""
    with autocast(precision, batch.input_ids.device.type):
        logits, values = model(batch.input_ids, batch.attention_mask)
    logprobs = token_logprobs(logits, batch.input_ids)
    return logprobs, (values[:, :-1] if values is not None else None), logits


@torch.no_grad()
def reference_token_logprobs(policy, reference, batch: TokenBatch, precision: str) -> torch.Tensor:
    """Per-token log-probs under the frozen reference: its own model, or the policy with LoRA off."""
    with autocast(precision, batch.input_ids.device.type):
        if reference is not None:
            logits = reference(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        else:
            with policy.reference_mode():
                logits = policy.lm(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    return token_logprobs(logits, batch.input_ids)


def minibatches(n_rows: int, size: int, seed: int, iteration: int, epoch: int) -> list[list[int]]:
    order = list(range(n_rows))
    random.Random(seed * 7919 + iteration * 101 + epoch).shuffle(order)
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
