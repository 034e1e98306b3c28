"""Rows/s and peak RSS of the data path at the seed's scale (50K-500K preference pairs).

For each size N: synthetic TRL pairs of realistic lengths (prompts 30-150 words, responses 50-300,
deterministic from --seed) are imported into a DuckDB store on disk as `prefpipe label import`
does; the label stage snapshots them to preferences Parquet (`import_for_training` + the write);
the reward and DPO trainers build their datasets as they do today and one epoch of their batches
is drawn; and the DPO reference log-probs run on a --sample of pairs with params.yaml's model
(random init). Each step runs in a fresh process (bench/scale_steps.py), so each peak RSS is that
step's own. Prints a table and the issue's goals (500K imported in <= 20 s; the data path's peak
RSS at the largest N <= 1.5x that at the smallest; rows/s flat in N) and plots rows/s and peak RSS
against N (--plot; reports/ is not committed).

Run: .venv/bin/python bench/scale.py [--pairs 50000,200000,500000] [--threads 1] [--sample 2000]
     [--steps import,snapshot,...] [--workdir DIR --keep] [--plot reports/bench/scale.png]
     [--json out.json] [--baseline old.json]
     (smoke: --pairs 2000; the import alone at the goal's size: --pairs 500000 --steps import; a step
     reads what the steps before it wrote, so leave out only later ones)"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS_SCRIPT = Path(__file__).resolve().parent / "scale_steps.py"
MEASURED = ("import", "snapshot", "reward", "dpo", "logprobs")
DATA_PATH = ("import", "snapshot", "reward", "dpo")  # the steps whose memory should stay bounded
IMPORT_GOAL_S, RSS_GOAL, FLAT_GOAL = 20.0, 1.5, 0.8  # FLAT_GOAL: rows/s at max N over that at min N


def run_step(step: str, workdir: Path, n: int, args: argparse.Namespace) -> list[dict]:
    """One step in a fresh process; its phases (rows, seconds, RSS) tagged with the step and N. A
    process growing past --max-rss-gib is killed (this machine is shared) and reported as such."""
    import psutil

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "RAYON_NUM_THREADS": str(args.threads),
           "PYTHONHASHSEED": "0"}  # RAYON: the tokenizer's batch calls
    command = [sys.executable, str(STEPS_SCRIPT), step, str(workdir), str(n), "--seed", str(args.seed),
               "--threads", str(args.threads), "--sample", str(args.sample)]
    began, limit = time.perf_counter(), args.max_rss_gib * 2**30
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err, text=True,
                                 start_new_session=True)
        try:
            while child.poll() is None:
                if _rss(psutil, child.pid) > limit:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
                    return [{"phase": f"{step}: killed over {args.max_rss_gib:g} GiB", "rows": 0, "n": n,
                             "step": step, "seconds": time.perf_counter() - began, "rss_before_mib": 0,
                             "peak_mib": limit / 2**20, "killed": True}]
                time.sleep(0.2)
        finally:
            if child.poll() is None:  # interrupted: leave no orphan behind
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        sys.stderr.write(stderr[-4000:])
        raise SystemExit(f"error: step {step} at N={n} failed (exit {child.returncode}); its stderr is above")
    phases = json.loads(stdout.strip().splitlines()[-1])
    for phase in phases:
        phase.update(step=step, n=n, process_s=time.perf_counter() - began)
    return phases


def _rss(psutil, pid: int) -> int:
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def measure(sizes: list[int], workdir: Path, args: argparse.Namespace) -> list[dict]:
    """Every step at every size, in order; each size's files are removed after it (unless --keep)."""
    if set(args.steps) & {"reward", "dpo", "logprobs"}:
        run_step("tokenizer", workdir, 0, args)
    results = []
    for n in sizes:
        generated = run_step("generate", workdir, n, args)[0]
        size_mb = (workdir / f"pairs-{n}.jsonl").stat().st_size / 1e6
        print(f"N={n}: generated {size_mb:.0f} MB of TRL JSONL in {generated['seconds']:.1f} s", flush=True)
        for step in args.steps:
            for phase in run_step(step, workdir, n, args):
                results.append(phase)
                print("  " + row_text(phase), flush=True)
                if args.json:  # after every step, so a run cut short keeps what it measured
                    args.json.write_text(json.dumps(results, indent=1))
        if not args.keep:
            for leftover in workdir.glob(f"*-{n}*"):
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    return results


HEADER = f"{'phase':<34} {'N':>8} {'seconds':>8} {'rows/s':>9} {'peak RSS MiB':>12} {'RSS before':>10}"


def row_text(phase: dict) -> str:
    return (f"{phase['phase']:<34} {phase['n']:>8} {phase['seconds']:>8.2f} {rate(phase):>9.0f} "
            f"{phase['peak_mib']:>12.0f} {phase['rss_before_mib']:>10.0f}")


def rate(phase: dict) -> float:
    return phase["rows"] / max(phase["seconds"], 1e-9)


def table(results: list[dict]) -> str:
    ordered = sorted(results, key=lambda p: (MEASURED.index(p["step"]), p["phase"], p["n"]))
    return "\n".join([HEADER, "-" * len(HEADER), *map(row_text, ordered)])


