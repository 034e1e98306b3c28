"""A tiny, fully seeded training world for the trainer tests (and their subprocess workers).

Real components throughout: a BPE tokenizer trained on the spot, random-init GPT-2 policy and
reward models, dropout off so that runs are comparable bit for bit.
"""
from __future__ import annotations

import random

import torch
from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

from prefpipe.config.schema import DPOParams, GRPOParams, OptimParams, PPOParams, RewardParams
from prefpipe.world.tokenizer import train_tokenizer

WORDS = ["yes", "no", "maybe", "two", "four", "sum", "is", "the", "answer", "ok", "fine", "thanks"]


def tokenizer():
    rng = random.Random(0)
    texts = [" ".join(rng.choice(WORDS) for _ in range(8)) for _ in range(200)]
    return train_tokenizer(texts, 300)


def _config(tok) -> GPT2Config:
    return GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=1, n_head=2,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=tok.eos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)


def policy_lm(tok, seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    return GPT2LMHeadModel(_config(tok))


def reward_model(tok, seed: int = 1) -> GPT2ForSequenceClassification:
    torch.manual_seed(seed)
    config = _config(tok)
    config.num_labels = 1
    return GPT2ForSequenceClassification(config)


def pairs(n: int = 24) -> list[dict]:
    rng = random.Random(1)
    out = []
    for i in range(n):
        prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))
        out.append({"prompt_id": f"p{i}", "prompt": prompt,
                    "chosen": " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))),
                    "rejected": " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))),
                    "confidence": rng.random()})
    return out


def prompts(n: int = 12) -> list[str]:
    rng = random.Random(2)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))) for _ in range(n)]


def reward_params(**overrides) -> RewardParams:
    optim = OptimParams(epochs=2.0, batch_size=8, lr=1e-3, warmup_steps=1)
    return RewardParams(optim=optim, **overrides)


def dpo_params(**overrides) -> DPOParams:
    return DPOParams(optim=OptimParams(epochs=2.0, batch_size=8, lr=1e-3, warmup_steps=1), **overrides)


def ppo_params(**overrides) -> PPOParams:
    from prefpipe.config.schema import SamplingParams

    base = dict(iterations=6, rollout_prompts=8, epochs=2, minibatch_size=4,
                sampling=SamplingParams(max_new_tokens=8))
    return PPOParams(**{**base, **overrides})


def grpo_params(**overrides) -> GRPOParams:
    from prefpipe.config.schema import SamplingParams

    base = dict(iterations=4, prompts_per_iteration=4, group_size=4, minibatch_size=8,
                sampling=SamplingParams(max_new_tokens=8))
    return GRPOParams(**{**base, **overrides})
