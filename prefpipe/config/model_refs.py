"""Check a params key that names a model: a local Hugging Face folder (config.json, weights, a
tokenizer) or, where a hub is allowed, a hub id 'org/name'; and read a folder's context length.

Relative folders resolve against the folder of the params file (the repository root for
params.yaml, where the stages run). Each check returns a problem to report under its key, or None;
`untracked_note` says why DVC would not see a model change (a warning, not an error)."""
from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

# Hugging Face's own rule for repo ids (huggingface_hub.utils.validate_repo_id), with the owner required.
HUB_ID = re.compile(r"^[\w\-.]+/[\w\-.]+$")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
NOT_WEIGHTS = ("training_args.bin", "optimizer.bin", "scheduler.bin")
OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")  # Hugging Face's switches: no network at all
# Config keys that hold the number of positions a model can read, by model family.
POSITION_KEYS = ("n_positions", "max_position_embeddings", "n_ctx")
INPUTS = Path("data") / "inputs"  # a dependency of the prepare stage in dvc.yaml: DVC hashes it


def resolve(ref: str, base: Path) -> Path:
    path = Path(ref).expanduser()
    return path if path.is_absolute() else base / path


def looks_like_hub_id(ref: str, base: Path) -> bool:
    """'org/name' that is no local path: no './', '/' or '~' start, and 'org' is not a local folder."""
    if not HUB_ID.match(ref) or ".." in ref or "--" in ref or len(ref) > 96:
        return False
    return not ref.startswith((".", "~")) and not (base / ref.split("/")[0]).exists()


def model_problem(ref: str, base: Path, hub: bool) -> str | None:
    """What is wrong with `ref` as a model: None if it is a usable folder (or a hub id when `hub`)."""
    path = resolve(ref, base)
    if not path.exists():
        if hub and looks_like_hub_id(ref, base):
            return _offline_problem(ref)
        wanted = "a folder holding config.json, the weights and the tokenizer" + (
            ", or a hub id 'org/name'" if hub else "")
        return f"no model folder '{ref}' (looked at {path}); give {wanted}"
    if not path.is_dir():
        return f"'{ref}' is a file; give the model's folder (config.json, the weights, the tokenizer)"
    if not (path / "config.json").is_file():
        return f"folder '{ref}' has no config.json; is it a Hugging Face model folder?"
    return _weights_problem(ref, path) or _tokenizer_problem(ref, path)


def untracked_note(ref: str, base: Path) -> str | None:
    """Why `dvc repro` would not notice `ref` change, or None: the prepare stage fingerprints each
    model (prefpipe/models/fingerprint.py), but DVC reruns it only for changes under data/inputs/."""
    path = resolve(ref, base)
    if not path.exists() and looks_like_hub_id(ref, base):
        return (f"hub id '{ref}': a new revision upstream is not tracked, so `dvc repro` would not "
                f"rerun for it; to pin it, download a snapshot under data/inputs/ (`hf download {ref} "
                f"--local-dir data/inputs/{ref.split('/')[1]}`) and give that folder")
    if not path.resolve().is_relative_to((base / INPUTS).resolve()):
        return (f"'{ref}' is outside data/inputs/, so `dvc repro` does not notice when it changes; "
                "put the model folder under data/inputs/ to have it tracked")
    return None


def _offline_problem(ref: str) -> str | None:
    """A hub id can only be checked where no hub is asked: with the hub switched off, it must be in
    the local cache already (validation never goes to the network)."""
    if not any(os.environ.get(name, "").upper() in ("1", "ON", "YES", "TRUE") for name in OFFLINE):
        return None
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(ref, "config.json"), str):
        return None
    return (f"'{ref}' looks like a hub id, but the hub is switched off (HF_HUB_OFFLINE) and it is not "
            "in the local Hugging Face cache; download it where the hub is reachable, or give a folder")


def _weights_problem(ref: str, path: Path) -> str | None:
    for index in sorted(path.glob("*.index.json")):  # sharded weights: every shard must be there
        try:
            shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
        except (OSError, ValueError, AttributeError):
            return f"folder '{ref}': {index.name} is not a readable shard index"
        missing = sorted(s for s in shards if not (path / s).is_file())
        if missing:
            return (f"folder '{ref}': {index.name} lists {missing[0]}, which is missing "
                    f"({len(missing)} missing)")
    weights = [p for p in path.iterdir()
               if p.suffix in (".safetensors", ".bin") and p.name not in NOT_WEIGHTS]
    if not weights:
        return f"folder '{ref}' has no weights (*.safetensors or *.bin, possibly sharded)"
    return None


def _tokenizer_problem(ref: str, path: Path) -> str | None:
    if any((path / name).is_file() for name in TOKENIZER_FILES):
        return None
    return f"folder '{ref}' has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); save it with the model"


def read_config(ref: str, base: Path) -> dict:
    """The folder's config.json ({} for a hub id or an unreadable file: nothing to check against)."""
    path = resolve(ref, base) / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def context_length(config: Mapping) -> tuple[str, int] | None:
    """(key, positions) a model config declares it can read, or None if it declares none."""
    for key in POSITION_KEYS:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return key, value
    return None
