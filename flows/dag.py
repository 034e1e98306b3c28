"""Read the stage graph from dvc.yaml: the single declaration both runners use."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    upstream: tuple[str, ...]  # stages whose outputs this stage reads


def _paths(entries) -> tuple[str, ...]:
    """dvc.yaml lists paths as strings or as {path: options} mappings."""
    out = []
    for entry in entries or ():
        out.extend([entry] if isinstance(entry, str) else list(entry))
    return tuple(out)


def _under(path: str, parent: str) -> bool:
    p, q = PurePosixPath(path), PurePosixPath(parent)
    return p == q or q in p.parents


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
        stages[name] = Stage(name, cmd, deps, outs[name], upstream)
    ordered, done = [], set()
    while len(ordered) < len(stages):
        ready = [s for n, s in stages.items() if n not in done and set(s.upstream) <= done]
        if not ready:
            raise ValueError(f"{dvc_yaml}: stages form a cycle among {sorted(set(stages) - done)}")
        ordered.append(ready[0])
        done.add(ready[0].name)
    return ordered
