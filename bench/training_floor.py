"""prefpipe's DPO, reward-model and SFT training steps against a plain-torch floor, s/step.

The floor is the least a step can do on the same model and the same batches: one concatenated
forward of chosen and rejected rows, log-probs gathered at the response tokens, the sigmoid DPO
loss (the reward model: Bradley-Terry on the scalar head), backward, AdamW. Its batches are built
before timing starts; under bf16 it computes attention as prefpipe does there (eager matmuls:
`prefpipe.train.precision.attention_for`). prefpipe's step is the real `train_dpo` /
`train_reward_model` loop (batching, collate, grad clipping, schedule, progress, history), timed
between consecutive step callbacks. SFT (bench/floor_sft.py) runs on the default world's real
corpus in the sft stage's batches and order, against several floors; it also prints the padding of
one epoch of those batches, and with --profile a torch.profiler view of one step
(bench/floor_profile.py). All runs start from the same weights; repeats rotate which runs first
and, with several --threads, alternate the thread counts (precisions are interleaved too), so load
from other processes falls on all. Each figure is the median over repeats of the median step of a
repeat, as wall seconds and as this process's CPU seconds (steadier than wall on a shared machine;
at 2 threads it counts both threads, spin-waits included).

Run: .venv/bin/python bench/training_floor.py [--threads 1,2] [--precision fp32,bf16]
     [--trainer dpo,reward,sft] [--steps 30] [--repeats 3] [--batch 8] [--floors plain,head,split2]
     [--profile]
"""
from __future__ import annotations

import argparse
import copy
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from floor_sft import (  # noqa: E402
    floor_sft_batches,
    floor_sft_run,
    make_sft_world,
    now,
    others_load,
    padding_report,
    prefpipe_sft_run,
    since,
)

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


def prefpipe_run(trainer, model, tokenizer, pairs, max_length, precision, args, groups: int = 1
                 ) -> list[float]:
    """Per-step seconds of prefpipe's own loop (between consecutive step callbacks), its batches'
    rows as `groups` length-sorted parts (runtime.length_groups)."""
    import torch

    from prefpipe.config.schema import DPOParams, RewardParams
    from prefpipe.train.dpo import train_dpo
    from prefpipe.train.loop import TrainContext
    from prefpipe.train.reward import train_reward_model

    stamps: list[tuple[float, float]] = []
    context = TrainContext(precision=precision, callbacks=[lambda info: stamps.append(now())],
                           length_groups=groups)
    if trainer == "dpo":
        zeros = torch.zeros(len(pairs))
        train_dpo(model, tokenizer, pairs, zeros, zeros, DPOParams(optim=optim_params(args)),
                  max_length, 0, context)
    else:
        train_reward_model(model, tokenizer, pairs, RewardParams(optim=optim_params(args), dropout=0.0),
                           max_length, 0, context)
    return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(stamps, stamps[1:])]


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


def floor_step(trainer, model, optimizer, batch, precision, beta) -> tuple[float, float]:
    """One hand-written step -> its (wall, cpu) seconds."""
    import torch
    import torch.nn.functional as F

    began = now()
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
    return since(began)


def pair_runs(trainer: str, precision: str, world, args) -> dict:
    """DPO / reward: name -> a run from fresh weights -> per-step (wall, cpu) seconds."""
    tokenizer, lm, pairs, max_length = world
    base = lm if trainer == "dpo" else reward_model_from(lm)
    batches = floor_batches(tokenizer, pairs, max_length, args)
    runs = {"prefpipe": lambda: prefpipe_run(trainer, copy.deepcopy(base), tokenizer, pairs,
                                             max_length, precision, args)[1:],
            "floor": lambda: floor_run(trainer, copy.deepcopy(base), batches, precision)[1:]}
    if args.length_groups > 1:
        runs[f"groups{args.length_groups}"] = lambda: prefpipe_run(
            trainer, copy.deepcopy(base), tokenizer, pairs, max_length, precision, args,
            args.length_groups)[1:]
    return runs


def sft_runs(precision: str, world, args) -> dict:
    """SFT: prefpipe's train_sft and each floor of --floors, on the stage's first batches."""
    runs = {"prefpipe": lambda: prefpipe_sft_run(world, copy.deepcopy(world.lm), precision,
                                                 args.steps)[0]}
    if args.length_groups > 1:
        runs[f"groups{args.length_groups}"] = lambda: prefpipe_sft_run(
            world, copy.deepcopy(world.lm), precision, args.steps, args.length_groups)[0]
    for floor in args.floors.split(","):
        batches = floor_sft_batches(world, floor, args.steps)
        runs[floor] = lambda b=batches, f=floor: floor_sft_run(world, copy.deepcopy(world.lm), b,
                                                               precision, f)[0]
    return runs


