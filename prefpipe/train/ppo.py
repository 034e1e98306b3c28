"""PPO against a reward model with a per-token KL penalty to a frozen reference (Ziegler et al. 2019;
Ouyang et al. 2022).

Per iteration: sample one response per prompt from the policy; score it with the reward model; build
per-token rewards r_t = -β·KL_t, plus the (normalised, clipped) score on the last token, minus a
penalty if the response never ended; estimate advantages with GAE on the value head; then run the
clipped policy and value losses for a few epochs of minibatches. β adapts toward a KL budget.
The loop itself (sampling, minibatches, checkpoints) is `rl_loop`; this module is the PPO part.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from prefpipe.losses import (
    KL_ESTIMATORS,
    clipped_value_loss,
    entropy_from_logits,
    gae,
    kl_k1,
    masked_mean,
    ppo_policy_loss,
    whiten,
)
from prefpipe.train.distributed import Runtime
from prefpipe.train.kl_control import kl_controller
from prefpipe.train.loop import TrainContext
from prefpipe.train.rl_loop import RLAlgorithm, RolloutInputs, rl_loop
from prefpipe.train.rollout import (
    Rollout,
    RunningMoments,
    explained_variance,
    forward_tokens,
    sub_batch,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from prefpipe.config.schema import PPOParams

# reward_fn(rollout) -> (B,) reward-model scores of the rollout's rows
RewardFn = Callable[[Rollout], torch.Tensor]


def shaped_rewards(scores: torch.Tensor, kl_per_token: torch.Tensor, rollout: Rollout,
                   beta: float) -> torch.Tensor:
    """r_t = -β·KL_t on every response token, plus the sequence score on its last token."""
    rewards = -beta * kl_per_token * rollout.mask
    rows = torch.arange(rewards.shape[0], device=rewards.device)
    rewards[rows, rollout.last_index()] += scores
    return rewards


@dataclass
class ScoredRollout:
    """A PPO rollout after scoring: everything its minibatch losses and metrics read."""

    rollout: Rollout
    old_logprobs: torch.Tensor  # (B, T-1) under the sampling policy
    old_values: torch.Tensor  # (B, T-1) value head at sampling time
    raw_scores: torch.Tensor  # (B,) reward-model scores
    scores: torch.Tensor  # (B,) normalised, clipped, minus the missing-EOS penalty
    sequence_kl: torch.Tensor  # (B,) k1 KL to the reference, summed over response tokens
    advantages: torch.Tensor  # (B, T-1) GAE, whitened
    returns: torch.Tensor  # (B, T-1)


class PPO(RLAlgorithm):
    """PPO's pieces for `rl_loop`: one sample per prompt, an adaptive KL coefficient, a critic."""

    name = "ppo"
    samples_per_prompt = 1
    progress_keys = {"score": "score", "kl": "kl_nats", "beta": "beta", "tokens": "response_tokens"}

    def __init__(self, reward_fn: RewardFn, ppo_params: PPOParams):
        p = self.params = ppo_params
        self.reward_fn = reward_fn
        self.iterations, self.prompts_per_iteration = p.iterations, p.rollout_prompts
        self.epochs, self.minibatch_size = p.epochs, p.minibatch_size
        self.optim, self.sampling = p.optim, p.sampling
        self.kl_ctl, self.moments = kl_controller(p.kl), RunningMoments()
        self.kl_estimator = KL_ESTIMATORS[p.kl.estimator]

    @property
    def extras(self) -> dict:
        return {"kl_controller": self.kl_ctl, "reward_moments": self.moments}

    @torch.no_grad()
    def score(self, inputs: RolloutInputs) -> ScoredRollout:
        p, rollout = self.params, inputs.rollout
        mask = rollout.mask
        old_logprobs, old_values, ref_logprobs = inputs.behaviour_logprobs()
        raw_scores = self.reward_fn(rollout).float()
        scores = raw_scores
        if p.normalize_reward:
            self.moments.update(inputs.runtime.gather(raw_scores))  # the same moments on every process
            scores = (raw_scores - self.moments.mean) / self.moments.std
        scores = scores.clamp(-p.reward_clip, p.reward_clip)
        scores = scores - p.missing_eos_penalty * (~rollout.finished).float()
        sequence_kl = (kl_k1(old_logprobs, ref_logprobs) * mask).sum(-1)
        rewards = shaped_rewards(scores, self.kl_estimator(old_logprobs, ref_logprobs), rollout,
                                 self.kl_ctl.beta)
        advantages, returns = gae(rewards, old_values * mask, mask, p.gamma, p.lam)
        advantages = whiten(advantages, mask) * mask
        return ScoredRollout(rollout, old_logprobs, old_values, raw_scores, scores, sequence_kl,
                             advantages, returns)

    def minibatch_loss(self, model: torch.nn.Module, scored: ScoredRollout, rows: list[int],
                       precision: str) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """Clipped surrogate + value_coef · clipped value loss, both token means."""
        p, mb_mask = self.params, scored.rollout.mask[rows]
        logprobs, values, logits = forward_tokens(model, sub_batch(scored.rollout.batch, rows),
                                                  precision)
        pg_loss, pg_stats = ppo_policy_loss(logprobs, scored.old_logprobs[rows],
                                            scored.advantages[rows], mb_mask, p.clip_range)
        vf_loss, vf_clipfrac = clipped_value_loss(values, scored.old_values[rows],
                                                  scored.returns[rows], mb_mask, p.value_clip_range)
        loss = pg_loss + p.value_coef * vf_loss
        with torch.no_grad():
            entropy = masked_mean(entropy_from_logits(logits[:, :-1]), mb_mask).item()
        return loss, mb_mask.sum(), {"policy_loss": pg_loss.item(), "value_loss": vf_loss.item(),
                                     "value_clip_fraction": vf_clipfrac, "entropy": entropy,
                                     **pg_stats}

    def metrics(self, scored: ScoredRollout, runtime: Runtime) -> dict[str, float]:
        rollout = scored.rollout
        mean_kl = runtime.mean(scored.sequence_kl.mean().item())
        return {"beta": self.kl_ctl.beta, "kl_nats": mean_kl,
                "score": runtime.mean(scored.raw_scores.mean().item()),
                "shaped_score": runtime.mean(scored.scores.mean().item()),
                "response_tokens": runtime.mean(rollout.lengths.mean().item()),
                "finished_share": runtime.mean(rollout.finished.float().mean().item()),
                "value_explained_variance": runtime.mean(
                    explained_variance(scored.old_values, scored.returns, rollout.mask))}

    def iteration_done(self, row: dict) -> None:
        """β moves toward the KL budget after the iteration (Ziegler et al. 2019, §2.2)."""
        self.kl_ctl.update(row["kl_nats"], self.params.rollout_prompts)


def train_ppo(policy: torch.nn.Module, reference: torch.nn.Module | None, reward_fn: RewardFn,
              tokenizer: PreTrainedTokenizerBase, prompts: list[str], ppo_params: PPOParams,
              max_length: int, seed: int, context: TrainContext | None = None) -> list[dict]:
    """Train `policy` (a PolicyWithValue) in place; `reference` None means LoRA-disabled policy."""
    return rl_loop(PPO(reward_fn, ppo_params), policy, reference, tokenizer, prompts, max_length,
                   seed, context)
