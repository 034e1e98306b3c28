"""PPO against a reward model with a per-token KL penalty to a frozen reference (Ziegler et al. 2019;
Ouyang et al. 2022).

Per iteration: sample one response per prompt from the policy; score it with the reward model; build
per-token rewards r_t = -β·KL_t, plus the (normalised, clipped) score on the last token, minus a
penalty if the response never ended; estimate advantages with GAE on the value head; then run the
clipped policy and value losses for a few epochs of minibatches. β adapts toward a KL budget.
"""
from __future__ import annotations

from collections.abc import Callable

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
from prefpipe.models.formatting import encode_prompt
from prefpipe.progress import Progress
from prefpipe.train.common import disable_dropout, make_optimizer
from prefpipe.train.kl_control import kl_controller
from prefpipe.train.loop import TrainContext
from prefpipe.train.rollout import (
    Rollout,
    RunningMoments,
    draw_prompts,
    explained_variance,
    forward_tokens,
    minibatches,
    reference_token_logprobs,
    sample_rollout,
    sub_batch,
)

# reward_fn(rollout) -> (B,) reward-model scores of the rollout's rows
RewardFn = Callable[[Rollout], torch.Tensor]


def shaped_rewards(scores: torch.Tensor, kl_per_token: torch.Tensor, rollout: Rollout,
                   beta: float) -> torch.Tensor:
    """r_t = -β·KL_t on every response token, plus the sequence score on its last token."""
    rewards = -beta * kl_per_token * rollout.mask
    rows = torch.arange(rewards.shape[0], device=rewards.device)
    rewards[rows, rollout.last_index()] += scores
    return rewards


def train_ppo(policy, reference, reward_fn: RewardFn, tokenizer, prompts: list[str], ppo_params,
              max_length: int, seed: int, context: TrainContext | None = None) -> list[dict]:
    """Train `policy` (a PolicyWithValue) in place; `reference` None means LoRA-disabled policy."""
    context = context or TrainContext()
    runtime, checkpointer, precision = context.runtime, context.checkpointer, context.precision
    p = ppo_params
    prompt_ids = [encode_prompt(tokenizer, text) for text in prompts]
    local_rows = len(runtime.shard(list(range(p.rollout_prompts))))
    steps_per_iteration = p.epochs * -(-local_rows // p.minibatch_size)
    disable_dropout(policy)
    optimizer, scheduler = make_optimizer(policy, p.optim, p.iterations * steps_per_iteration)
    kl_ctl, moments = kl_controller(p.kl), RunningMoments()
    extras = {"kl_controller": kl_ctl, "reward_moments": moments}
    start, history = checkpointer.restore(policy, optimizer, scheduler, extras)
    trained, optimizer = runtime.prepare(policy, optimizer)
    unwrapped = runtime.unwrap(trained)
    kl_estimator = KL_ESTIMATORS[p.kl.estimator]
    with Progress(p.iterations - start, "train_policy (ppo)" + (f" resumed at {start}" if start else ""),
                  "iteration", enabled=runtime.is_main) as progress:
        for iteration in range(start, p.iterations):
            chosen = runtime.shard(draw_prompts(len(prompts), p.rollout_prompts, seed, iteration))
            rollout = sample_rollout(unwrapped.generator(), tokenizer, [prompt_ids[i] for i in chosen],
                                     1, p.sampling, seed * 7_000_003 + iteration * 97 + runtime.rank,
                                     max_length, runtime.device)
            mask = rollout.mask
            with torch.no_grad():
                unwrapped.eval()
                old_logprobs, old_values, _ = forward_tokens(unwrapped, rollout.batch, precision)
                ref_logprobs = reference_token_logprobs(unwrapped, reference, rollout.batch, precision)
                raw_scores = reward_fn(rollout).float()
                scores = raw_scores
                if p.normalize_reward:
                    moments.update(runtime.gather(raw_scores))  # the same moments on every process
                    scores = (raw_scores - moments.mean) / moments.std
                scores = scores.clamp(-p.reward_clip, p.reward_clip)
                scores = scores - p.missing_eos_penalty * (~rollout.finished).float()
                sequence_kl = (kl_k1(old_logprobs, ref_logprobs) * mask).sum(-1)
                rewards = shaped_rewards(scores, kl_estimator(old_logprobs, ref_logprobs), rollout,
                                         kl_ctl.beta)
                advantages, returns = gae(rewards, old_values * mask, mask, p.gamma, p.lam)
                advantages = whiten(advantages, mask) * mask
            trained.train()
            stats: dict[str, list[float]] = {}
            for epoch in range(p.epochs):
                for rows in minibatches(len(chosen), p.minibatch_size, seed, iteration, epoch):
                    mb_mask = mask[rows]
                    logprobs, values, logits = forward_tokens(trained, sub_batch(rollout.batch, rows),
                                                              precision)
                    pg_loss, pg_stats = ppo_policy_loss(logprobs, old_logprobs[rows], advantages[rows],
                                                        mb_mask, p.clip_range)
                    vf_loss, vf_clipfrac = clipped_value_loss(values, old_values[rows], returns[rows],
                                                              mb_mask, p.value_clip_range)
                    loss = pg_loss + p.value_coef * vf_loss
                    runtime.step(trained, optimizer, scheduler, loss, p.optim.max_grad_norm)
                    with torch.no_grad():
                        entropy = masked_mean(entropy_from_logits(logits[:, :-1]), mb_mask).item()
                    for key, value in (("loss", loss.item()), ("policy_loss", pg_loss.item()),
                                       ("value_loss", vf_loss.item()),
                                       ("value_clip_fraction", vf_clipfrac), ("entropy", entropy),
                                       *pg_stats.items()):
                        stats.setdefault(key, []).append(value)
            mean_kl = runtime.mean(sequence_kl.mean().item())
            row = {"step": iteration, "beta": kl_ctl.beta, "kl_nats": mean_kl,
                   "score": runtime.mean(raw_scores.mean().item()),
                   "shaped_score": runtime.mean(scores.mean().item()),
                   "response_tokens": runtime.mean(rollout.lengths.mean().item()),
                   "finished_share": runtime.mean(rollout.finished.float().mean().item()),
                   "value_explained_variance": runtime.mean(
                       explained_variance(old_values, returns, mask)),
                   **{k: runtime.mean(sum(v) / len(v)) for k, v in stats.items()},
                   "lr": scheduler.get_last_lr()[0]}
            kl_ctl.update(mean_kl, p.rollout_prompts)
            history.append(row)
            checkpointer.step_done(iteration + 1, unwrapped, optimizer, scheduler, extras, history)
            progress.update(1, score=row["score"], kl=row["kl_nats"], beta=row["beta"],
                            tokens=row["response_tokens"])
    checkpointer.finish()
    return history
