"""Throughput and peak memory of each training/generation step on the default model.

Each measurement runs in its own subprocess so its peak RSS is its own.
Run: .venv/bin/python bench/throughput.py [--threads 1] [--steps 20]"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def measure(kind: str, threads: int, steps: int) -> dict:
    import torch

    from prefpipe.config import Params
    from prefpipe.losses import bradley_terry_loss, dpo_loss
    from prefpipe.models.generation import sample_responses
    from prefpipe.models.io import build_embedded_lm
    from prefpipe.models.logprobs import sequence_logprobs
    from prefpipe.world.tokenizer import train_tokenizer

    torch.set_num_threads(threads)
    params = Params()
    tokenizer = train_tokenizer([f"What is {a} plus {b}? The answer is {a + b}." for a in range(30)
                                 for b in range(30)], params.model.vocab_size)
    model = build_embedded_lm(params.model, tokenizer, 0)
    batch, length = 32, 48
    ids = torch.randint(0, len(tokenizer), (batch, length))
    mask = torch.ones_like(ids)

    class Batch:
        input_ids, attention_mask, response_mask = ids, mask, mask

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    if kind == "generate":
        model.eval()
        sampling = params.generate.sampling
        prompts = [f"What is {i} plus 2?" for i in range(64)]
        sample_responses(model, tokenizer, prompts[:8], 1, sampling, 0)  # warm-up
        start = time.perf_counter()
        samples = sample_responses(model, tokenizer, prompts, 4, sampling, 0)
        elapsed = time.perf_counter() - start
        tokens = sum(s.num_tokens for s in samples)
    else:
        def step():
            if kind == "sft":
                loss = model(input_ids=ids, attention_mask=mask, labels=ids).loss
            elif kind == "reward":
                scores = model(input_ids=ids, attention_mask=mask).logits[:, -1, 0]
                loss = bradley_terry_loss(scores[: batch // 2], scores[batch // 2:]).mean()
            else:  # dpo: chosen and rejected in one forward pass
                logps = sequence_logprobs(model, Batch)
                zeros = torch.zeros(batch // 2)
                loss = dpo_loss(logps[: batch // 2], logps[batch // 2:], zeros, zeros, 0.1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        for _ in range(3):
            step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        elapsed = time.perf_counter() - start
        tokens = batch * length * steps
    return {"step": kind, "tokens_per_s": tokens / elapsed,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.threads, args.steps)))
        return
    print(f"default embedded model, {args.threads} thread(s), batch 32 x 48 tokens")
    print(f"{'step':10} {'tokens/s':>10} {'peak RSS MiB':>13}")
    for kind in ("sft", "reward", "dpo", "generate"):
        out = subprocess.run([sys.executable, __file__, "--one", kind, "--threads",
                              str(args.threads), "--steps", str(args.steps)],
                             capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{row['step']:10} {row['tokens_per_s']:10.0f} {row['peak_rss_mib']:13.0f}")


if __name__ == "__main__":
    main()
