"""Critic throughput: rule-judge and HTTP-judge judgments/s on default-world pairs.

The rule judge runs in process. The HTTP judge talks to the tests' OpenAI-compatible server
(tests/label/critic/openai_server.py) in its own process on loopback, first with a fresh cache (every
judgment is a request, `concurrency` in flight), then again with that cache warm (no requests).
Each pair is two judgments (both orders).

Run: .venv/bin/python bench/labeling_critic.py [--n 2000] [--concurrency 8]"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prefpipe.config.schema import WorldParams  # noqa: E402
from prefpipe.label.critic import critic_bias, critic_gold_agreement, critique, load_constitution  # noqa: E402
from prefpipe.label.critic.http_judge import HttpJudge  # noqa: E402
from prefpipe.label.critic.rule_judge import RuleJudge  # noqa: E402
from prefpipe.label.types import PairToLabel  # noqa: E402
from prefpipe.world.prompts import all_prompts  # noqa: E402
from prefpipe.world.responses import render, sample_style  # noqa: E402

SERVER = ROOT / "tests" / "label" / "critic" / "openai_server.py"


def world_pairs(n: int, seed: int = 0):
    """n pairs of two corpus-styled responses to distinct world prompts (cycled when n is large)."""
    rng = random.Random(seed)
    prompts = all_prompts(WorldParams().max_operand)
    rng.shuffle(prompts)
    pairs, world = [], {}
    for i in range(n):
        prompt = prompts[i % len(prompts)]
        a, b = (render(prompt, sample_style(prompt.family, WorldParams(), rng), rng) for _ in range(2))
        pairs.append(PairToLabel(f"b{i}", prompt.prompt_id, prompt.family, a, True, b, True, prompt.prompt))
        world[prompt.prompt_id] = prompt
    return pairs, world


def timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def bench_critic(n: int, concurrency: int = 8) -> dict:
    """Judgments/s of the rule judge and of the HTTP judge (fresh cache, then warm cache) on n pairs."""
    pairs, world = world_pairs(n)
    constitution = load_constitution(None)
    report = {"pairs": n, "judgments": 2 * n}
    for verbosity in (0.0, 0.3):
        result, seconds = timed(lambda v=verbosity: critique(pairs, world, constitution,
                                                               RuleJudge(verbosity_bias=v), 0, 0.1))
        key = f"rule_verbosity_{verbosity:g}"
        report[key] = {"judgments_per_s": round(2 * n / seconds),
                       "gold_agreement": critic_gold_agreement(pairs, result.labels, world),
                       **critic_bias(pairs, result.judgments)}
    server = subprocess.Popen([sys.executable, str(SERVER), "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().split()[-1]
        with tempfile.TemporaryDirectory() as tmp:
            cache = str(Path(tmp) / "judge.sqlite")
            with HttpJudge(base_url, "bench-judge", concurrency=concurrency, cache_path=cache) as judge:
                _, fresh = timed(lambda: critique(pairs, world, constitution, judge, 0, 0.1))
                sent = judge.requests_sent
                _, warm = timed(lambda: critique(pairs, world, constitution, judge, 0, 0.1))
            report["http_fresh_cache"] = {"judgments_per_s": round(2 * n / fresh), "requests": sent,
                                          "concurrency": concurrency}
            report["http_warm_cache"] = {"judgments_per_s": round(2 * n / warm),
                                         "requests": judge.requests_sent - sent}
    finally:
        server.terminate()
        server.wait(timeout=10)
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="pairs (each judged in both orders)")
    parser.add_argument("--concurrency", type=int, default=8, help="HTTP requests in flight")
    args = parser.parse_args()
    print(json.dumps(bench_critic(args.n, args.concurrency), indent=2))
