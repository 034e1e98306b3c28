"""prefpipe's DPO (and reward-model) training step against a plain-torch floor, s/step.

The floor is the least a step can do on the same model and the same batches: one concatenated
forward of chosen and rejected rows, log-probs gathered at the response tokens, the sigmoid DPO
loss (the reward model: Bradley-Terry on the scalar head), backward, AdamW. Its batches are built
before timing starts; under bf16 it computes attention as prefpipe does there (eager matmuls:
`prefpipe.train.precision.attention_for`). prefpipe's step is the real `train_dpo` /
`train_reward_model` loop (batching, collate, grad clipping, schedule, progress, history), timed
between consecutive step callbacks. Both start from the same weights; repeats alternate between
them, and which goes first, so load from other processes falls on both. Each figure is the median
over repeats of the median step of a repeat; --clock cpu counts this process's CPU seconds (steadier
than wall time on a shared machine, with --threads 1).

Run: .venv/bin/python bench/training_floor.py [--threads 1] [--precision fp32,bf16]
     [--trainer dpo,reward] [--steps 30] [--repeats 3] [--batch 8] [--clock wall|cpu] [--profile]
"""
from __future__ import annotations

import argparse
import copy
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
CLOCK = [time.perf_counter]  # --clock cpu: time.process_time (this process's CPU seconds)
WORDS = ("the answer is sum two four yes no maybe caffeine blocks sleepy plants need light water "
         "because first then so it".split())


def make_world(args):
    """Tokenizer, the embedded-size GPT-2, and pairs of realistic lengths (prompts 6-20 words,
    responses 5-40 words, so batches carry padding as the pipeline's do)."""
    from prefpipe.config.schema import ModelParams, Params
    from prefpipe.models.io import build_embedded_lm
    from prefpipe.world.tokenizer import train_tokenizer

    rng = random.Random(0)
    text = lambda lo, hi: " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))  # noqa: E731
    tokenizer = train_tokenizer([text(20, 40) for _ in range(400)], Params().model.vocab_size)
    model_params = ModelParams(n_layer=args.n_layer, n_embd=args.n_embd)
    lm = build_embedded_lm(model_params, tokenizer, 0)
    pairs = [{"prompt": text(6, 20), "chosen": text(5, 40), "rejected": text(5, 40)}
             for _ in range(args.batch * args.steps)]
    return tokenizer, lm, pairs, model_params.n_positions


def reward_model_from(lm):
    from transformers import GPT2ForSequenceClassification

    config = copy.deepcopy(lm.config)
    config.num_labels = 1
    return GPT2ForSequenceClassification(config)


def optim_params(args):
    from prefpipe.config.schema import OptimParams

    return OptimParams(epochs=1.0, batch_size=args.batch, lr=1e-4, warmup_steps=1)


def prefpipe_run(trainer, model, tokenizer, pairs, max_length, precision, args) -> list[float]:
    """Per-step seconds of prefpipe's own loop (between consecutive step callbacks)."""
    import torch

    from prefpipe.config.schema import DPOParams, RewardParams
    from prefpipe.train.dpo import train_dpo
    from prefpipe.train.loop import TrainContext
    from prefpipe.train.reward import train_reward_model

    stamps: list[float] = []
    context = TrainContext(precision=precision, callbacks=[lambda info: stamps.append(CLOCK[0]())])
    if trainer == "dpo":
        zeros = torch.zeros(len(pairs))
        train_dpo(model, tokenizer, pairs, zeros, zeros, DPOParams(optim=optim_params(args)),
                  max_length, 0, context)
    else:
        train_reward_model(model, tokenizer, pairs, RewardParams(optim=optim_params(args), dropout=0.0),
                           max_length, 0, context)
    return [b - a for a, b in zip(stamps, stamps[1:])]


def floor_batches(tokenizer, pairs, max_length, args):
    """The batches prefpipe's loop visits (same order), collated up front."""
    from prefpipe.train.common import epoch_batches
    from prefpipe.train.reward import encode_pairs, pair_batch

    with encode_pairs(tokenizer, pairs) as data:
        return [pair_batch(tokenizer, data, idx, max_length)
                for idx in epoch_batches(len(pairs), args.batch, 1.0, 0)]


