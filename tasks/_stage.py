"""What every stage does around its recipe: params, threads, logging, errors, metrics, run log."""
from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from prefpipe.config import Params, load_params
from prefpipe.data.preflight import check_against_data
from prefpipe.errors import PrefpipeError, StageInputError
from prefpipe.store import Store

__all__ = ["StageInputError", "free_port", "is_main_process",  # StageInputError: for stages
           "relaunch_under_accelerate", "report_exit", "run_stage", "setup", "train_context", "write_csv",
           "write_json"]

log = logging.getLogger("prefpipe")


def setup(threads: int) -> None:
    """torch's threads and deterministic kernels, and transformers' logs, for a stage that computes."""
    import torch
    import transformers

    from prefpipe.train.determinism import use_deterministic_kernels

    transformers.utils.logging.set_verbosity_error()  # e.g. the expected "score.weight MISSING"
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(threads)
    use_deterministic_kernels(warn_only=True)


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> None:
    """A plot-data CSV (DVC plots read these); `columns` name the header (default: the first row's
    keys). With no rows, give `columns`: the file is then the header alone. A file of zero bytes
    makes `dvc repro` warn "'<path>' is empty." each time the stage runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = columns or (list(rows[0]) if rows else [])
    if not columns:
        path.write_text("")
        return
    lines = [",".join(columns)]
    lines += [",".join(_fmt(row.get(c)) for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def train_context(params: Params, stage: str, inputs: list[Path], settings):
    """Accelerate runtime and a checkpointer whose folder is keyed by the stage's params and inputs
    (a folder by its model version: prefpipe/models/version.py), so a rerun after a kill resumes,
    while changed params or data start afresh."""
    from prefpipe.models.version import model_version
    from prefpipe.train.checkpoint import Checkpointer
    from prefpipe.train.distributed import Runtime
    from prefpipe.train.loop import TrainContext
    from prefpipe.train.precision import resolve_precision

    runtime = Runtime()
    precision = resolve_precision(params.runtime.precision, runtime.device.type)  # 'auto' -> which
    digest = hashlib.sha256(json.dumps({"seed": params.seed, "settings": settings,
                                        "precision": precision,
                                        "length_groups": params.runtime.length_groups,
                                        "processes": runtime.world_size},
                                       sort_keys=True, default=asdict).encode())
    for path in inputs:
        digest.update(model_version(path).encode() if path.is_dir() else path.read_bytes())
    directory = Path(params.runtime.checkpoint_dir) / stage / digest.hexdigest()[:16]
    checkpointer = Checkpointer(directory, params.runtime.checkpoint_every, runtime.is_main,
                                runtime.barrier)
    return TrainContext(runtime, checkpointer, precision, length_groups=params.runtime.length_groups)


def relaunch_under_accelerate(name: str, params: Params) -> None:
    """runtime.processes > 1: re-run this stage under `accelerate launch` (once, not recursively)."""
    if params.runtime.processes <= 1 or "LOCAL_RANK" in os.environ:
        return
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes",
               str(params.runtime.processes)]
    if params.runtime.accelerate_config:
        command += ["--config_file", params.runtime.accelerate_config]
    else:  # torchrun-style DDP; without a GPU each process picks gloo on the CPU
        command += ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no",
                    "--dynamo_backend", "no"]
    command += ["--main_process_port", str(free_port()), "--num_cpu_threads_per_process",
                str(params.runtime.threads), "-m", f"tasks.{name}"]
    log.info("launching %d processes: %s", params.runtime.processes, " ".join(command))
    raise SystemExit(subprocess.call(command))


def free_port() -> int:
    """A loopback port for the processes' rendezvous (the default 29500 may be taken)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def report_exit(code: int, message: str, *, stop_run: bool = False, run_title: str = "") -> None:
    """Tell whoever started this stage (the flow, `prefpipe stage`: flows/dvc_state.py) how it ended,
    through the file $PREFPIPE_STAGE_STATUS names: `dvc repro` turns every failure into its own
    exit code 255, and its log text is no interface. A stage restored from DVC's run cache writes
    nothing, which is how the flow tells "restored" from "ran".

    `stop_run`: the run has nothing more to do (e.g. no round is due): the flow runs no later stage
    and ends Completed with `message`. `run_title`: the flow prefixes its run's name with it (e.g.
    "round 3"). Both mean nothing to `dvc repro`, which runs every stale stage anyway.

    A stage may report more than once (its recipe says stop_run, then `run_stage` says it ran):
    a run_title once given stays, and so does a stop_run with its message while the exit is 0."""
    path = os.environ.get("PREFPIPE_STAGE_STATUS")
    if not path:
        return
    try:
        earlier = json.loads(Path(path).read_text())
    except (FileNotFoundError, ValueError):
        earlier = {}
    if code == 0 and not stop_run and earlier.get("stop_run"):
        message, stop_run = earlier["message"], True
    Path(path).write_text(json.dumps({"exit": code, "message": message, "stop_run": stop_run,
                                      "run_title": run_title or earlier.get("run_title", "")}))


