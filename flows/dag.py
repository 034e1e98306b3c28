"""Read the stage graph from dvc.yaml: the single declaration both runners use.

What the flow must do around a stage is declared on the stage, in a `meta:` block DVC ignores:
`meta: {after: HOOK}` names a hook of flows/hooks.py that runs after the stage; `meta: {always_run:
true}` marks a stage that reads state DVC can't see (the store): the flow runs it every time (`dvc
repro --force` of that stage alone), while `dvc repro` runs it only when its deps change, so a run
reproduced from dvc.lock keeps the recorded outputs."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from prefpipe.errors import ConfigError


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    upstream: tuple[str, ...]  # stages whose outputs this stage reads
    after: str | None = None  # meta.after: the hook (flows/hooks.py) the flow runs after the stage
    always_run: bool = False  # meta.always_run: the flow runs it even when DVC finds it up to date


def _paths(entries) -> tuple[str, ...]:
    """dvc.yaml lists paths as strings or as {path: options} mappings."""
    out = []
    for entry in entries or ():
        out.extend([entry] if isinstance(entry, str) else list(entry))
    return tuple(out)


def _under(path: str, parent: str) -> bool:
    p, q = PurePosixPath(path), PurePosixPath(parent)
    return p == q or q in p.parents


def _after_hook(dvc_yaml: str | Path, name: str, spec: dict) -> str | None:
    meta = spec.get("meta") or {}
    after = meta.get("after") if isinstance(meta, dict) else None
    if after is not None and not isinstance(after, str):
        raise ConfigError(f"{dvc_yaml}: stage {name}: meta.after must be a hook name, got {after!r}")
    return after


def _always_run(dvc_yaml: str | Path, name: str, spec: dict) -> bool:
    meta = spec.get("meta") or {}
    always = meta.get("always_run", False) if isinstance(meta, dict) else False
    if not isinstance(always, bool):
        raise ConfigError(f"{dvc_yaml}: stage {name}: meta.always_run must be true or false, "
                          f"got {always!r}")
    return always


def load_stages(dvc_yaml: str | Path = "dvc.yaml") -> list[Stage]:
    """Stages in dependency order (ties keep the file's order); raises on a cycle."""
    spec = yaml.safe_load(Path(dvc_yaml).read_text())
    raw = spec.get("stages") or {}
    outs = {name: _paths(s.get("outs")) + _paths(s.get("metrics")) + _paths(s.get("plots"))
            for name, s in raw.items()}
    stages = {}
    for name, s in raw.items():
        deps = _paths(s.get("deps"))
        upstream = tuple(other for other in raw if other != name and any(
            _under(d, o) or _under(o, d) for d in deps for o in outs[other]))
        cmd = s["cmd"] if isinstance(s["cmd"], str) else " && ".join(s["cmd"])
        stages[name] = Stage(name, cmd, deps, outs[name], upstream, _after_hook(dvc_yaml, name, s),
                             _always_run(dvc_yaml, name, s))
    ordered, done = [], set()
    while len(ordered) < len(stages):
        ready = [s for n, s in stages.items() if n not in done and set(s.upstream) <= done]
        if not ready:
            raise ConfigError(f"{dvc_yaml}: stages form a cycle among {sorted(set(stages) - done)}")
        ordered.append(ready[0])
        done.add(ready[0].name)
    return ordered
