"""GRPO on verifiable rewards (Shao et al. 2024, DeepSeekMath §4): no reward model, no critic.

Per iteration: G samples per prompt, each scored by a verifier; advantages are the rewards
normalised within their group; the loss is the clipped policy-gradient surrogate plus β·k3 KL to the
frozen reference, averaged over response tokens.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from prefpipe.losses import group_advantages, kl_k3, masked_mean, ppo_policy_loss
from prefpipe.models.formatting import encode_prompt
from prefpipe.progress import Progress
from prefpipe.train.common import disable_dropout, make_optimizer
from prefpipe.train.loop import TrainContext
from prefpipe.train.rollout import (
    draw_prompts,
    forward_tokens,
    minibatches,
    reference_token_logprobs,
    sample_rollout,
    sub_batch,
)

# verify(prompt_index, response_ids, finished) -> reward in [0, 1]
VerifyFn = Callable[[int, list[int], bool], float]


def train_grpo(policy, reference, verify: VerifyFn, tokenizer, prompts: list[str], grpo_params,
               max_length: int, seed: int, context: TrainContext | None = None) -> list[dict]:
    """Train `policy` (a PolicyWithValue without value head) in place on verifier rewards."""
    context = context or TrainContext()
    runtime, checkpointer, precision = context.runtime, context.checkpointer, context.precision
    p = grpo_params
    prompt_ids = [encode_prompt(tokenizer, text) for text in prompts]
    local_prompts = len(runtime.shard(list(range(p.prompts_per_iteration))))
    steps_per_iteration = p.epochs * -(-local_prompts * p.group_size // p.minibatch_size)
    disable_dropout(policy)
    optimizer, scheduler = make_optimizer(policy, p.optim, p.iterations * steps_per_iteration)
    start, history = checkpointer.restore(policy, optimizer, scheduler, {})
    trained, optimizer = runtime.prepare(policy, optimizer)
    unwrapped = runtime.unwrap(trained)
    with Progress(p.iterations - start, "train_policy (grpo)" + (f" resumed at {start}" if start else ""),
                  "iteration", enabled=runtime.is_main) as progress:
        for iteration in range(start, p.iterations):
            chosen = runtime.shard(draw_prompts(len(prompts), p.prompts_per_iteration, seed, iteration))
            rollout = sample_rollout(unwrapped.generator(), tokenizer, [prompt_ids[i] for i in chosen],
                                     p.group_size, p.sampling,
                                     seed * 7_000_003 + iteration * 97 + runtime.rank,
                                     max_length, runtime.device)
            mask = rollout.mask
            rewards = torch.tensor([verify(chosen[prompt], ids, bool(done)) for prompt, ids, done in
                                    zip(rollout.prompt_index, rollout.response_ids,
                                        rollout.finished.tolist())], device=runtime.device)
            advantages = group_advantages(rewards, p.group_size).unsqueeze(-1) * mask
            with torch.no_grad():
                unwrapped.eval()
                old_logprobs, _, _ = forward_tokens(unwrapped, rollout.batch, precision)
                ref_logprobs = reference_token_logprobs(unwrapped, reference, rollout.batch, precision)
            trained.train()
            stats: dict[str, list[float]] = {}
            for epoch in range(p.epochs):
                for rows in minibatches(len(rollout.finished), p.minibatch_size, seed, iteration, epoch):
                    mb_mask = mask[rows]
                    logprobs, _, _ = forward_tokens(trained, sub_batch(rollout.batch, rows), precision)
                    pg_loss, pg_stats = ppo_policy_loss(logprobs, old_logprobs[rows], advantages[rows],
                                                        mb_mask, p.clip_range)
                    kl = masked_mean(kl_k3(logprobs, ref_logprobs[rows]), mb_mask)
                    loss = pg_loss + p.kl_beta * kl
                    runtime.step(trained, optimizer, scheduler, loss, p.optim.max_grad_norm)
                    for key, value in (("loss", loss.item()), ("policy_loss", pg_loss.item()),
                                       ("kl_k3_token", kl.item()),
                                       *pg_stats.items()):
                        stats.setdefault(key, []).append(value)
            solved = rewards.view(-1, p.group_size)
            row = {"step": iteration,
                   "reward": runtime.mean(rewards.mean().item()),
                   "groups_with_signal": runtime.mean((solved.std(dim=1) > 0).float().mean().item()),
                   "kl_nats": runtime.mean(((old_logprobs - ref_logprobs) * mask).sum(-1).mean().item()),
                   "response_tokens": runtime.mean(rollout.lengths.mean().item()),
                   **{k: runtime.mean(sum(v) / len(v)) for k, v in stats.items()},
                   "lr": scheduler.get_last_lr()[0]}
            history.append(row)
            checkpointer.step_done(iteration + 1, unwrapped, optimizer, scheduler, {}, history)
            progress.update(1, reward=row["reward"], kl=row["kl_nats"])
    checkpointer.finish()
    return history
