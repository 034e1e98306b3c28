"""A model reference's fingerprint: what the prepare stage records in models/sources/<name>.json, so
that DVC sees a user's model change and reruns the stages that read it (issue 15).

    fingerprint("data/inputs/my-model", Path.cwd())
    # {"model": "data/inputs/my-model", "kind": "folder", "sha256": "...", "files": 7, "bytes": 498_123}

A local folder is hashed whole: sorted relative paths, sizes and contents, read in chunks (models
are gigabytes). A hub id gives the snapshot revision in the local Hugging Face cache when there is
one (never the network), else just the id. 'embedded' and '' (no model) are constants, so the
default pipeline never reruns for them."""
from __future__ import annotations

import hashlib
from pathlib import Path

from prefpipe.config.model_refs import looks_like_hub_id, resolve
from prefpipe.config.schema import EMBEDDED
from prefpipe.errors import StageInputError

CHUNK = 1 << 20  # bytes read at a time


def fingerprint(ref: str, base: Path) -> dict:
    """{"model": ref} for 'embedded' or ''; a folder's content hash; a hub id's cached revision.

    Relative folders resolve against `base` (the stages run in the repository root)."""
    if ref in (EMBEDDED, ""):
        return {"model": ref}
    path = resolve(ref, base)
    if path.is_dir():
        return {"model": ref, "kind": "folder", **folder_digest(path)}
    if not path.exists() and looks_like_hub_id(ref, base):
        return hub_revision(ref)
    raise StageInputError(f"model '{ref}': no model folder at {path} and no hub id 'org/name'")


def folder_digest(path: Path) -> dict:
    """sha256 over every file's relative path, size and bytes, in path order -> sha256, files, bytes.

    Renaming, adding, removing or editing any file changes it; where the folder lies does not."""
    digest = hashlib.sha256()
    files = sorted((p.relative_to(path).as_posix(), p) for p in path.rglob("*") if p.is_file())
    total = 0
    for name, file in files:
        size = file.stat().st_size
        total += size
        digest.update(f"{name}\0{size}\0".encode())  # the size frames the contents that follow
        with file.open("rb") as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
    return {"sha256": digest.hexdigest(), "files": len(files), "bytes": total}


def hub_revision(ref: str) -> dict:
    """The commit of the snapshot the local Hugging Face cache holds for `ref` ('main'), if any.

    Without one the hub id alone is recorded: a model downloaded later, or changed upstream, is not
    seen (the params check warns about hub ids)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(ref, "config.json")  # .../snapshots/<commit>/config.json
    if isinstance(found, str):
        return {"model": ref, "kind": "hub", "revision": Path(found).parent.name}
    return {"model": ref, "kind": "hub"}
