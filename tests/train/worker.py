"""Subprocess worker for the distributed and resume tests: trains one tiny model, saves its weights.

python tests/train/worker.py KIND OUT [--checkpoint DIR --every N] [--kill-after-forward K]
KIND: sft | reward | dpo | ppo | grpo. Run directly (1 process) or under `accelerate launch`.
--kill-after-forward K sends SIGKILL to this process at the K-th forward pass: a real kill."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tiny  # noqa: E402

from prefpipe.models.policy_value import PolicyWithValue  # noqa: E402
from prefpipe.train.checkpoint import Checkpointer  # noqa: E402
from prefpipe.train.determinism import use_deterministic_kernels  # noqa: E402
from prefpipe.train.distributed import Runtime  # noqa: E402
from prefpipe.train.loop import TrainContext  # noqa: E402


def kill_at(model: torch.nn.Module, forward_count: int) -> None:
    calls = {"n": 0}

    def hook(*_):
        calls["n"] += 1
        if calls["n"] == forward_count:
            os.kill(os.getpid(), signal.SIGKILL)

    model.register_forward_pre_hook(hook)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind")
    parser.add_argument("out")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--every", type=int, default=0)
    parser.add_argument("--kill-after-forward", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    torch.set_num_threads(1)
    use_deterministic_kernels(warn_only=False)
    runtime = Runtime()
    context = TrainContext(runtime, Checkpointer(args.checkpoint, args.every, runtime.is_main,
                                                 runtime.barrier))
    tok = tiny.tokenizer()
    if args.kind == "reward":
        from prefpipe.train.reward import train_reward_model

        model = tiny.reward_model(tok)
        trained = model
        # centering gives ln_f.bias a real gradient: without it the bias cancels in r_c - r_r, its
        # gradient is pure float noise, and Adam's g/sqrt(v) blows that noise up to lr-sized steps
        reward_params = tiny.reward_params(center_coef=0.01)
        run = lambda: train_reward_model(model, tok, tiny.pairs(), reward_params, 64, 0, context)  # noqa: E731
    elif args.kind == "sft":
        from prefpipe.train.sft import train_sft

        model = trained = tiny.policy_lm(tok)
        examples = [{"prompt": p["prompt"], "response": p["chosen"]} for p in tiny.pairs()]
        run = lambda: train_sft(model, tok, examples, tiny.reward_params().optim, 64, 0, context)  # noqa: E731
    elif args.kind == "dpo":
        from prefpipe.train.dpo import reference_logprobs, train_dpo

        model = trained = tiny.policy_lm(tok)
        ref_c, ref_r = reference_logprobs(tiny.policy_lm(tok), tok, tiny.pairs(), 64)
        run = lambda: train_dpo(model, tok, tiny.pairs(), ref_c, ref_r, tiny.dpo_params(), 64, 0,  # noqa: E731
                                context)
    elif args.kind in ("ppo", "grpo"):
        from prefpipe.models.scoring import scalar_rewards
        from prefpipe.train.grpo import train_grpo
        from prefpipe.train.ppo import train_ppo

        model = PolicyWithValue(tiny.policy_lm(tok), with_value_head=args.kind == "ppo")
        trained = model
        reference = tiny.policy_lm(tok).eval()
        rm = tiny.reward_model(tok).eval()
        if args.kind == "ppo":
            run = lambda: train_ppo(model, reference,  # noqa: E731
                                    lambda ro: scalar_rewards(rm, ro.batch).detach(), tok,
                                    tiny.prompts(), tiny.ppo_params(), 64, 0, context)
        else:
            run = lambda: train_grpo(model, reference,  # noqa: E731
                                     [lambda completion_ids, **_: [float(len(ids) % 3 == 0)
                                                                   for ids in completion_ids]], tok,
                                     tiny.prompts(), tiny.grpo_params(), 64, 0, context)
    else:
        raise SystemExit(f"unknown kind {args.kind}")
    if args.kill_after_forward:
        kill_at(trained, args.kill_after_forward)
    history = run()
    if runtime.is_main:
        torch.save({"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
                    "world_size": runtime.world_size,
                    "history": history}, args.out)


if __name__ == "__main__":
    main()
