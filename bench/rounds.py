"""Rounds on the default world: each round's figures, and the last published version against round 1's.

Copies the project (the working tree's files tests/conftest.py's make_repo copies, not HEAD) into a
scratch folder with its own git, DVC, store and params, runs `prepare` and `sft` once, then each round
as `dvc repro --single-item --force round && dvc repro` (the stages' output goes to DIR/rounds.log,
one progress line per round here). A round whose gate fails is reported as rejected and the next one
runs. After each round: its number, generator and published version (the store's registry), pairs
generated, preferences new this round and trained on, the reward model's gold accuracy, the gold win
rate vs SFT with its 95% interval and the KL (nats/sequence) from metrics/*.json, and its wall time.
At the end, a head-to-head on gold: the last published version's policy against round 1's on the
held-out prompts evaluation draws (evaluate.prompts, evaluate.sampling, evaluation's seed for both),
by prefpipe/evaluate/versus.py. Prints a markdown table and the head-to-head line; writes both to
DIR/rounds.json.

Threads: OMP_NUM_THREADS, when set, becomes runtime.threads (before --set). --tiny merges the tests'
TINY params (tests/conftest.py) and drops the gates (a one-layer model is there to check the
machinery, not to pass them): a few minutes. The default size takes ~20 minutes of two cores.

Run: .venv/bin/python bench/rounds.py [--rounds 3] [--workdir DIR] [--set rounds.init=previous ...]
     [--tiny]"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prefpipe.errors import PrefpipeError  # noqa: E402
from prefpipe.store import Store  # noqa: E402
from tests.conftest import TINY, copy_project, env_for, merge  # noqa: E402

COLUMNS = ("round", "status", "generator", "published", "pairs", "new prefs", "trained on",
           "RM gold acc", "gold win vs SFT [95%]", "KL nats", "wall s")


class BenchError(PrefpipeError):
    """A problem with the bench's own arguments or folder: one line, exit 2."""


def parse_sets(items: list[str]) -> dict:
    """`a.b.c=value` (value read as YAML: 3, 0.5, previous, null) -> {"a": {"b": {"c": value}}}."""
    override: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise BenchError(f"--set {item!r}: expected key=value, e.g. rounds.init=previous")
        *parents, leaf = key.split(".")
        node = override
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return override


def scratch_copy(workdir: Path, rounds: int, sets: dict, tiny: bool) -> dict:
    """The project copied into `workdir` (git init), its params set; returns the params written."""
    if workdir.exists() and any(workdir.iterdir()):
        raise BenchError(f"{workdir}: not empty; give --workdir a new or empty folder")
    copy_project(workdir)
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    if tiny:
        params = merge(params, TINY)
        params["evaluate"]["gates"] = {}
        params["evaluate"]["kl_budget"] = 1000.0
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        params["runtime"]["threads"] = max(1, int(os.environ["OMP_NUM_THREADS"]))
    params = merge(params, {"rounds": {"iterations": rounds}})
    params = merge(params, sets)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    from prefpipe.config import load_params
    load_params(workdir / "params.yaml")  # a bad --set: one line naming the key, before any work
    return params


def run_logged(workdir: Path, log: Path, *commands: list[str]) -> int:
    """Run `commands` one after another in `workdir` (stop at the first that fails), their output
    appended to `log`; returns the last exit code. Ctrl-C ends the whole tree."""
    env = env_for(workdir)
    code = 0
    with log.open("a") as out:
        for command in commands:
            out.write(f"\n$ {' '.join(command)}\n")
            out.flush()
            process = subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            try:
                code = process.wait()
            except KeyboardInterrupt:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait()
                raise
            if code:
                return code
    return code


def _metrics(workdir: Path, name: str) -> dict:
    path = workdir / "metrics" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def round_row(workdir: Path, row: dict, seconds: float) -> dict:
    """One round's figures: the registry's row and the metrics files its stages wrote."""
    label, evaluation = _metrics(workdir, "label"), _metrics(workdir, "evaluate")
    new = None
    if "preferences" in label:
        new = label["preferences"] - label.get("earlier_rounds_preferences", 0) - label.get("imported", 0)
    return {"round": row["round"], "status": row["status"], "generator_version": row["generator_version"],
            "published_version": row["published_version"],
            "pairs": _metrics(workdir, "generate").get("pairs"),
            "new_preferences": new, "trained_on": _metrics(workdir, "policy").get("pairs"),
            "reward_gold_accuracy": _metrics(workdir, "reward").get("val_gold_accuracy"),
            **{key: evaluation.get(key) for key in ("win_rate", "win_rate_low", "win_rate_high", "kl_nats")},
            "wall_s": round(seconds, 1), "message": row.get("message") or ""}


