"""The whole DAG end to end: per-stage wall, start-up and work time, the flow's overhead, and no-op reruns.

Copies the project (the working tree, as tests/conftest.py's copy_project does) into a scratch folder
with its own git, DVC, store and Prefect home and runs `prefpipe run` there (`python -m flows.cli run`,
PREFPIPE_ROOT set to the copy). Each output line is stamped on arrival (the stages log through Prefect
line by line); per stage: Prefect's "Executing task" (a debug line of `prefect.task_runs`, switched on
here), dvc's "> cmd" (the process starts), the stage's "starting" and "done in" lines, Prefect's
"Finished in state". Start-up = process start to "starting" (Python, imports, params, torch set-up);
work = "starting" to "done"; dvc around = the rest of the task (dvc status, dvc's start-up, the stage
process's exit, hashing, the lock file); gap = the previous task's end to this one's start (Prefect).
Then, nothing changed, `prefpipe run` again and `dvc repro`, each timed whole. Last, each stage's
start-up imports alone under `python -X importtime` (its module run as __main__, run_stage stopping
where the real one logs "starting"): the top 5 packages by own time, and who pulls them in.
Goals (issue 14): the DAG <= 3 min on 2 cores, start-up <= 3 s each, a no-op rerun <= 15 s.

Prints markdown tables; writes DIR/pipeline.log (every line, stamped) and DIR/pipeline.json. Default
size: ~12 min of two cores; tiny (the tests' TINY params): a few. Run: .venv/bin/python
bench/pipeline.py [--params default|tiny] [--workdir DIR] [--no-noop]"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import TINY, copy_project, env_for, merge  # noqa: E402

GOAL_DAG_S, GOAL_STARTUP_S, GOAL_NOOP_S = 180.0, 3.0, 15.0
TASK_LINE = re.compile(r"\|\s*(\w+)\s*\| Task run '([^']+)' - (.*)$")
PROJECT = ("prefpipe", "tasks", "flows")
PREFPIPE_RUN = [sys.executable, "-m", "flows.cli", "run"]  # what the `prefpipe` script runs
# A stage's start-up alone: its module as __main__, run_stage doing what the real one does before "starting"
STARTUP_ONLY = """
import logging, os, runpy, sys, tasks._stage as s
from prefpipe.config import load_params
from prefpipe.data.preflight import check_against_data
def startup_only(name, recipe, distributed=False, uses_torch=True):
    logging.basicConfig(level=logging.INFO)
    params = load_params("params.yaml")
    check_against_data(params, "params.yaml")
    if uses_torch(params) if callable(uses_torch) else uses_torch:
        s.setup(params.runtime.threads)
    s.Store(params.store.path, params.store.lock_timeout_s)
