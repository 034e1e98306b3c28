"""GRPO on verifiable rewards (Shao et al. 2024, DeepSeekMath §4): no reward model, no critic.

Per iteration: G samples per prompt, each scored by the reward functions; advantages are the
rewards normalised within their group; the loss is the clipped policy-gradient surrogate plus β·k3
KL to the frozen reference, averaged over response tokens. The loop itself (sampling, minibatches,
checkpoints) is `rl_loop`; this module is the GRPO part.

Reward functions have TRL's `reward_funcs` shape: each is called once per rollout with keyword
arguments, one list entry per sampled row, and returns one float per row; a row's reward is the
sum over the functions (one function may be passed alone). The keywords are
    prompts         the prompt text of each row
    completions     the sampled response, decoded with special tokens skipped
    completion_ids  the sampled token ids (ending in EOS when finished)
    prompt_index    the index of each row's prompt in the `prompts` given to `train_grpo`
    finished        whether the response ended with EOS before the token cap
so a function takes the ones it needs and `**kwargs` for the rest. The library knows no verifier:
the stage builds these functions (from the verifiers) and passes them in.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from prefpipe.losses import group_advantages, kl_k3, masked_mean, ppo_policy_loss
from prefpipe.train.distributed import Runtime
from prefpipe.train.loop import TrainContext
from prefpipe.train.rl_loop import RLAlgorithm, RolloutInputs, rl_loop
from prefpipe.train.rollout import Rollout, forward_tokens, sub_batch

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from prefpipe.config.schema import GRPOParams

# reward_func(prompts=..., completions=..., completion_ids=..., prompt_index=..., finished=...)
#   -> one reward per row (see the module docstring)
RewardFunc = Callable[..., Sequence[float]]


@dataclass
class ScoredGroups:
    """A GRPO rollout after scoring: G contiguous rows per prompt."""

    rollout: Rollout
    rewards: torch.Tensor  # (B,) summed reward-function values
    advantages: torch.Tensor  # (B, T-1) group-normalised reward on every response token
    old_logprobs: torch.Tensor  # (B, T-1) under the sampling policy
    ref_logprobs: torch.Tensor  # (B, T-1) under the reference


def rollout_rewards(reward_funcs: Sequence[RewardFunc], tokenizer: PreTrainedTokenizerBase,
                    prompts: list[str],
                    inputs: RolloutInputs) -> torch.Tensor:
    """(B,) float32: each row's reward, summed over `reward_funcs`."""
    rollout = inputs.rollout
    prompt_index = [inputs.prompt_indices[row] for row in rollout.prompt_index]
    kwargs = {"prompts": [prompts[i] for i in prompt_index],
              "completions": [tokenizer.decode(ids, skip_special_tokens=True)
                              for ids in rollout.response_ids],
              "completion_ids": rollout.response_ids, "prompt_index": prompt_index,
              "finished": [bool(done) for done in rollout.finished.tolist()]}
    per_func = []
    for func in reward_funcs:
        values = [float(v) for v in func(**kwargs)]
        if len(values) != len(prompt_index):
            raise ValueError(f"reward function {getattr(func, '__name__', func)!r} returned "
                             f"{len(values)} rewards for {len(prompt_index)} completions")
        per_func.append(values)
    return torch.tensor(per_func, dtype=torch.float32, device=inputs.runtime.device).sum(0)


class GRPO(RLAlgorithm):
    """GRPO's pieces for `rl_loop`: G samples per prompt, group-relative advantages, k3 KL."""

    name = "grpo"
    progress_keys = {"reward": "reward", "kl": "kl_nats"}

    def __init__(self, reward_funcs: RewardFunc | Sequence[RewardFunc],
                 tokenizer: PreTrainedTokenizerBase, prompts: list[str], grpo_params: GRPOParams):
        if callable(reward_funcs):  # one function, as TRL also accepts
            reward_funcs = [reward_funcs]
        if not reward_funcs:
            raise ValueError("GRPO needs at least one reward function")
        p = self.params = grpo_params
        self.reward_funcs, self.tokenizer, self.prompts = list(reward_funcs), tokenizer, prompts
        self.iterations, self.prompts_per_iteration = p.iterations, p.prompts_per_iteration
        self.samples_per_prompt = p.group_size
        self.epochs, self.minibatch_size = p.epochs, p.minibatch_size
        self.optim, self.sampling = p.optim, p.sampling

    def score(self, inputs: RolloutInputs) -> ScoredGroups:
        rewards = rollout_rewards(self.reward_funcs, self.tokenizer, self.prompts, inputs)
        advantages = group_advantages(rewards, self.params.group_size).unsqueeze(-1) * inputs.rollout.mask
        old_logprobs, _, ref_logprobs = inputs.behaviour_logprobs()
        return ScoredGroups(inputs.rollout, rewards, advantages, old_logprobs, ref_logprobs)

    def minibatch_loss(self, model: torch.nn.Module, scored: ScoredGroups, rows: list[int],
                       precision: str) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """Clipped surrogate + β · k3 KL to the reference, both token means."""
        p, mb_mask = self.params, scored.rollout.mask[rows]
        logprobs, _, _ = forward_tokens(model, sub_batch(scored.rollout.batch, rows), precision)
        pg_loss, pg_stats = ppo_policy_loss(logprobs, scored.old_logprobs[rows],
                                            scored.advantages[rows], mb_mask, p.clip_range)
        kl = masked_mean(kl_k3(logprobs, scored.ref_logprobs[rows]), mb_mask)
        loss = pg_loss + p.kl_beta * kl
        return loss, mb_mask.sum(), {"policy_loss": pg_loss.item(), "kl_k3_token": kl.item(),
                                     **pg_stats}

    def metrics(self, scored: ScoredGroups, runtime: Runtime) -> dict[str, float]:
        rollout, rewards = scored.rollout, scored.rewards
        solved = rewards.view(-1, self.params.group_size)
        return {"reward": runtime.mean(rewards.mean().item()),
                "groups_with_signal": runtime.mean((solved.std(dim=1) > 0).float().mean().item()),
                "kl_nats": runtime.mean(((scored.old_logprobs - scored.ref_logprobs)
                                         * rollout.mask).sum(-1).mean().item()),
                "response_tokens": runtime.mean(rollout.lengths.mean().item())}


def train_grpo(policy: torch.nn.Module, reference: torch.nn.Module | None,
               reward_funcs: RewardFunc | Sequence[RewardFunc], tokenizer: PreTrainedTokenizerBase,
               prompts: list[str], grpo_params: GRPOParams, max_length: int, seed: int,
               context: TrainContext | None = None) -> list[dict]:
    """Train `policy` (a PolicyWithValue without value head) in place on the rewards of
    `reward_funcs`; `reference` None: see `rollout.reference_token_logprobs`."""
    return rl_loop(GRPO(reward_funcs, tokenizer, prompts, grpo_params), policy, reference,
                   tokenizer, prompts, max_length, seed, context)
