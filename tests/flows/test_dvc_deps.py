"""Every library file a stage imports is a dependency of that stage in dvc.yaml.

The deps are listed file by file (so editing PPO does not retrain SFT); this catches a new import
that would otherwise change a stage's output without DVC noticing."""
from __future__ import annotations

import ast
from pathlib import Path, PurePosixPath

import pytest

from flows.dag import load_stages

ROOT = Path(__file__).resolve().parents[2]
LOCAL_PACKAGES = ("prefpipe", "tasks")
SHARED = {"tasks/_stage.py", "tasks/paths.py", "tasks/__init__.py"}  # stage plumbing, not traversed
# Infrastructure that cannot change a stage's outputs: params reach stages through dvc.yaml's params.
# prefpipe/errors.py holds only exception classes.
INFRA = ("prefpipe/config/", "prefpipe/store/", "prefpipe/progress.py", "prefpipe/errors.py")


def module_file(module: str) -> Path | None:
    base = ROOT / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_files(start: Path) -> set[str]:
    """Repository files reachable from `start` through imports of local packages (any depth)."""
    seen: set[Path] = set()
    todo = [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if str(path.relative_to(ROOT)) in SHARED:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                if name.split(".")[0] not in LOCAL_PACKAGES:
                    continue
                parts = name.split(".")
                for depth in range(1, len(parts) + 1):  # parent packages' __init__ run too
                    found = module_file(".".join(parts[:depth]))
                    if found is not None:
                        todo.append(found)
    return {str(p.relative_to(ROOT)) for p in seen}


def covered(path: str, deps: tuple[str, ...]) -> bool:
    return any(PurePosixPath(path) == PurePosixPath(d) or PurePosixPath(d) in PurePosixPath(path).parents
               for d in deps)


@pytest.mark.parametrize("stage", [s for s in load_stages(ROOT / "dvc.yaml")], ids=lambda s: s.name)
def test_stage_deps_cover_its_imports(stage):
    module = stage.cmd.split("python -m ", 1)[1].split()[0]
    files = imported_files(module_file(module))
    missing = sorted(f for f in files - SHARED if not covered(f, stage.deps)
                     and not f.endswith("__init__.py") and not f.startswith(INFRA))
    assert not missing, f"stage {stage.name} imports files missing from its dvc.yaml deps: {missing}"
