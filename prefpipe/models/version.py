"""A model's version: a hash of what defines the model, not of the bytes a library wrote (issue 13).

    model_version(Path("models/sft"))   # '3f9c0a1b2c4d5e6f': the store's candidates.model_version
    model_identity(Path("models/sft"))  # {'weights': ..., 'config.json': ..., 'tokenizer.json': ...}

What counts, file by file (names relative to the folder):
- weights: every tensor of the `*.safetensors` file(s), by name: its dtype, shape and bytes, read
  from the header's offsets, whatever the sharding. The header's free-form `__metadata__` and the
  shard index (`*.safetensors.index.json`) are layout, not model.
- `tokenizer.json`: its whole content (vocabulary, merges, added and special tokens, normalizer,
  pre-tokenizer, post-processor, decoder) except `truncation` and `padding`, the settings of the
  last call that transformers leaves on the tokenizer.
- every other JSON file (`config.json`, `generation_config.json`, `tokenizer_config.json`, ...): its
  content less the top-level NOT_MODEL keys: ENVIRONMENT_KEYS, which transformers writes from how
  and where a folder was loaded (with HF_HUB_OFFLINE=1 set, `local_files_only: true`), and the
  library's bookkeeping (`transformers_version`; `dtype`, which the tensors carry themselves).
  Architecture, sizes, activation, eps, positions, tie_word_embeddings, special tokens and chat
  template all count.
- any other file (the sft stage's pointer to your model, a slow tokenizer's vocab.json/merges.txt,
  weights in another format): its bytes. Unknown content may matter, so it counts.

The same model saved at another path, by another user or offline gets the same version; one
changed weight, vocabulary entry or layer count gives another."""
from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from prefpipe.errors import DataError

VERSION_CHARS = 16  # hex digits kept: the store's model_version
CHUNK = 1 << 20  # bytes read at a time (weights are gigabytes)
WEIGHTS = "weights"
# Keys transformers writes from the loading call and the machine, not the model. save_model strips
# them from the folders stages write (prefpipe/models/io.py).
ENVIRONMENT_KEYS = frozenset({
    "local_files_only", "is_local", "_name_or_path", "name_or_path", "cache_dir", "_commit_hash",
    "revision", "subfolder", "token", "use_auth_token", "trust_remote_code", "force_download",
    "proxies", "resume_download"})
NOT_MODEL = ENVIRONMENT_KEYS | {"transformers_version", "_from_model_config", "dtype", "torch_dtype"}
TOKENIZER_CALL_STATE = ("truncation", "padding")


def model_version(path: Path) -> str:
    """The version of the model folder at `path`: VERSION_CHARS hex digits of sha256 over
    model_identity(path)."""
    identity = json.dumps(model_identity(path), sort_keys=True)
    return hashlib.sha256(identity.encode()).hexdigest()[:VERSION_CHARS]


def model_identity(path: Path) -> dict[str, str]:
    """{part: sha256}: 'weights' (all safetensors tensors, when there are any) and each other file
    by its relative name (less shard indexes), each hashed as the module docstring says."""
    path = Path(path)
    files = sorted((p.relative_to(path).as_posix(), p) for p in path.rglob("*") if p.is_file())
    identity = {}
    weights = [file for name, file in files if name.endswith(".safetensors")]
    if weights:
        identity[WEIGHTS] = weights_digest(weights)
    for name, file in files:
        if name.endswith(".safetensors") or name.endswith(".safetensors.index.json"):
            continue
        identity[name] = file_digest(file)
    return identity


def weights_digest(files: list[Path]) -> str:
    """sha256 over every tensor of the safetensors `files`, in name order: name, dtype, shape and
    the tensor's bytes (framed by their count). A tensor named in two files is an error."""
    where: dict[str, tuple[Path, dict, int]] = {}
    for file in files:
        header, data_start = read_header(file)
        for name, entry in header.items():
            if name in where:
                raise DataError(f"{file}: tensor '{name}' is also in {where[name][0]}")
            where[name] = (file, entry, data_start)
    digest = hashlib.sha256()
    for name in sorted(where):
        file, entry, data_start = where[name]
        begin, end = entry["data_offsets"]
        digest.update(json.dumps([name, entry["dtype"], entry["shape"], end - begin]).encode())
        with file.open("rb") as stream:
            stream.seek(data_start + begin)
            left = end - begin
            while left and (chunk := stream.read(min(CHUNK, left))):
                digest.update(chunk)
                left -= len(chunk)
    return digest.hexdigest()


def read_header(file: Path) -> tuple[dict[str, dict], int]:
    """A safetensors file's tensors {name: {dtype, shape, data_offsets}} (without `__metadata__`)
    and where their data starts: after an 8-byte little-endian length and that many bytes of JSON."""
    size = file.stat().st_size
    with file.open("rb") as stream:
        prefix = stream.read(8)
        length = struct.unpack("<Q", prefix)[0] if len(prefix) == 8 else size
        if length > size - 8:
            raise DataError(f"{file}: not a safetensors file (no header of its stated length)")
        try:
            header = json.loads(stream.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DataError(f"{file}: not a safetensors file (header: {err})") from None
    if not isinstance(header, dict):
        raise DataError(f"{file}: not a safetensors file (header is no JSON object)")
    header.pop("__metadata__", None)
    for name, entry in header.items():
        if not (isinstance(entry, dict) and {"dtype", "shape", "data_offsets"} <= entry.keys()):
            raise DataError(f"{file}: tensor '{name}' lacks dtype, shape or data_offsets")
        offsets = entry["data_offsets"]
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= size - 8 - length):
            raise DataError(f"{file}: tensor '{name}' has data_offsets {offsets} outside the file")
    return header, 8 + length


def file_digest(file: Path) -> str:
    """sha256 of a JSON file's model content (tokenizer.json less its call state, any other JSON
    less NOT_MODEL keys), or of the bytes of a file that is not JSON."""
    raw = file.read_bytes()
    try:
        content = json.loads(raw) if file.suffix == ".json" else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        content = None
    if not isinstance(content, dict):
        return hashlib.sha256(raw).hexdigest()
    dropped = TOKENIZER_CALL_STATE if file.name == "tokenizer.json" else NOT_MODEL
    kept = {key: value for key, value in content.items() if key not in dropped}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()
