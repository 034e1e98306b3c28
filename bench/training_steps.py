"""Tokens/s and peak memory of SFT, reward, DPO, PPO and GRPO training on the default model size.

Each measurement runs the real trainer in its own subprocess at fixed sizes (batch 32, 48-token
responses; PPO 32 rollouts x 2 epochs; GRPO 8 prompts x 4 samples), so its peak RSS is its own.
Memory is reported as peak RSS and as the training memory above the process baseline (torch and
transformers imported, nothing built), and PPO and DPO are given as ratios of SFT.

Run: .venv/bin/python bench/training_steps.py [--threads 1] [--size default|medium] [--lora 8]"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
SIZES = {"default": {}, "medium": {"n_layer": 8, "n_embd": 512, "n_head": 8}}
WORDS = "the answer is sum two four yes no maybe caffeine blocks sleepy plants light water".split()


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def measure(kind: str, threads: int, size: str, lora: int, precision: str) -> dict:
    import torch

    from prefpipe.config import Params
    from prefpipe.config.schema import (
        DPOParams,
        GRPOParams,
        LoRAParams,
        ModelParams,
        OptimParams,
        PPOParams,
        RewardParams,
        SamplingParams,
    )
    from prefpipe.models.io import build_embedded_lm
    from prefpipe.models.policy_value import PolicyWithValue, apply_lora
    from prefpipe.train.loop import TrainContext
    from prefpipe.world.tokenizer import train_tokenizer

    torch.set_num_threads(threads)
    context = TrainContext(precision=precision)
    rng = random.Random(0)
    tokenizer = train_tokenizer([text(rng, 30) for _ in range(300)], Params().model.vocab_size)
    baseline = rss_mib()
    model_params = ModelParams(**SIZES[size])
    steps, batch, response_tokens = 6, 32, 48
    sampling = SamplingParams(max_new_tokens=response_tokens, temperature=1.0)
    lm = build_embedded_lm(model_params, tokenizer, 0)
    n_params = sum(p.numel() for p in lm.parameters())
    lora_params = LoRAParams(rank=lora)
    start = time.perf_counter()
    if kind == "sft":
        from prefpipe.train.sft import train_sft

        examples = [{"prompt": text(rng, 10), "response": text(rng, response_tokens)}
                    for _ in range(batch * steps)]
        train_sft(lm, tokenizer, examples, OptimParams(epochs=1.0, batch_size=batch, lr=1e-4), 128, 0,
                  context)
        tokens = batch * steps * (10 + response_tokens)
    elif kind in ("reward", "dpo"):
        pairs = [{"prompt": text(rng, 10), "chosen": text(rng, response_tokens),
                  "rejected": text(rng, response_tokens)} for _ in range(batch * steps // 2)]
        if kind == "reward":
            from transformers import GPT2ForSequenceClassification

            from prefpipe.train.reward import train_reward_model

            lm.config.num_labels = 1
            rm = GPT2ForSequenceClassification(lm.config)
            del lm
            start = time.perf_counter()
            pair_optim = OptimParams(epochs=1.0, batch_size=batch // 2, lr=1e-4, warmup_steps=1)
            train_reward_model(rm, tokenizer, pairs, RewardParams(optim=pair_optim), 128, 0, context)
        else:
            from prefpipe.train.dpo import train_dpo

            zeros = torch.zeros(len(pairs))
            policy = apply_lora(lm, lora_params) if lora else lm
            pair_optim = OptimParams(epochs=1.0, batch_size=batch // 2, lr=1e-4, warmup_steps=1)
            train_dpo(policy, tokenizer, pairs, zeros, zeros, DPOParams(optim=pair_optim), 128, 0, context)
        tokens = batch * steps * (10 + response_tokens)
    else:
        from transformers import GPT2ForSequenceClassification

        from prefpipe.models.scoring import scalar_rewards
        from prefpipe.train.grpo import train_grpo
        from prefpipe.train.ppo import train_ppo

        prompts = [text(rng, 10) for _ in range(200)]
        reference = None
        if not lora:
            reference = build_embedded_lm(model_params, tokenizer, 0).eval().requires_grad_(False)
        policy = PolicyWithValue(apply_lora(lm, lora_params) if lora else lm, kind == "ppo")
        start = time.perf_counter()
        if kind == "ppo":
            rm_config = build_embedded_lm(model_params, tokenizer, 1).config
            rm_config.num_labels = 1
            rm = GPT2ForSequenceClassification(rm_config).eval().requires_grad_(False)
            ppo = PPOParams(iterations=steps, rollout_prompts=batch, epochs=2, minibatch_size=16,
                            sampling=sampling)
            history = train_ppo(policy, reference, lambda ro: scalar_rewards(rm, ro.batch), tokenizer,
                                prompts, ppo, 128, 0, context)
        else:
            grpo = GRPOParams(iterations=steps, prompts_per_iteration=batch // 4, group_size=4,
                              minibatch_size=16, sampling=sampling)
            odd = lambda completion_ids, **_: [float(len(ids) % 2) for ids in completion_ids]  # noqa: E731
            history = train_grpo(policy, reference, [odd], tokenizer,
                                 prompts, grpo, 128, 0, context)
        tokens = sum(batch * (r["response_tokens"] + 12) for r in history)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"step": kind, "parameters_m": n_params / 1e6, "tokens_per_s": tokens / elapsed,
            "peak_rss_mib": peak, "training_mib": peak - baseline}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", choices=sorted(SIZES), default="default")
    parser.add_argument("--lora", type=int, default=8, help="LoRA rank for the LoRA rows")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--with-lora", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.threads, args.size, args.with_lora, args.precision)))
        return
    rows = {}
    runs = [("sft", 0), ("reward", 0), ("dpo", 0), ("ppo", 0), ("ppo", args.lora), ("grpo", 0),
            ("grpo", args.lora)]
    print(f"{args.size} model, {args.precision}, {args.threads} thread(s); memory = peak RSS and "
          "training memory above the import baseline")
    print(f"{'step':14} {'params M':>8} {'tokens/s':>9} {'peak MiB':>9} {'train MiB':>10}")
    for kind, lora in runs:
        out = subprocess.run([sys.executable, __file__, "--one", kind, "--threads", str(args.threads),
                              "--size", args.size, "--with-lora", str(lora), "--precision",
                              args.precision],
                             capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"{kind} failed:\n{out.stderr[-2000:]}")
        row = json.loads(out.stdout.strip().splitlines()[-1])
        name = kind + (f" lora{lora}" if lora else "")
        rows[name] = row
        print(f"{name:14} {row['parameters_m']:8.2f} {row['tokens_per_s']:9.0f} "
              f"{row['peak_rss_mib']:9.0f} {row['training_mib']:10.0f}")
    sft = rows["sft"]["training_mib"]
    for name in ("dpo", "ppo", f"ppo lora{args.lora}", "grpo", f"grpo lora{args.lora}"):
        print(f"{name}/sft training memory: {rows[name]['training_mib'] / sft:.2f}x "
              f"(peak RSS {rows[name]['peak_rss_mib'] / rows['sft']['peak_rss_mib']:.2f}x)")


if __name__ == "__main__":
    main()