def _num(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _interval(row: dict) -> str:
    if row.get("win_rate") is None:
        return "–"
    return f"{row['win_rate']:.3f} [{row['win_rate_low']:.3f}, {row['win_rate_high']:.3f}]"


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = (r["round"], r["status"], r["generator_version"], r["published_version"] or "–", r["pairs"],
                 r["new_preferences"], r["trained_on"], _num(r["reward_gold_accuracy"]), _interval(r),
                 _num(r["kl_nats"], 2), _num(r["wall_s"], 0))
        lines.append("| " + " | ".join(_num(c) if not isinstance(c, str) else c for c in cells) + " |")
    return "\n".join(lines)


def progress_line(r: dict) -> str:
    what = f"published {r['published_version']}" if r["status"] == "published" else r["status"]
    return (f"round {r['round']}: {what} (from {r['generator_version']}) · {r['pairs']} pairs, "
            f"{r['new_preferences']} new prefs, trained on {r['trained_on']} · RM gold acc "
            f"{_num(r['reward_gold_accuracy'])} · gold vs SFT {_interval(r)} · KL {_num(r['kl_nats'], 2)} · "
            f"{r['wall_s']:.0f} s" + (f" · {r['message']}" if r["status"] == "rejected" else ""))


def run_rounds(workdir: Path, store: Path, rounds: int, log: Path) -> tuple[list[dict], str]:
    """Run up to `rounds` rounds; returns their rows and why the loop stopped early ('' if it didn't)."""
    registry = Store(workdir / store).registry
    rows: list[dict] = []
    for _ in range(rounds):
        before = registry.last_round()
        started = time.monotonic()
        code = run_logged(workdir, log, ["dvc", "repro", "--single-item", "--force", "round"],
                          ["dvc", "repro"])
        seconds = time.monotonic() - started
        last = registry.last_round()
        if last is None or (before is not None and last["round"] == before["round"]):
            return rows, f"no round was due (exit {code}); see {log}"
        rows.append(round_row(workdir, last, seconds))
        print(progress_line(rows[-1]), flush=True)
        if code and last["status"] != "rejected":
            return rows, f"round {last['round']} failed (dvc repro exit {code}, not at its gate); see {log}"
    return rows, ""


def head_to_head(workdir: Path, store: Path) -> dict:
    """The last published version's policy against round 1's on gold, as evaluation samples them."""
    import torch
    import transformers

    from prefpipe.config import load_params
    from prefpipe.evaluate.versus import gold_head_to_head, sampled_responder
    from prefpipe.models.io import load_causal_lm, load_tokenizer
    from prefpipe.seeds import SeedPurpose, derive_seed
    from tasks import paths
    from tasks.evaluate import heldout_prompts

    with contextlib.chdir(workdir):
        versions = Store(store).registry.versions()
        first = next((v for v in versions if v["round"] == 1), None)
        if first is None or versions[-1]["version"] == first["version"]:
            return {"skipped": "round 1 published nothing" if first is None
                    else "no version was published after round 1's"}
        last = versions[-1]
        params = load_params("params.yaml")
        torch.set_num_threads(params.runtime.threads)
        transformers.utils.logging.disable_progress_bar()  # as the stages do (tasks/_stage.py)
        seed = derive_seed(params.seed, SeedPurpose.EVALUATION)  # evaluation's prompts and sampling
        choice, has_gold, _ = heldout_prompts(params, seed)
        if not has_gold:
            return {"skipped": "the held-out prompts carry no gold facts"}
        tokenizer = load_tokenizer(paths.SFT_MODEL, params.model.prompt_format)
        tokenizer.padding_side = "left"
        sides = [sampled_responder(load_causal_lm(Path(v["artifact_uri"]) / "policy"), tokenizer,
                                   params.evaluate.sampling, seed, params.model.n_positions)
                 for v in (last, first)]
        report = gold_head_to_head(choice.prompts, *sides)
    return {"first": last["version"], "second": first["version"], "seed": seed, **report}


def head_to_head_line(h2h: dict) -> str:
    if "skipped" in h2h:
        return f"head-to-head on gold: skipped ({h2h['skipped']})"
    return (f"head-to-head on gold, {h2h['prompts']} held-out prompts, seed {h2h['seed']}: "
            f"{h2h['first']} vs {h2h['second']}: win rate {_interval(h2h)} ({h2h['wins']:.0f} wins, "
            f"{h2h['ties']:.0f} ties, {h2h['losses']:.0f} losses; correct {h2h['first_correct']:.3f} "
            f"vs {h2h['second_correct']:.3f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds to run (rounds.iterations)")
    parser.add_argument("--workdir", type=Path, help="scratch copy of the project (default: a new temp dir)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="a params override, e.g. rounds.init=previous (repeatable)")
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny params, no gates: minutes")
    args = parser.parse_args()
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="prefpipe-rounds-"))).resolve()
    try:
        if args.rounds < 1:
            raise BenchError(f"--rounds {args.rounds}: give at least 1")
        sets = parse_sets(args.sets)
        store = Path(scratch_copy(workdir, args.rounds, sets, args.tiny)["store"]["path"])
    except PrefpipeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    log = workdir / "rounds.log"
    print(f"scratch copy: {workdir}; stage output: {log}", flush=True)
    started = time.monotonic()
    code = run_logged(workdir, log, ["dvc", "repro", "sft"])
    setup_s = round(time.monotonic() - started, 1)
    if code:
        print(f"error: prepare/sft failed (dvc repro exit {code}); see {log}", file=sys.stderr)
        return 1
    print(f"prepare + sft: {setup_s:.0f} s", flush=True)
    rows, stopped = run_rounds(workdir, store, args.rounds, log)
    if stopped:
        print(f"stopped: {stopped}", flush=True)
    h2h = head_to_head(workdir, store) if rows else {"skipped": "no round ran"}
    markdown, line = table(rows), head_to_head_line(h2h)
    print(f"\n{markdown}\n\n{line}")
    result = {"workdir": str(workdir), "tiny": args.tiny, "overrides": sets, "setup_s": setup_s,
              "rounds": rows, "stopped": stopped, "head_to_head": h2h, "table": markdown,
              "head_to_head_line": line}
    (workdir / "rounds.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 1 if stopped else 0


if __name__ == "__main__":
    sys.exit(main())