def run_stage(name: str, recipe: Callable[[Params, Store], dict], distributed: bool = False,
              uses_torch: bool | Callable[[Params], bool] = True) -> None:
    """Run `recipe(params, store)`; it returns the metrics to log. A `PrefpipeError` (bad params,
    data, store, labeler, inputs: the user can fix it) or a missing file logs one line and exits
    with 2; anything else is a bug and keeps its traceback.

    A `distributed` (training) stage runs under `accelerate launch` when runtime.processes > 1; only
    the main process records the run and writes outputs. A stage that moves files and metrics alone
    (`uses_torch` False, or a function of the params that says so) starts without importing torch
    and transformers (4-6 s)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s {name} %(levelname)s %(message)s")
    for noisy in ("httpx", "filelock", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    started = time.monotonic()
    try:
        params_file = os.environ.get("PREFPIPE_PARAMS", "params.yaml")
        params = load_params(params_file)
        check_against_data(params, params_file)
    except PrefpipeError as err:
        log.error("bad params: %s", err)
        report_exit(2, f"{name}: bad params: {err}")
        raise SystemExit(2) from None
    if distributed:
        relaunch_under_accelerate(name, params)
    if uses_torch(params) if callable(uses_torch) else uses_torch:
        setup(params.runtime.threads)
    if not gc.isenabled():  # tasks/__init__.py: off for the imports; what they made stays, frozen
        gc.freeze()
        gc.enable()
    if not is_main_process():  # other training ranks compute; the main one logs and records
        logging.getLogger().setLevel(logging.WARNING)
        recipe(params, None)
        return
    store = Store(params.store.path, params.store.lock_timeout_s)
    run_id = os.environ.get("PREFPIPE_RUN_ID", uuid.uuid4().hex[:12])
    started_at = datetime.now(UTC).replace(tzinfo=None)
    log.info("stage %s starting (run %s, seed %d, %d threads)", name, run_id, params.seed,
             params.runtime.threads)
    try:
        metrics = recipe(params, store)
    except (PrefpipeError, FileNotFoundError) as err:
        store.record_run(run_id, name, "failed", asdict(params), {"error": str(err)}, started_at)
        log.error("%s failed: %s", name, err)
        report_exit(2, f"{name} failed: {err}")
        raise SystemExit(2) from None
    except BaseException as err:
        store.record_run(run_id, name, "failed", asdict(params), {"error": repr(err)}, started_at)
        report_exit(1, f"{name} failed: {err!r} (a bug: the traceback is in the log)")
        raise
    store.record_run(run_id, name, "completed", asdict(params), metrics, started_at)
    report_exit(0, f"{name} ran")
    log.info("stage %s done in %.1fs: %s", name, time.monotonic() - started,
             json.dumps(metrics, sort_keys=True))