def compare(runs: dict, threads: list[int], repeats: int) -> dict:
    """(threads, *key of runs) -> median over repeats of (a repeat's median step (wall, cpu) seconds,
    the cores other processes used meanwhile). Each repeat rotates which run goes first and
    alternates the order of the thread counts."""
    import torch

    keys, medians = list(runs), {}
    for repeat in range(repeats):
        for n_threads in threads if repeat % 2 == 0 else threads[::-1]:
            torch.set_num_threads(n_threads)
            first = repeat % len(keys)
            for key in keys[first:] + keys[:first]:
                steps, others = others_load(runs[key])
                medians.setdefault((n_threads, *key), []).append(
                    (*(statistics.median(clock) for clock in zip(*steps)), others))
    return {key: tuple(statistics.median(clock) for clock in zip(*values))
            for key, values in medians.items()}


def print_comparison(trainer: str, result: dict, threads: list[int], precisions: list[str]) -> None:
    """Rows per (threads, precision, run); then the 1 -> 2 thread and the fp32 -> bf16 ratios."""
    names = list(dict.fromkeys(name for _, _, name in result))
    for t in threads:
        for precision in precisions:
            ours = result[(t, precision, "prefpipe")][0]
            for name in names:
                wall, cpu, others = result[(t, precision, name)]
                print(f"{trainer:6} {precision:5} {t:3} {name:9} {wall:9.4f} {cpu:9.4f} "
                      f"{wall / ours:8.2f}x {others:6.2f}", flush=True)
    low, high = min(threads), max(threads)
    for precision in precisions if low != high else ():
        walls = {t: {name: result[(t, precision, name)][0] for name in names} for t in (low, high)}
        gains = ", ".join(f"{name} {walls[low][name] / walls[high][name]:.2f}x" for name in names)
        print(f"{trainer:6} {precision:5} wall speed-up {low} -> {high} threads: {gains}", flush=True)
    for t in threads if {"fp32", "bf16"} <= set(precisions) else ():
        gains = ", ".join(f"{name} {result[(t, 'fp32', name)][0] / result[(t, 'bf16', name)][0]:.2f}x"
                          for name in names)
        print(f"{trainer:6} {t} thread(s): bf16 wall speed-up over fp32: {gains}", flush=True)


def print_padding(world) -> None:
    pad = padding_report(world)
    print(f"SFT: {len(world.examples)} examples, batch {world.optim.batch_size}; one epoch in the "
          f"stage's order = {pad['batches']} batches: {pad['real_tokens']} real tokens in "
          f"{pad['positions']} positions (mean width {pad['mean_width']:.1f}); padded share "
          + ", ".join(f"{v:.1%} as {k} length-sorted micro-batch(es)" for k, v in pad['pad_share'].items())
          + f"; collate {pad['collate_s'][0] * 1e3:.2f} ms wall / {pad['collate_s'][1] * 1e3:.2f} ms"
          " CPU per batch (median)", flush=True)


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
    parser.add_argument("--threads", default="1", help="torch threads; several (1,2): A/B in one process")
    parser.add_argument("--precision", default="fp32,bf16")
    parser.add_argument("--trainer", default="dpo", help="dpo, reward, sft or several: dpo,reward,sft")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8, help="pairs per step (dpo, reward; sft: the "
                        "stage's batch, sft.optim.batch_size)")
    parser.add_argument("--floors", default="plain,head,split2",
                        help="sft floors: plain, head, split2, split4, nodrop (bench/floor_sft.py)")
    parser.add_argument("--length-groups", type=int, default=4,
                        help="also time prefpipe with runtime.length_groups N (1: not)")
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--profile", action="store_true", help="torch.profiler tables, no timing")
    args = parser.parse_args()

    import torch
    import transformers

    threads = [int(t) for t in args.threads.split(",")]
    torch.set_num_threads(threads[0])
    transformers.utils.logging.set_verbosity_error()
    trainers = args.trainer.split(",")
    pair_world = make_world(args) if set(trainers) - {"sft"} else None
    sft_world = make_sft_world(args.n_layer, args.n_embd) if "sft" in trainers else None
    lm = (pair_world or (None, sft_world.lm))[1]
    print(f"GPT-2 {sum(p.numel() for p in lm.parameters()) / 1e6:.2f}M params, {args.threads} "
          f"thread(s); median of {args.repeats} x {args.steps} steps; wall and CPU s/step")
    if sft_world is not None:
        print_padding(sft_world)
    print(f"{'step':6} {'prec':5} {'thr':3} {'run':9} {'wall s':>9} {'cpu s':>9} {'wall/ours':>9} "
          f"{'others':>6}  (others: cores other processes kept busy meanwhile)")
    precisions = args.precision.split(",")
    for trainer in trainers:
        if args.profile:
            for precision in precisions:
                if trainer == "sft":
                    from floor_profile import profile_sft
                    profile_sft(sft_world, precision)
                else:
                    profile(trainer, precision, pair_world, args)
            continue
        runs = {(precision, name): run for precision in precisions  # interleaved: A/B in one loop
                for name, run in (sft_runs(precision, sft_world, args) if trainer == "sft"
                                  else pair_runs(trainer, precision, pair_world, args)).items()}
        print_comparison(trainer, compare(runs, threads, args.repeats), threads, precisions)


if __name__ == "__main__":
    main()
