"""GRPO on verifiable rewards (Shao et al. 2024, DeepSeekMath §4): no reward model, no critic.

Per iteration: G samples per prompt, each scored by the reward functions; advantages are the
rewards normalised within their group; the loss is the clipped policy-gradient surrogate plus β·k3
KL to the frozen reference, averaged over response tokens. The old log-probs are those the
sampling pass recorded (no forward of its own); the reference is read only when β (kl_beta) > 0,
and with β > 0 a reference must exist: a frozen model or the policy's LoRA adapters switched off.
The loop itself (sampling, minibatches, checkpoints) is `rl_loop`; this module is the GRPO part.

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

from prefpipe.errors import ConfigError
from prefpipe.losses import group_advantages, kl_k3, masked_mean, ppo_policy_loss
from prefpipe.train.distributed import Runtime
from prefpipe.train.loop import TrainContext
from prefpipe.train.rl_loop import RLAlgorithm, RolloutInputs, rl_loop
from prefpipe.train.rollout import Rollout, forward_tokens, sub_batch, uses_itself_as_reference

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
    ref_logprobs: torch.Tensor | None  # (B, T-1) under the reference; None when kl_beta is 0


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
        self.progress_keys = {"reward": "reward", **({"kl": "kl_nats"} if p.kl_beta else {})}

    def check_reference(self, policy: torch.nn.Module, reference: torch.nn.Module | None) -> None:
        """The KL term needs a reference other than the policy being trained (kl_beta > 0)."""
        if self.params.kl_beta > 0 and uses_itself_as_reference(policy, reference):
            raise ConfigError(
                f"policy.grpo.kl_beta is {self.params.kl_beta} but GRPO was given no reference "
                "model and the policy has no LoRA adapters to switch off: pass a frozen copy of "
                "the starting policy as the reference, train with LoRA (policy.lora.rank > 0), or "
                "set policy.grpo.kl_beta: 0")

    def score(self, inputs: RolloutInputs) -> ScoredGroups:
        rewards = rollout_rewards(self.reward_funcs, self.tokenizer, self.prompts, inputs)
        advantages = group_advantages(rewards, self.params.group_size).unsqueeze(-1) * inputs.rollout.mask
        reference = inputs.reference_logprobs() if self.params.kl_beta > 0 else None
        return ScoredGroups(inputs.rollout, rewards, advantages, inputs.old_logprobs(), reference)

    def minibatch_loss(self, model: torch.nn.Module, scored: ScoredGroups, rows: list[int],
                       precision: str) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """Clipped surrogate + β · k3 KL to the reference (none when β is 0), both token means."""
        p, mb_mask = self.params, scored.rollout.mask[rows]
        logprobs, _, _ = forward_tokens(model, sub_batch(scored.rollout.batch, rows), precision)
        pg_loss, pg_stats = ppo_policy_loss(logprobs, scored.old_logprobs[rows],
                                            scored.advantages[rows], mb_mask, p.clip_range)
        stats = {"policy_loss": pg_loss.item(), **pg_stats}
        if scored.ref_logprobs is None:
            return pg_loss, mb_mask.sum(), stats
        kl = masked_mean(kl_k3(logprobs, scored.ref_logprobs[rows]), mb_mask)
        return pg_loss + p.kl_beta * kl, mb_mask.sum(), {**stats, "kl_k3_token": kl.item()}

    def metrics(self, scored: ScoredGroups, runtime: Runtime) -> dict[str, float]:
        rollout, rewards = scored.rollout, scored.rewards
        solved = rewards.view(-1, self.params.group_size)
        row = {"reward": runtime.mean(rewards.mean().item()),
               "groups_with_signal": runtime.mean((solved.std(dim=1) > 0).float().mean().item())}
        if scored.ref_logprobs is not None:  # not measured without a reference pass (kl_beta 0)
            row["kl_nats"] = runtime.mean(((scored.old_logprobs - scored.ref_logprobs)
                                           * rollout.mask).sum(-1).mean().item())
        return {**row, "response_tokens": runtime.mean(rollout.lengths.mean().item())}


def train_grpo(policy: torch.nn.Module, reference: torch.nn.Module | None,
               reward_funcs: RewardFunc | Sequence[RewardFunc], tokenizer: PreTrainedTokenizerBase,
               prompts: list[str], grpo_params: GRPOParams, max_length: int, seed: int,
               context: TrainContext | None = None) -> list[dict]:
    """Train `policy` (a PolicyWithValue without value head) in place on the rewards of
    `reward_funcs`. `reference` None: the policy with its LoRA adapters off; without LoRA a
    ConfigError naming policy.grpo.kl_beta, unless kl_beta is 0 (then no reference is read)."""
    return rl_loop(GRPO(reward_funcs, tokenizer, prompts, grpo_params), policy, reference,
                   tokenizer, prompts, max_length, seed, context)
