"""A published version's folder on local disk: written whole (staged, then renamed) and listed as
the relative keys the artifact store uses."""
from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from pathlib import Path


def stage_folder(target: Path, sources: Mapping[str, Path]) -> bool:
    """Copy each source (a folder or a file) to `target/<name>` (a name may hold '/'), staged in a
    sibling folder and then renamed: `target` is complete or absent. An existing `target` (a rerun
    of the same round) is kept as it is: returns False then, True when it was written."""
    if target.is_dir():
        return False
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, source in sources.items():
        destination = staging / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination)
        else:
            shutil.copy2(source, destination)
    staging.replace(target)
    return True


def folder_files(folder: Path) -> dict[str, Path]:
    """Every file under `folder` by its relative POSIX path (the artifact store's key), sorted."""
    if not folder.is_dir():
        raise FileNotFoundError(2, "no such folder", str(folder))
    return {path.relative_to(folder).as_posix(): path
            for path in sorted(folder.rglob("*")) if path.is_file()}


def sha256_file(path: Path) -> str:
    """The file's sha256 (hex), read a megabyte at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
