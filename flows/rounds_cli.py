"""`prefpipe rounds`, `prefpipe rollback VERSION`, `prefpipe reproduce VERSION`: the rounds in the
store's registry, which published version the next round samples from, and a published round rerun.

    prefpipe rounds [--json]          # every round, its version and headline metrics; `current`
    prefpipe rollback r2-1a2b3c4d     # `current` -> that version: the next round samples from it
    prefpipe reproduce r2-1a2b3c4d [--all] [--keep DIR]   # rerun its round, compare the output hashes

`reproduce` reruns the round in a git worktree of its own, from the params.yaml, dvc.lock and
store recorded then (flows/reproduce.py), and prints each output's recorded and reproduced hash:
exit 0 when every cached output matches, 1 when one differs; outputs DVC does not cache (metrics,
reports) are listed when they differ but decide nothing, since a report may carry a timestamp.
Headline metrics are prefpipe/evaluate/headline.py's, read from the version's `metrics`."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from flows.env import ROOT
from prefpipe.errors import PrefpipeError
from prefpipe.evaluate.headline import HEADLINES, Headline

if TYPE_CHECKING:
    from flows.reproduce import OutCheck

COLUMNS: tuple[Headline, ...] = tuple(HEADLINES[k] for k in ("win_rate", "kl_nats", "val_gold_accuracy"))


@dataclass(frozen=True)
class RoundLine:
    """The columns of a `rounds` row the table shows (names are the store's), in its order."""
    round: int
    status: str
    generator_version: str | None
    new_prompts: int | None
    new_labels: int | None
    published_version: str | None

    @classmethod
    def of(cls, row: dict) -> RoundLine:
        return cls(**{f.name: row.get(f.name) for f in fields(cls)})


def _store():
    from prefpipe.config import load_params
    from prefpipe.store import Store

    params = load_params(ROOT / "params.yaml")
    return Store(ROOT / params.store.path, params.store.lock_timeout_s), params


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, the header first."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [headers, *rows]]


def cmd_rounds(args) -> int:
    store, _ = _store()
    rounds, current = store.registry.rounds(), store.registry.current()
    current_version = current["version"] if current else None
    if args.json:
        print(json.dumps({"current": current_version, "rounds": rounds}, indent=2, default=str))
        return 0
    if not rounds:
        print("no rounds yet: `prefpipe run` runs round 1")
        return 0
    headers = [f.name.replace("_", " ") for f in fields(RoundLine)] + [h.label for h in COLUMNS]
    lines = []
    for row in rounds:
        line = RoundLine.of(row)
        cells = [str(line.round), line.status, line.generator_version or "SFT", _count(line.new_prompts),
                 _count(line.new_labels), _version(line.published_version, current_version)]
        lines.append(cells + [h.cell(row.get("metrics") or {}) for h in COLUMNS])
    print("\n".join(table(headers, lines)))
    print(f"current: {current_version or 'none (the next round samples from SFT)'}")
    return 0


def _count(value: int | None) -> str:
    return "" if value is None else str(value)


def _version(version: str | None, current: str | None) -> str:
    if version is None:
        return "-"
    return f"{version} (current)" if version == current else version


def cmd_rollback(args) -> int:
    store, _ = _store()
    before = store.registry.current()
    store.registry.set_current(args.version)  # unknown: a StoreError naming the known versions
    print(f"current: {before['version'] if before else 'none'} -> {args.version}; "
          f"the next round samples from {args.version}")
    return 0


def cmd_reproduce(args) -> int:
    """Rerun the version's round (flows/reproduce.py), print each out's verdict: exit 0 when every
    cached out has its recorded hash, 1 when one differs."""
    from flows.reproduce import Published, rerun
    from flows.run_output import Interrupted, stop_on_signals

    store, params = _store()
    row = store.registry.version(args.version)
    if row is None:
        known = ", ".join(v["version"] for v in store.registry.versions()) or "none (nothing published yet)"
        raise PrefpipeError(f"unknown model version {args.version!r}; known versions: {known}")
    published = Published(**{f.name: row.get(f.name) for f in fields(Published)})
    with stop_on_signals():
        try:
            result = rerun(published, store, params.store.path, args.keep, args.all)
        except Interrupted as stop:
            print(f"error: stopped by {stop.signal_name}", file=sys.stderr)
            return stop.code
    return report(result.checks, result.older, result.worktree if args.keep else None)


def report(checks: list[OutCheck], older: list[str], kept: Path | None) -> int:
    """The table of outs and the verdict: 0 when every cached out matches, 1 otherwise."""
    def verdict(check: OutCheck) -> str:
        if not check.matches:
            return "DIFFERS" if check.cached else "differs (not cached)"
        return "restored, not rerun" if check.restored else "match" if check.cached else "match (not cached)"

    lines = [[c.stage, c.path, (c.recorded or "-")[:12], (c.reproduced or "-")[:12], verdict(c)]
             for c in checks]
    print("\n".join(table(["stage", "out", "recorded", "reproduced", "result"], lines)))
    cached = [c for c in checks if c.cached]
    differ = [f"{c.stage}:{c.path}" for c in cached if not c.matches]
    if differ:
        print(f"{len(differ)} of {len(cached)} cached outs differ: {', '.join(differ)}")
    else:
        print(f"all outs match: the {len(cached)} cached outs have their recorded hashes")
    loose = [f"{c.stage}:{c.path}" for c in checks if not c.cached and not c.matches]
    if loose:
        print(f"not cached, and different (a timestamp, say): {', '.join(loose)}")
    if older:
        print(f"not rerun, their dvc.lock entries are older than the round: {', '.join(older)}")
    print(f"worktree kept in {kept}" if kept else "worktree removed")
    return 1 if differ else 0


def add_rounds_commands(sub: argparse._SubParsersAction) -> None:
    """Register `prefpipe rounds`, `rollback` and `reproduce` on the CLI's subparsers."""
    rounds = sub.add_parser("rounds", help="the rounds, their published versions and headline metrics")
    rounds.add_argument("--json", action="store_true", help="the store's rows as JSON")
    rounds.set_defaults(func=cmd_rounds)
    rollback = sub.add_parser("rollback", help="point `current` at VERSION: the next round samples from it")
    rollback.add_argument("version")
    rollback.set_defaults(func=cmd_rollback)
    reproduce = sub.add_parser("reproduce", help="rerun the round that published VERSION and compare "
                                                 "its output hashes (exit 1 when one differs)",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    reproduce.add_argument("version")
    reproduce.add_argument("--all", action="store_true",
                           help="rerun the stages before the round's snapshot too (prepare, sft)")
    reproduce.add_argument("--keep", metavar="DIR", default=None,
                           help="make the worktree in DIR and keep it (default: a temporary one, removed)")
    reproduce.set_defaults(func=cmd_reproduce)