def floor_run(trainer, model, batches, precision, beta: float = 0.1) -> list[float]:
    """Per-step seconds of the hand-written step."""
    import torch

    from prefpipe.train.precision import attention_for

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)  # as prefpipe's
    times = []
    with attention_for(model, precision, "cpu"):  # the faster attention, as prefpipe picks it
        for batch in batches:
            times.append(floor_step(trainer, model, optimizer, batch, precision, beta))
    return times


def floor_step(trainer, model, optimizer, batch, precision, beta) -> float:
    """One hand-written step -> its seconds."""
    import torch
    import torch.nn.functional as F

    began = CLOCK[0]()
    half = batch.input_ids.shape[0] // 2
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    if trainer == "dpo":
        logps = F.log_softmax(out[:, :-1].float(), -1).gather(-1, batch.input_ids[:, 1:, None]).squeeze(-1)
        seq = (logps * batch.response_mask[:, 1:]).sum(-1)
        loss = -F.logsigmoid(beta * (seq[:half] - seq[half:])).mean()  # reference log-probs 0
    else:
        rewards = out.squeeze(-1).float()
        loss = -F.logsigmoid(rewards[:half] - rewards[half:]).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return CLOCK[0]() - began


def compare(trainer: str, precision: str, world, args) -> tuple[float, float]:
    tokenizer, lm, pairs, max_length = world
    base = lm if trainer == "dpo" else reward_model_from(lm)
    batches = floor_batches(tokenizer, pairs, max_length, args)
    runs = {"ours": lambda: prefpipe_run(trainer, copy.deepcopy(base), tokenizer, pairs, max_length,
                                         precision, args),
            "floor": lambda: floor_run(trainer, copy.deepcopy(base), batches, precision)}
    medians = {"ours": [], "floor": []}
    for repeat in range(args.repeats):  # which goes first alternates
        for name in ("ours", "floor") if repeat % 2 == 0 else ("floor", "ours"):
            medians[name].append(statistics.median(runs[name]()[1:]))
    return statistics.median(medians["ours"]), statistics.median(medians["floor"])


def profile(trainer: str, precision: str, world, args) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    tokenizer, lm, pairs, max_length = world
    base = lm if trainer == "dpo" else reward_model_from(lm)
    for name, run in (("prefpipe", lambda m: prefpipe_run(trainer, m, tokenizer, pairs, max_length,
                                                          precision, args)),
                      ("floor", lambda m: floor_run(trainer, m, floor_batches(
                          tokenizer, pairs, max_length, args), precision))):
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            run(copy.deepcopy(base))
        print(f"\n{trainer} {precision} {name}: {args.steps} steps")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precision", default="fp32,bf16")
    parser.add_argument("--trainer", default="dpo", help="dpo, reward or both: dpo,reward")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8, help="pairs per step")
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: process CPU time, steadier on a shared machine (with --threads 1)")
    parser.add_argument("--profile", action="store_true", help="torch.profiler tables, no timing")
    args = parser.parse_args()

    import torch
    import transformers

    torch.set_num_threads(args.threads)
    CLOCK[0] = time.process_time if args.clock == "cpu" else time.perf_counter
    transformers.utils.logging.set_verbosity_error()
    world = make_world(args)
    n_params = sum(p.numel() for p in world[1].parameters()) / 1e6
    print(f"GPT-2 {n_params:.2f}M params, batch {args.batch} pairs, {args.threads} thread(s), "
          f"{args.clock} clock; median of {args.repeats} x {args.steps} steps")
    print(f"{'step':8} {'precision':9} {'prefpipe s':>10} {'floor s':>9} {'ratio':>6}")
    for trainer in args.trainer.split(","):
        for precision in args.precision.split(","):
            if args.profile:
                profile(trainer, precision, world, args)
                continue
            ours, floor = compare(trainer, precision, world, args)
            print(f"{trainer:8} {precision:9} {ours:10.4f} {floor:9.4f} {ours / floor:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
