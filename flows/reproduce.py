"""Rerun the round that published a model version and compare its output hashes with the recorded
ones (`prefpipe reproduce VERSION`; flows/rounds_cli.py prints the result).

The version's git revision is checked out in a worktree of its own (a temporary folder, or the
folder given to keep); the params.yaml and dvc.lock recorded at publish time are written there and
the store is copied in (the rerun's stages write to that copy, never to the live store). Every
recorded output is restored from this workspace's DVC cache (`dvc checkout`). A stage that reads
state DVC can't see (dvc.yaml's `always_changed: true` or `meta: {always_run: true}`: the round's
snapshot of the live store) is not rerun: its recorded outputs are the round's inputs, and so are
those of the stages before it (the prompts, the SFT model: restored; `--all` reruns them too). Every
stage after it is rerun with `dvc repro --single-item --force`, in the DAG's order, as the flow runs
them (flows/dvc_state.repro), its output on this terminal. A stage whose dvc.lock entry is
older than the round (its deps are not the recorded outputs it reads: a stage after the one that
recorded dvc.lock) is not rerun either."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from flows.env import ROOT, command_environment
from prefpipe.errors import PrefpipeError
from prefpipe.store import Store


@dataclass(frozen=True)
class Published:
    """What a model version recorded about the run that made it (model_versions columns)."""
    version: str
    round: int
    git_revision: str | None
    params_yaml: str | None
    dvc_lock: str | None


@dataclass(frozen=True)
class OutCheck:
    """One out of a rerun stage: its recorded and reproduced md5 (None: not in that dvc.lock)."""
    stage: str
    path: str
    recorded: str | None
    reproduced: str | None
    cached: bool  # False: DVC keeps no copy (`cache: false`: metrics, reports)
    restored: bool  # of a snapshot stage: restored from the cache, not rerun

    @property
    def matches(self) -> bool:
        return self.recorded == self.reproduced


@dataclass(frozen=True)
class Rerun:
    checks: list[OutCheck]
    older: list[str]  # stages of the recorded dvc.lock left alone: their entries predate the round
    worktree: Path


def rerun(published: Published, store: Store, store_key: str, keep: str | None = None,
          everything: bool = False) -> Rerun:
    """Check out, restore, rerun, compare; the worktree is removed unless `keep` names its folder.
    A step that fails is a PrefpipeError naming it."""
    from flows.dvc_state import repro

    revision = check_revision(published)
    worktree = add_worktree(keep, revision)
    print(f"reproduce {published.version} (round {published.round}) at git {revision[:12]} "
          f"in {worktree}", flush=True)
    try:
        stages, restored = prepare(worktree, published, store, store_key, everything)
        for name in stages:
            done = repro(name, force=True, root=worktree, PREFPIPE_ROOT=str(worktree))
            if done.exit_code != 0:
                raise PrefpipeError(f"the rerun of {published.version}, stage {name}: {done.message}")
        checks = compare(published.dvc_lock or "", (worktree / "dvc.lock").read_text(),
                         yaml.safe_load((worktree / "dvc.yaml").read_text()) or {}, stages, restored)
    finally:
        if keep is None:
            remove_worktree(worktree)
    older = [name for name in lock_stages(published.dvc_lock or "") if name not in {*stages, *restored}]
    return Rerun(checks, older, worktree)


def check_revision(published: Published) -> str:
    """The version's git commit, resolved in this repository; a one-line error when it can't be."""
    if not published.git_revision or not published.dvc_lock or not published.params_yaml:
        raise PrefpipeError(f"model version {published.version}: no git revision, params.yaml or "
                            "dvc.lock was recorded when it was published, so it can't be reproduced")
    done = subprocess.run(["git", "rev-parse", "--verify", "--quiet",
                           f"{published.git_revision}^{{commit}}"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise PrefpipeError(f"model version {published.version}: git revision {published.git_revision} "
                            f"is unknown to the git repository in {ROOT} (fetch it, or reproduce in the "
                            "clone that published it)")
    return done.stdout.strip()


def add_worktree(keep: str | None, revision: str) -> Path:
    """`git worktree add --detach` of the revision: in `keep` (new or empty) if given, else in a
    new temporary folder."""
    if keep is not None:
        folder = Path(keep).resolve()
        if folder.exists() and any(folder.iterdir()):
            raise PrefpipeError(f"--keep {keep}: {folder} is not empty; name a new or empty folder")
    else:
        folder = Path(tempfile.mkdtemp(prefix="prefpipe-reproduce-"))
    try:
        _git("worktree", "add", "--detach", str(folder), revision)
    except PrefpipeError:
        if keep is None:
            folder.rmdir()
        raise
    return folder


def remove_worktree(worktree: Path) -> None:
    """`git worktree remove --force`; should it fail, a warning (an error on the way out matters more)."""
    try:
        _git("worktree", "remove", "--force", str(worktree))
    except PrefpipeError as err:
        print(f"warning: the worktree {worktree} stays: {err}", file=sys.stderr)


def prepare(worktree: Path, published: Published, store: Store, store_key: str,
            everything: bool = False) -> tuple[list[str], set[str]]:
    """The recorded params and dvc.lock, a copy of the store (at the recorded params' store.path,
    else `store_key`), the recorded outputs. Returns the stages to rerun (the round's after its
    snapshot, or with `everything` all but the snapshot, in the DAG's order) and the round's stages
    restored, not rerun."""
    from flows.dag import load_stages

    (worktree / "params.yaml").write_text(published.params_yaml or "")
    (worktree / "dvc.lock").write_text(published.dvc_lock or "")
    _copy_store(worktree, published, store, store_key)
    cache = subprocess.run(["dvc", "cache", "dir"], cwd=ROOT, env=command_environment(),
                           capture_output=True, text=True).stdout.strip() or str(ROOT / ".dvc" / "cache")
    _dvc(worktree, "cache", "dir", "--local", cache)
    _dvc(worktree, "checkout")
    snapshots = snapshot_stages(worktree / "dvc.yaml")
    of_round = set(round_stages(published.dvc_lock or ""))
    stages = load_stages(worktree / "dvc.yaml")
    after = set(snapshots)  # the snapshot stages and every stage downstream of one
    for stage in stages:
        if after & set(stage.upstream):
            after.add(stage.name)
    kept = {s.name for s in stages if s.name in of_round - snapshots and not (everything or s.name in after)}
    kept -= _restore_uncached(worktree, published.dvc_lock or "", kept)  # else rerun them
    rerun = [s.name for s in stages if s.name in of_round - snapshots - kept]
    return rerun, of_round - set(rerun)


def _restore_uncached(worktree: Path, recorded_lock: str, stages: set[str]) -> set[str]:
    """Outs DVC does not cache (metrics, plots) of the stages kept, which `dvc checkout` cannot
    restore: copied from this workspace where they still have the recorded hash. Returns the stages
    with one missing (they are rerun instead)."""
    import hashlib

    spec = (yaml.safe_load((worktree / "dvc.yaml").read_text()) or {}).get("stages") or {}
    recorded, missing = lock_stages(recorded_lock), set()
    for name in stages:
        md5 = {out["path"]: out.get("md5") for out in (recorded.get(name) or {}).get("outs") or ()}
        for path, cached in outs(spec.get(name) or {}):
            source, target = ROOT / path, worktree / path
            if cached or target.exists():
                continue
            if source.is_file() and hashlib.md5(source.read_bytes()).hexdigest() == md5.get(path):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
            else:
                missing.add(name)
    return missing


def snapshot_stages(dvc_yaml: Path) -> set[str]:
    """Stages that read state DVC can't see (the store), so their recorded outputs are the round's
    inputs: `always_changed: true` (DVC reruns them) or `meta: {always_run: true}` (the flow does)."""
    from flows.dag import load_stages

    raw = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages") or {}
    return {s.name for s in load_stages(dvc_yaml) if s.always_run or raw[s.name].get("always_changed")}


def _copy_store(worktree: Path, published: Published, store: Store, store_key: str) -> None:
    """The store file (and DuckDB's write-ahead log, if one is left) at the recorded params'
    store.path in the worktree, copied while holding the store, so no writer is halfway through."""
    recorded = ((yaml.safe_load(published.params_yaml or "") or {}).get("store") or {}).get("path")
    target = worktree / (recorded or store_key)
    if not target.resolve().is_relative_to(worktree.resolve()):
        raise PrefpipeError(f"model version {published.version}: its params' store.path {recorded} is "
                            "outside the project, so its rerun would write to the live store")
    target.parent.mkdir(parents=True, exist_ok=True)
    with store.connect():
        for suffix in ("", ".wal"):
            if (source := store.path.with_name(store.path.name + suffix)).exists():
                shutil.copy2(source, target.with_name(target.name + suffix))


def _git(*args: str) -> None:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise PrefpipeError(f"`git {' '.join(args)}` failed (exit {done.returncode}): {last}")


def _dvc(worktree: Path, *args: str) -> None:
    """A dvc command in the worktree, its output on this terminal; a signal stops its whole
    process group (flows/children.run_child)."""
    from flows.children import run_child

    command = ["dvc", "--cd", str(worktree), *args]
    code = run_child(command, command_environment(PREFPIPE_ROOT=str(worktree)))
    if code != 0:
        raise PrefpipeError(f"`{' '.join(command)}` failed (exit {code}); its output is above "
                            "(--keep DIR keeps the worktree to look into)")


def outs(stage_spec: dict) -> list[tuple[str, bool]]:
    """(path, cached) of a dvc.yaml stage's outs, metrics and plots (DVC caches them by default)."""
    found = []
    for kind in ("outs", "metrics", "plots"):
        for entry in stage_spec.get(kind) or ():
            items = [(entry, {})] if isinstance(entry, str) else list(entry.items())
            found += [(path, (options or {}).get("cache", True)) for path, options in items]
    return found


def lock_stages(lock_text: str) -> dict[str, dict]:
    return (yaml.safe_load(lock_text) or {}).get("stages") or {}


def round_stages(lock_text: str) -> list[str]:
    """The stages of a dvc.lock whose entries the round wrote: each dep that another entry lists as
    an out has that out's hash, and that entry is the round's too. An entry older than the round (a
    stage after the one that recorded the lock) read outputs the round has since replaced."""
    stages = lock_stages(lock_text)
    made = {out["path"]: (name, out.get("md5"))
            for name, spec in stages.items() for out in spec.get("outs") or ()}

    def stale(name: str, dep: dict, older: set[str]) -> bool:
        owner = made.get(dep["path"])
        return bool(owner) and owner[0] != name and (owner[0] in older or owner[1] != dep.get("md5"))

    older: set[str] = set()
    while found := {name for name, spec in stages.items()
                    if name not in older and any(stale(name, dep, older) for dep in spec.get("deps") or ())}:
        older |= found
    return [name for name in stages if name not in older]


def compare(recorded_lock: str, new_lock: str, dvc_yaml: dict, rerun_stages: list[str],
            restored: set[str]) -> list[OutCheck]:
    """Every recorded or reproduced out of the stages rerun or restored, recorded md5 against
    reproduced md5, in the recorded dvc.lock's order."""
    recorded, reproduced = lock_stages(recorded_lock), lock_stages(new_lock)
    checks = []
    for name in [n for n in recorded if n in rerun_stages or n in restored]:
        cached = dict(outs((dvc_yaml.get("stages") or {}).get(name) or {}))
        old = {out["path"]: out.get("md5") for out in (recorded.get(name) or {}).get("outs") or ()}
        new = {out["path"]: out.get("md5") for out in (reproduced.get(name) or {}).get("outs") or ()}
        checks += [OutCheck(name, path, old.get(path), new.get(path), cached.get(path, True),
                            name in restored) for path in [*old, *(p for p in new if p not in old)]]
    return checks
