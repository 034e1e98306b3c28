"""Verifier throughput: math answer checks/s, sandboxed code checks/s (unique candidates, cache off)
and cached code checks/s, on responses rendered from the default world; and the sandbox's start-up
cost: the median wall time of a trivial run, with bubblewrap and on the fallback layers.

Run: .venv/bin/python bench/labeling_verifiers.py [--n 200] [--workers 2] [--fallback]
(--fallback: the code checks without bubblewrap, as where it does not work)"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def bench_verifiers(n: int, workers: int, bubblewrap: bool = True) -> dict:
    """Time n math checks, n unique sandboxed code runs (cache off) and the same n again cached."""
    from prefpipe.verify.math_answer import math_reward
    from prefpipe.verify.sandbox import SandboxLimits, clear_cache, isolation, run_many
    from prefpipe.verify.verifiers import code_part, world_code_tests
    from prefpipe.world.prompts import all_prompts
    from prefpipe.world.responses import Style, render

    rng = random.Random(0)
    world = all_prompts(9)
    arithmetic = [p for p in world if p.family == "arithmetic"]
    code = [p for p in world if p.family == "code"]
    math_items = []
    for k in range(n):
        prompt = rng.choice(arithmetic)
        response = render(prompt, Style(wrong=rng.random() < 0.5), rng)
        math_items.append((response, f"{prompt.meta['answer']} + {k} - {k}"))  # unique: no cache hits
    start = time.perf_counter()
    math_rewards = [math_reward(response, reference) for response, reference in math_items]
    math_s = time.perf_counter() - start

    jobs = []
    for k in range(n):
        prompt = rng.choice(code)
        body = code_part(render(prompt, Style(wrong=rng.random() < 0.5), rng))
        jobs.append((f"{body}\n# candidate {k}\n", world_code_tests(prompt)))  # unique source per job
    limits = SandboxLimits(bubblewrap=bubblewrap)
    clear_cache()
    start = time.perf_counter()
    results = run_many(jobs, limits, workers, use_cache=False)
    sandbox_s = time.perf_counter() - start
    run_many(jobs, limits, workers)  # fill the cache
    start = time.perf_counter()
    run_many(jobs, limits, workers)
    cached_s = time.perf_counter() - start
    statuses = {s: sum(r.status == s for r in results) for s in {r.status for r in results}}
    return {"n": n, "workers": workers, "sandbox": isolation(limits),
            "math_checks_per_s": round(n / math_s, 1), "math_mean_reward": round(sum(math_rewards) / n, 3),
            "sandboxed_code_checks_per_s": round(n / sandbox_s, 1),
            "cached_code_checks_per_s": round(n / cached_s, 1),
            "sandbox_mean_wall_s": round(sum(r.wall_s for r in results) / n, 4), "statuses": statuses,
            "startup_median_ms": bench_startup(max(20, n // 4))}


def bench_startup(runs: int) -> dict:
    """Median wall (ms) of `runs` trivial runs, one at a time: with bubblewrap (where it works) and
    on the fallback layers; the difference is bubblewrap's start-up cost per run."""
    from prefpipe.verify.sandbox import BUBBLEWRAP, SandboxLimits, isolation, run_tests

    medians = {}
    for limits in (SandboxLimits(), SandboxLimits(bubblewrap=False)):
        if limits.bubblewrap and isolation(limits) != BUBBLEWRAP:
            continue
        walls = sorted(run_tests(f"x = {k}\n", ["assert x >= 0"], limits).wall_s for k in range(runs))
        medians[isolation(limits)] = round(1000 * statistics.median(walls), 1)
    return medians


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fallback", action="store_true", help="code checks without bubblewrap")
    args = parser.parse_args()
    print(json.dumps(bench_verifiers(args.n, args.workers, bubblewrap=not args.fallback), indent=2))