s.run_stage = startup_only
runpy.run_module(sys.argv[1], run_name="__main__")
"""


def scratch_copy(workdir: Path, tiny: bool) -> None:
    if workdir.exists() and any(workdir.iterdir()):
        sys.exit(f"error: {workdir}: not empty; give --workdir a new or empty folder")
    copy_project(workdir)
    if tiny:
        params_file = workdir / "params.yaml"
        params_file.write_text(yaml.safe_dump(merge(yaml.safe_load(params_file.read_text()), TINY)))


def bench_env(workdir: Path) -> dict[str, str]:
    env = env_for(workdir)
    env["PREFPIPE_ROOT"] = str(workdir)
    env["PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL"] = "DEBUG"  # "Executing task ..." lines
    return env


def run_stamped(command: list[str], workdir: Path, log: Path) -> tuple[float, int, list[tuple[float, str]]]:
    """Run `command` in `workdir` (a process group of its own, stopped whole if we are interrupted);
    returns its wall seconds, exit code and output lines with their arrival times (s from start)."""
    lines: list[tuple[float, str]] = []
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=workdir, env=bench_env(workdir), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
        try:
            for line in process.stdout:
                stamp = time.monotonic() - started
                lines.append((stamp, line.rstrip("\n")))
                out.write(f"+{stamp:8.3f} {line}")
            code = process.wait()
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait()
        return time.monotonic() - started, code, lines


def task_runs(lines: list[tuple[float, str]]) -> list[dict]:
    """Each Prefect task run (one per stage run, in order) with the times of its marker lines."""
    runs: list[dict] = []
    current: dict[str, dict] = {}
    for stamp, text in lines:
        match = TASK_LINE.search(text)
        if not match:
            continue
        level, name, message = match.groups()
        if message.startswith("Created task run"):  # logged under the name before the rename
            continue
        run = current.get(name)
        if run is None or "finished" in run:
            run = current[name] = {"stage": name, "outcome": "?"}
            runs.append(run)
        marks = {"executing": message.startswith("Executing task"),
                 "cmd": message.startswith("> "),
                 "starting": re.search(r"\bstage \w+ starting\b", message),
                 "done": re.search(r"\bstage \w+ done in", message),
                 "finished": message.startswith("Finished in state"),
                 "first_out": level != "DEBUG"}
        for key, hit in marks.items():
            if hit and key not in run:
                run[key] = stamp
        said = re.search(r"\bstage \w+ done in ([\d.]+)s", message)
        if said:
            run["says_s"] = float(said.group(1))
    return runs


def outcomes(lines: list[tuple[float, str]]) -> dict[str, str]:  # the flow's "stages: {name: outcome}"
    for _, text in reversed(lines):
        found = re.search(r" - stages: (\{.*\})\s*$", text)
        if found:
            return ast.literal_eval(found.group(1))
    return {}


def _span(run: dict, a: str, b: str) -> float | None:
    return run[b] - run[a] if a in run and b in run else None


def stage_rows(lines: list[tuple[float, str]]) -> list[dict]:
    said, rows, previous_end = outcomes(lines), [], None
    for run in task_runs(lines):
        start = run.get("executing", run.get("first_out"))
        row = {"stage": run["stage"], "outcome": said.get(run["stage"], "?"),
               "wall_s": run["finished"] - start if start is not None and "finished" in run else None,
               "startup_s": _span(run, "cmd", "starting"), "work_s": _span(run, "starting", "done"),
               "says_s": run.get("says_s"), "gap_s": start - previous_end if previous_end is not None
               and start is not None else None, "start": start, "end": run.get("finished")}
        ran = "cmd" in run and "done" in run and row["wall_s"] is not None  # else all dvc and Prefect
        row["dvc_s"] = row["wall_s"] - (run["done"] - run["cmd"]) if ran else row["wall_s"]
        previous_end = run.get("finished", previous_end)
        rows.append(row)
    return rows


def parse_importtime(stderr: str, stage: str) -> dict:
    """`-X importtime` lines -> total seconds, own (self) time by top-level package, and the
    heaviest edges from a project module to an outside package (what to make lazy)."""
    entries = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, raw = line[len("import time:"):].split("|", 2)
        name = raw[1:]
        entries.append((int(own), int(cumulative), (len(name) - len(name.lstrip())) // 2, name.strip()))
    by_package: dict[str, float] = defaultdict(float)
    edges: dict[str, float] = defaultdict(float)
    stack: list[tuple[int, str]] = []
    for own, cumulative, depth, name in reversed(entries):  # importtime lists children before parents
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else f"tasks.{stage}"
        stack.append((depth, name))
        by_package[name.split(".")[0]] += own / 1e6
        if parent.split(".")[0] in PROJECT and name.split(".")[0] not in PROJECT:
            edges[f"{parent} → {name.split('.')[0]}"] += cumulative / 1e6
    top = sorted(by_package.items(), key=lambda kv: -kv[1])[:5]
    return {"import_s": sum(e[1] for e in entries if e[2] == 0) / 1e6, "top_packages": top,
            "pulled_in_by": sorted(edges.items(), key=lambda kv: -kv[1])[:3]}


def startup_imports(workdir: Path, stage: str) -> dict:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", STARTUP_ONLY, f"tasks.{stage}"],
                            cwd=workdir, env=bench_env(workdir), capture_output=True, text=True, timeout=300)
    seconds = time.monotonic() - started
    if result.returncode:
        return {"alone_s": seconds, "import_s": None, "top_packages": [], "pulled_in_by": [],
                "error": result.stderr.strip().splitlines()[-1:]}
    return {"alone_s": seconds, **parse_importtime(result.stderr, stage)}


def _s(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _met(value: float | None, goal: float) -> str:
    return "–" if value is None else ("yes" if value <= goal else f"no ({value / goal:.1f}×)")


def stage_table(rows: list[dict], imports: dict[str, dict]) -> str:
    out = ["| stage | outcome | wall s | start-up s | work s | stage says s | dvc around s | gap before s "
           "| start-up alone s | imports s | top imports (own s) |", "|" + "---|" * 11]
    for r in rows:
        imp = imports.get(r["stage"], {})
        top = ", ".join(f"{name} {sec:.1f}" for name, sec in imp.get("top_packages", []))
        out.append(f"| {r['stage']} | {r['outcome']} | {_s(r['wall_s'])} | {_s(r['startup_s'])} | "
                   f"{_s(r['work_s'])} | {_s(r['says_s'])} | {_s(r['dvc_s'])} | {_s(r['gap_s'])} | "
                   f"{_s(imp.get('alone_s'))} | {_s(imp.get('import_s'))} | {top or '–'} |")
    return "\n".join(out)


def overhead_table(rows: list[dict], wall: float) -> str:
    first = min((r["start"] for r in rows if r["start"] is not None), default=None)
    last = max((r["end"] for r in rows if r["end"] is not None), default=None)
    total = {key: sum(r[key] or 0 for r in rows) for key in ("gap_s", "dvc_s", "startup_s", "work_s")}
    parts = [("before the first stage (CLI, temporary Prefect server, flow start)", first),
             ("between stages (Prefect: one task run ends, the next starts)", total["gap_s"]),
             ("dvc around the stages (status, start-up, stage exit, hashing, lock)", total["dvc_s"]),
             ("stage start-ups (process start to 'starting')", total["startup_s"]),
             ("stage work ('starting' to 'done')", total["work_s"]),
             ("after the last stage (artifacts, summary, exit)", None if last is None else wall - last)]
    out = ["| where the run's wall time goes | s | share |", "|---|---|---|"]
    out += [f"| {what} | {_s(sec)} | {_s(None if sec is None else 100 * sec / wall, 0)}% |"
            for what, sec in parts]
    return "\n".join(out + [f"| whole run | {wall:.1f} | 100% |"])


def goals_table(wall: float, rows: list[dict], noop: dict) -> str:
    ran = [r for r in rows if r["startup_s"] is not None]
    worst = max(ran, key=lambda r: r["startup_s"], default=None)
    out = ["| goal (issue 14) | measured | target | met |", "|---|---|---|---|",
           f"| default DAG, `prefpipe run` | {wall:.1f} s | ≤ {GOAL_DAG_S:.0f} s | "
           f"{_met(wall, GOAL_DAG_S)} |"]
    if worst:
        out.append(f"| stage start-up, worst ({worst['stage']}) | {worst['startup_s']:.1f} s | "
                   f"≤ {GOAL_STARTUP_S:.0f} s | {_met(worst['startup_s'], GOAL_STARTUP_S)} |")
        over = sum(r["startup_s"] > GOAL_STARTUP_S for r in ran)
        out.append(f"| stages over the start-up goal | {over} of {len(ran)} | 0 | "
                   f"{'yes' if not over else 'no'} |")
    for what, key in (("no-op rerun, `prefpipe run`", "prefpipe_s"), ("no-op rerun, `dvc repro`", "dvc_s")):
        if key in noop:
            out.append(f"| {what} | {noop[key]:.1f} s | ≤ {GOAL_NOOP_S:.0f} s | "
                       f"{_met(noop[key], GOAL_NOOP_S)} |")
    return "\n".join(out)


def pulled_in_lines(imports: dict[str, dict]) -> str:
    return "\n".join(f"- {stage}: " + "; ".join(f"{edge} {sec:.1f} s" for edge, sec in imp["pulled_in_by"])
                     for stage, imp in imports.items() if imp.get("pulled_in_by"))


def noop_reruns(workdir: Path, log: Path) -> dict:
    """With nothing changed: `prefpipe run` (which stages ran, and their walls), `dvc repro`, and
    one `dvc status` of the whole project (the flow asks it once, as a run begins)."""
    noop: dict = {}
    noop["prefpipe_s"], noop["prefpipe_exit"], again = run_stamped(PREFPIPE_RUN, workdir, log)
    noop["prefpipe_stages"] = {r["stage"]: f"{r['outcome']} {_s(r['wall_s'])} s" for r in stage_rows(again)}
    noop["dvc_s"], noop["dvc_exit"], dvc_lines = run_stamped(["dvc", "repro"], workdir, log)
    noop["dvc_said"] = [text for _, text in dvc_lines if text.strip()][-3:]
    noop["dvc_status_s"] = run_stamped(["dvc", "status", "--json"], workdir, log)[0]
    print(f"no-op: prefpipe run {noop['prefpipe_s']:.1f} s, exit {noop['prefpipe_exit']} "
          f"({noop['prefpipe_stages']}); dvc repro {noop['dvc_s']:.1f} s, exit {noop['dvc_exit']} "
          f"({' / '.join(noop['dvc_said'])}); one `dvc status` {noop['dvc_status_s']:.1f} s",
          flush=True)
    return noop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", choices=("default", "tiny"), default="default",
                        help="params.yaml as it is, or the tests' TINY params merged in (a quick smoke run)")
    parser.add_argument("--workdir", type=Path, help="scratch copy of the project (default: a new temp dir)")
    parser.add_argument("--no-noop", action="store_true", help="skip the no-op reruns")
    args = parser.parse_args()
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="prefpipe-pipeline-"))).resolve()
    scratch_copy(workdir, args.params == "tiny")
    log = workdir / "pipeline.log"
    load = [os.getloadavg()[0]]
    print(f"scratch copy: {workdir}; every line, stamped: {log}; load {load[0]:.2f}", flush=True)
    wall, code, lines = run_stamped(PREFPIPE_RUN, workdir, log)
    print(f"prefpipe run: {wall:.1f} s, exit {code}", flush=True)
    rows = stage_rows(lines)
    noop = noop_reruns(workdir, log) if code == 0 and not args.no_noop else {}
    imports = {r["stage"]: startup_imports(workdir, r["stage"]) for r in rows}
    tables = [stage_table(rows, imports), overhead_table(rows, wall), goals_table(wall, rows, noop),
              "start-up imports pulled in by project modules (cumulative s):\n" + pulled_in_lines(imports)]
    load.append(os.getloadavg()[0])
    print("\n" + "\n\n".join(tables) + f"\n\n1-min load average at start {load[0]:.2f}, at end {load[1]:.2f} "
          f"on {os.cpu_count()} CPUs (anything above this bench's own ~1-2 skews the times)")
    (workdir / "pipeline.json").write_text(json.dumps(
        {"params": args.params, "load_avg": load, "wall_s": wall, "exit": code, "stages": rows, "noop": noop,
         "imports": imports, "tables": tables}, indent=2, default=str) + "\n")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
