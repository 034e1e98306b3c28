"""What every stage does around its recipe: params, threads, logging, errors, metrics, run log."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from prefpipe.config import Params, ParamsError, load_params
from prefpipe.data.prompts_io import DataError
from prefpipe.store import Store

log = logging.getLogger("prefpipe")


class StageInputError(ValueError):
    """A stage's inputs or params can't do the job; the message says which and what to change."""


def setup(threads: int) -> None:
    import torch
    import transformers

    transformers.utils.logging.set_verbosity_error()  # e.g. the expected "score.weight MISSING"
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def write_csv(path: Path, rows: list[dict]) -> None:
    """A plot-data CSV (DVC plots read these)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not rows:
        path.write_text("")
        return
    columns = list(rows[0])
    lines = [",".join(columns)]
    lines += [",".join(_fmt(row.get(c)) for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def folder_hash(path: Path) -> str:
    """Content hash of a model folder: its model version in the store."""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def run_stage(name: str, recipe: Callable[[Params, Store], dict]) -> None:
    """Run `recipe(params, store)`; it returns the metrics to log. Clean errors exit with 2."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s {name} %(levelname)s %(message)s")
    for noisy in ("httpx", "filelock", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    started = time.monotonic()
    try:
        params = load_params(os.environ.get("PREFPIPE_PARAMS", "params.yaml"))
    except ParamsError as err:
        log.error("bad params: %s", err)
        raise SystemExit(2) from None
    setup(params.runtime.threads)
    store = Store(params.store.path, params.store.lock_timeout_s)
    run_id = os.environ.get("PREFPIPE_RUN_ID", uuid.uuid4().hex[:12])
    started_at = datetime.now(UTC).replace(tzinfo=None)
    log.info("stage %s starting (run %s, seed %d, %d threads)", name, run_id, params.seed,
             params.runtime.threads)
    try:
        metrics = recipe(params, store)
    except (DataError, ParamsError, StageInputError, FileNotFoundError) as err:
        store.record_run(run_id, name, "failed", asdict(params), {"error": str(err)}, started_at)
        log.error("%s failed: %s", name, err)
        raise SystemExit(2) from None
    except BaseException as err:
        store.record_run(run_id, name, "failed", asdict(params), {"error": repr(err)}, started_at)
        raise
    store.record_run(run_id, name, "completed", asdict(params), metrics, started_at)
    log.info("stage %s done in %.1fs: %s", name, time.monotonic() - started,
             json.dumps(metrics, sort_keys=True))
