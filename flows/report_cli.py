"""`prefpipe report`: the workspace's evaluation headline and gate verdicts, or several runs
compared on the reward-vs-KL frontier.

    prefpipe report                      # headline + gates; exit 2 when a gate failed
    prefpipe report --compare A B [...] [--out reports/compare.html]

A name given to --compare is a folder collected by `python -m prefpipe.evaluate.experiments
collect` (NAME itself, or docs/results/NAME, holding evaluate.json), else a DVC experiment, a
branch or commit, or "workspace" as `dvc exp show --json` lists them. The page and the text come
from prefpipe/evaluate/compare_report.py; this module only reads files and runs dvc."""
from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from flows.env import ROOT, command_environment
from prefpipe.errors import PrefpipeError

EVALUATION, GATES = "evaluate.json", "gates.json"  # in metrics/ of a run, or a collected folder
REPORTS = ("reports/evaluation.md", "reports/evaluation.html")


def read_json(path: Path) -> dict | None:
    """A metrics file's values, None when it is missing; a broken file is one error line."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise PrefpipeError(f"{path}: not JSON ({err}); rerun the stage that writes it") from err


def cmd_report(args) -> int:
    """Print the headline; exit 0 when the gates passed or did not run, 2 when one failed."""
    from prefpipe.evaluate.compare_report import failed_gates, headline_lines

    if args.compare:
        return compare(args.compare, Path(args.into), Path(args.out))
    metrics = read_json(ROOT / "metrics" / EVALUATION)
    if metrics is None:
        raise PrefpipeError(f"{ROOT / 'metrics' / EVALUATION}: no evaluation yet; run `prefpipe run` "
                            "(or `dvc repro evaluate`) first")
    gates = read_json(ROOT / "metrics" / GATES)
    for line in headline_lines(metrics, gates):
        print(line)
    for path in REPORTS:
        missing = "" if (ROOT / path).exists() else " (not written yet)"
        print(f"{'report':30}: {ROOT / path}{missing}")
    return 2 if failed_gates(gates) else 0


def compare(names: Sequence[str], into: Path, out: Path) -> int:
    """Each named run's metrics (a collected folder, else `dvc exp show`), the markdown table on
    stdout, the page at `out`."""
    from prefpipe.evaluate.compare_report import compare_markdown, compare_page
    from prefpipe.evaluate.html_report import write_html_report

    runs = {name: run for name in names if (run := collected_run(name, into)) is not None}
    wanted = [name for name in names if name not in runs]
    if wanted:
        found = dvc_runs(wanted)
        runs = {name: runs.get(name) or found[name] for name in names}
    print(compare_markdown(runs), end="")
    page = write_html_report(ROOT / out, compare_page(runs))
    print(f"page: {page}")
    return 0


def collected_run(name: str, into: Path) -> dict | None:
    """A folder of `experiments collect` (NAME, or INTO/NAME) holding evaluate.json, else None."""
    for folder in (ROOT / name, ROOT / into / name):
        metrics = read_json(folder / EVALUATION) if folder.is_dir() else None
        if metrics is not None:
            return {"metrics": metrics, "gates": read_json(folder / GATES), "source": str(folder)}
    return None


def dvc_runs(names: Sequence[str]) -> dict[str, dict]:
    """The named runs from `dvc exp show --json`: the baseline's experiments first, every commit's
    (`--all-commits`) when a name is not among them. An unknown name is one error line."""
    runs: dict[str, dict] = {}
    for extra in ((), ("--all-commits",)):
        try:
            listed = exp_show_runs(exp_show(extra))
        except PrefpipeError as err:
            raise PrefpipeError(f"{', '.join(map(repr, names))}: no collected folder (NAME or "
                                f"--into/NAME holding {EVALUATION}), and {err}") from err
        runs = {name: run for name in names if (run := find(listed, name)) is not None}
        if len(runs) == len(names):
            return runs
    missing = [name for name in names if name not in runs]
    known = ", ".join(sorted(k for k in listed if not is_commit(k))) or "none"
    raise PrefpipeError(f"no collected folder or DVC experiment named {', '.join(map(repr, missing))}; "
                        f"`dvc exp show` lists: {known}; folders are looked for as NAME and under "
                        "--into (docs/results)")


def exp_show(extra: Iterable[str] = ()) -> list:
    """`dvc exp show --json` run in the project, parsed."""
    command = ["dvc", "exp", "show", "--json", *extra]
    try:
        done = subprocess.run(command, cwd=ROOT, env=command_environment(), capture_output=True,
                              text=True, timeout=600)
    except FileNotFoundError as err:
        raise PrefpipeError("`dvc` not found: install the project (`pip install .`) to compare "
                            "experiments, or compare collected folders") from err
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise PrefpipeError(f"`{' '.join(command)}` failed (exit {done.returncode}): {last}")
    try:
        return json.loads(done.stdout or "[]")
    except json.JSONDecodeError as err:
        raise PrefpipeError(f"`{' '.join(command)}` printed no JSON: {err}") from err


def _metrics_file(data: dict, name: str) -> dict | None:
    """One metrics file's values from an exp-show entry's `metrics` ({path: {"data": {...}}})."""
    files = (data or {}).get("metrics") or {}
    for path, entry in files.items():
        if path == f"metrics/{name}" or path.endswith(f"/metrics/{name}"):
            return (entry or {}).get("data")
    return None


def exp_show_runs(rows: list) -> dict[str, dict]:
    """Every row of DVC 3's `exp show --json` (a list of commits, the workspace first, each with
    `experiments`: [{"name", "revs": [rows]}]) that has evaluation metrics, keyed by its name (the
    experiment's, the branch's, or "workspace") and by its full commit; values as collected_run's."""
    out: dict[str, dict] = {}

    def add(row: dict) -> None:
        metrics = _metrics_file(row.get("data"), EVALUATION)
        if metrics is None:
            return
        rev = str(row.get("rev", ""))
        source = f"dvc exp {row.get('name') or rev[:7]} ({rev[:7]})" if is_commit(rev) else f"dvc {rev}"
        run = {"metrics": metrics, "gates": _metrics_file(row.get("data"), GATES), "source": source}
        for key in {row.get("name") or rev, rev} - {""}:
            out.setdefault(str(key), run)

    for commit in rows or []:
        add(commit)
        for experiment in commit.get("experiments") or []:
            for row in experiment.get("revs") or []:
                add(row)
    return out


def find(listed: dict[str, dict], name: str) -> dict | None:
    """A run by its name or full commit, or by a commit prefix of at least 7 characters."""
    if name in listed:
        return listed[name]
    matches = {id(run): run for key, run in listed.items()
               if len(name) >= 7 and is_commit(key) and key.startswith(name)}
    return next(iter(matches.values())) if len(matches) == 1 else None


def is_commit(key: str) -> bool:
    """A full git commit id (40 hex digits)."""
    return len(key) == 40 and all(c in "0123456789abcdef" for c in key)


def add_report_command(sub) -> None:
    """Register `prefpipe report` on the CLI's subparsers."""
    report = sub.add_parser("report", help="the evaluation headline and gates (exit 2 on a failed "
                                           "gate), or --compare runs on the reward-vs-KL frontier",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    report.add_argument("--compare", nargs="+", metavar="EXP",
                        help="DVC experiments or collected folders (docs/results/NAME) to compare")
    report.add_argument("--out", default="reports/compare.html", help="the comparison page")
    report.add_argument("--into", default="docs/results", help="where collected runs are")
    report.set_defaults(func=cmd_report)