def goals(results: list[dict], sizes: list[int]) -> list[str]:
    """The issue's three goals, each with its numbers and whether it is met."""
    small, large = min(sizes), max(sizes)
    lines = []
    imported = next((p for p in results if p["step"] == "import" and p["n"] == large), None)
    if imported is not None:
        verdict = "met" if imported["seconds"] <= IMPORT_GOAL_S and not imported.get("killed") else "MISSED"
        scope = "" if large == 500_000 else f" (goal is for 500000; measured N={large})"
        lines.append(f"import of {large} pairs: {imported['seconds']:.1f} s, goal <= {IMPORT_GOAL_S:.0f} s: "
                     f"{verdict}{scope}")

    def peak(n: int) -> float:
        return max(p["peak_mib"] for p in results if p["n"] == n and p["step"] in DATA_PATH)

    if any(p["step"] in DATA_PATH for p in results):
        ratio = peak(large) / peak(small)
        verdict = "met" if ratio <= RSS_GOAL else "MISSED"
        lines.append(f"data path peak RSS: {peak(small):.0f} MiB at {small}, {peak(large):.0f} MiB at "
                     f"{large}: {ratio:.2f}x, goal <= {RSS_GOAL}x: {verdict}")
    lines.append(f"rows/s at {large} over rows/s at {small} (flat: >= {FLAT_GOAL}), and peak RSS:")
    for name in dict.fromkeys(p["phase"] for p in results):
        at = {p["n"]: p for p in results if p["phase"] == name}
        if small in at and large in at and large != small:
            flat = rate(at[large]) / rate(at[small])
            rss = at[large]["peak_mib"] / at[small]["peak_mib"]
            lines.append(f"  {name:<34} rows/s {flat:5.2f}x ({'flat' if flat >= FLAT_GOAL else 'FALLS'}), "
                         f"peak RSS {rss:5.2f}x")
    lines += [f"  {p['phase']} at N={p['n']}: killed after {p['seconds']:.0f} s (rows/s unknown)"
              for p in results if p.get("killed")]
    return lines


def plot(results: list[dict], path: Path, threads: int, baseline: list[dict] | None = None) -> None:
    """Rows/s and peak RSS against N per phase; a `baseline` run's phases (an earlier --json) dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (speed, memory) = plt.subplots(1, 2, figsize=(13, 5))
    names = list(dict.fromkeys(p["phase"] for p in [*results, *(baseline or [])]))
    palette = plt.get_cmap("tab20")
    for run, style, suffix in ((baseline or [], "--", " (baseline)"), (results, "-", "")):
        for name in dict.fromkeys(p["phase"] for p in run):
            points = sorted((p["n"], rate(p), p["peak_mib"]) for p in run
                            if p["phase"] == name and not p.get("killed"))  # a killed step: in the table
            ns, color = [x[0] for x in points], palette(names.index(name) % 20)  # a phase: one colour
            speed.plot(ns, [x[1] for x in points], style, color=color, marker="o", label=name + suffix)
            memory.plot(ns, [x[2] for x in points], style, color=color, marker="o", label=name + suffix)
    speed.set(xscale="log", yscale="log", xlabel="preference pairs N", ylabel="rows/s",
              title=f"Throughput ({threads} thread{'s' * (threads > 1)})")
    memory.set(xscale="log", xlabel="preference pairs N", ylabel="peak RSS of the step's process (MiB)",
               title="Peak RSS")
    speed.legend(fontsize=7)
    for axis in (speed, memory):
        axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"error: --pairs {text!r}: expected comma-separated counts, e.g. 50000,200000"
                         ) from None
    if not sizes or min(sizes) < 100:
        raise SystemExit(f"error: --pairs {text!r}: give counts of at least 100")
    return sorted(set(sizes))


def parse_steps(text: str) -> list[str]:
    steps = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [step for step in steps if step not in MEASURED]
    if not steps or unknown:
        raise SystemExit(f"error: --steps {text!r}: give steps of {','.join(MEASURED)}")
    return [step for step in MEASURED if step in steps]  # in the order each needs the one before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="50000,200000,500000", help="comma-separated sizes N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch/OMP threads of every step")
    parser.add_argument("--sample", type=int, default=2000, help="pairs of the reference log-prob step")
    parser.add_argument("--steps", default=",".join(MEASURED),
                        help=f"comma-separated steps to measure, of {','.join(MEASURED)}")
    parser.add_argument("--workdir", type=Path, help="where data and stores go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files and stores")
    parser.add_argument("--plot", type=Path, default=ROOT / "reports" / "bench" / "scale.png")
    parser.add_argument("--max-rss-gib", type=float, default=16.0,
                        help="kill (and report) a step whose process grows past this")
    parser.add_argument("--json", type=Path, help="also write every phase's numbers here")
    parser.add_argument("--baseline", type=Path, help="an earlier run's --json, plotted dashed beside it")
    args = parser.parse_args()
    sizes = parse_sizes(args.pairs)
    args.steps = parse_steps(args.steps)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a TERM still runs the finally blocks
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="prefpipe-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"sizes {sizes}, {args.threads} thread(s), work in {workdir}", flush=True)
    try:
        results = measure(sizes, workdir, args)
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n" + table(results) + "\n")
    print("\n".join(goals(results, sizes)))
    baseline = json.loads(args.baseline.read_text()) if args.baseline else None
    plot(results, args.plot, args.threads, baseline)
    print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
