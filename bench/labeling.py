"""Labeling throughput in one run: critic judgments/s (rule judge; HTTP judge against a local
OpenAI-compatible server), verifier checks/s (math; sandboxed code), and the annotation app's
median and p95 submit latency under 20 concurrent annotators.

Run: .venv/bin/python bench/labeling.py [--pairs 2000] [--checks 200] [--annotators 20]
(`make bench` runs it after the training bench.)"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labeling_app import bench_app  # noqa: E402
from labeling_critic import bench_critic  # noqa: E402
from labeling_verifiers import bench_verifiers  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2000, help="critic: pairs judged (2 judgments each)")
    parser.add_argument("--checks", type=int, default=200, help="verifiers: candidates checked")
    parser.add_argument("--workers", type=int, default=2, help="verifiers: sandboxes in parallel")
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--submits-each", type=int, default=25)
    args = parser.parse_args()

    critic = bench_critic(args.pairs)
    verifiers = bench_verifiers(args.checks, args.workers)
    app = bench_app(args.annotators, args.submits_each)
    rows = [
        ("critic, rule judge", f"{critic['rule_verbosity_0']['judgments_per_s']:,} judgments/s"),
        ("critic, HTTP judge (loopback, fresh cache)",
         f"{critic['http_fresh_cache']['judgments_per_s']:,} judgments/s "
         f"({critic['http_fresh_cache']['concurrency']} in flight)"),
        ("critic, HTTP judge (warm cache)", f"{critic['http_warm_cache']['judgments_per_s']:,} judgments/s, "
                                            f"{critic['http_warm_cache']['requests']} requests"),
        ("verifier, math", f"{verifiers['math_checks_per_s']:,.0f} checks/s"),
        ("verifier, code in the sandbox", f"{verifiers['sandboxed_code_checks_per_s']:,.1f} checks/s "
                                          f"({verifiers['sandbox']}, {args.workers} workers, "
                                          f"{1000 * verifiers['sandbox_mean_wall_s']:.0f} ms each)"),
        ("sandbox start-up, trivial run (median)",
         ", ".join(f"{mode} {ms:.0f} ms" for mode, ms in verifiers["startup_median_ms"].items())),
        (f"annotation app, {app['annotators']} annotators",
         f"submit median {app['median_ms']:.0f} ms, p95 {app['p95_ms']:.0f} ms, "
         f"{app['submits_per_s']:.1f} submits/s, {app['labels_stored']} labels stored"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(json.dumps({"critic": critic, "verifiers": verifiers, "app": app}, indent=2, default=str))


if __name__ == "__main__":
    main()
