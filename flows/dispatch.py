"""Stages run by a Prefect worker: `orchestration.work_pools: {STAGE: POOL}` in params.yaml.

A stage named there is not run by the flow's own process: its task run starts a run of the
deployment `prefpipe-stage/POOL` (this module's flow, `run_stage_on_worker`) as a subflow of itself,
and waits for it. A worker of the pool (`prefect worker start --pool POOL`, e.g. on a GPU machine)
picks the run up, changes to its checkout of the project ($PREFPIPE_ROOT in the worker's
environment: the deployment's pull step) and runs the same dvc-tracked stage there (`dvc repro
--single-item STAGE`, flows.dvc_state.repro), its output in the run's log. Stages not named run in
the flow, as before.

Outputs come back through the checkout itself: the worker's checkout must be the dispatching run's
checkout, the same directory or one shared volume mounted on both machines (NFS, a Kubernetes
PersistentVolume), so the stage's outs, dvc.lock and the store are written where the next stage
reads them. Nothing is copied: moving outputs through a DVC remote is not done here. The dispatching
flow run holds the workspace lock (flows/workspace.py) for the whole run, so the worker's run takes
none. How the stage ended (a Repro) comes back as JSON in the message of the worker run's final
state (Completed on exit 0, else Failed), so the machines share no result storage.

The deployment is created with Prefect's client on first use; one a platform engineer deployed
(infra/prefect.yaml) is used as it is, never overwritten. The pool itself must exist. A run no
worker starts within `orchestration.dispatch_timeout_s` is cancelled, and the stage fails with a
line saying how to start one."""
from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.runtime import flow_run
from prefect.settings import PREFECT_API_URL
from prefect.states import Cancelled, Cancelling, Completed, Failed, State

from flows.dag import Stage
from flows.dvc_state import Repro, repro
from flows.env import ROOT
from prefpipe.config.schema import OrchestrationParams
from prefpipe.errors import ConfigError

FLOW = "prefpipe-stage"  # the deployment for pool P is "prefpipe-stage/P"
ENTRYPOINT = "flows/dispatch.py:run_stage_on_worker"
PULL_STEPS = [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $PREFPIPE_ROOT }}"}}]
POLL_S = 1.0  # how often the dispatching task asks how the worker's run is doing
SAY_EVERY_S = 30.0  # how often it says it still waits for a worker


@flow(name=FLOW, persist_result=False)
def run_stage_on_worker(stage: str, force: bool = False, run_id: str = "") -> State:
    """On a worker: `dvc repro --single-item STAGE` in this checkout, its output to the run's log.
    Ends Completed (exit 0) or Failed, the message the Repro as JSON. `run_id`: the dispatching
    pipeline run's id, which the stage records (PREFPIPE_RUN_ID) as an in-flow stage does."""
    logger = get_run_logger()
    logger.info("stage %s runs on host %s, pid %d, in the checkout %s", stage, socket.gethostname(),
                os.getpid(), ROOT)
    result = repro(stage, force, ROOT, on_line=logger.info,
                   PREFPIPE_RUN_ID=run_id or str(flow_run.get_id()))
    return (Completed if result.exit_code == 0 else Failed)(message=encode(result))


def encode(result: Repro) -> str:
    return json.dumps(asdict(result))


def decode(message: str | None) -> Repro | None:
    """The Repro a worker's run ended with; None when its message holds none (it crashed)."""
    try:
        return Repro(**json.loads(message or ""))
    except (ValueError, TypeError):
        return None


def check_work_pools(orchestration: OrchestrationParams, stages: list[Stage], source: Path) -> None:
    """Every stage `orchestration.work_pools` names is a stage of dvc.yaml; else a ConfigError."""
    known = [stage.name for stage in stages]
    for name in orchestration.work_pools:
        if name not in known:
            raise ConfigError(f"{source}: orchestration.work_pools.{name}: no such stage; "
                              f"dvc.yaml has {known}")


def dispatch(stage: str, force: bool, pool: str, timeout_s: float, run_id: str,
             say: Callable[[str], None]) -> Repro:
    """Run `stage` on a worker of `pool` and wait for it: how it ended, as flows.dvc_state.repro says
    it. A pool that does not exist ends it with exit code 2 (the user can fix it); a run that no
    worker starts within `timeout_s`, or that crashed or was cancelled, with 1. Called from the
    stage's task run, whose subflow the worker's run is; stopped (a signal) while it waits, it
    cancels the worker's run."""
    with get_client(sync_client=True) as client:
        problem = ensure_deployment(client, pool, say)
        if problem:
            return Repro(stage, 2, "failed", f"{stage}: {problem}")
        run = run_deployment(f"{FLOW}/{pool}", parameters={"stage": stage, "force": force, "run_id": run_id},
                             flow_run_name=f"{stage} · {pool}", timeout=0, as_subflow=True)
        say(f"{stage} sent to work pool {pool}: flow run {run.name} ({run.id})")
        try:
            state = wait_for_worker_run(client, run.id, stage, pool, timeout_s, say)
        except BaseException:  # SIGTERM, SIGINT: the worker's run must not go on without this run
            cancel(client, run.id, "the dispatching run stopped", say)
            raise
    return outcome(stage, pool, state, timeout_s)


def outcome(stage: str, pool: str, state: State, timeout_s: float) -> Repro:
    """The Repro the worker's run ended with, or one saying why there is none: no worker started it
    in time (`state` not final), or it crashed or was cancelled."""
    if state.is_scheduled():
        return Repro(stage, 1, "failed", f"no worker took stage {stage} from work pool {pool} in "
                     f"{timeout_s:g} s: start one with `prefect worker start --pool {pool}`")
    if state.is_pending():
        return Repro(stage, 1, "failed", f"a worker of work pool {pool} took stage {stage} but did not "
                     f"start it in {timeout_s:g} s: see that worker's log")
    said = decode(state.message) if state.is_completed() or state.is_failed() else None
    return said or Repro(stage, 1, "failed", f"{stage} on work pool {pool} ended {state.name}: "
                         f"{state.message or 'no message'}")


def ensure_deployment(client: SyncPrefectClient, pool: str, say: Callable[[str], None]) -> str | None:
    """Why `stage` cannot be sent to `pool` (None: it can): the pool must exist; the deployment
    `prefpipe-stage/POOL` is created when missing, and left as it is when there."""
    try:
        client.read_work_pool(pool)
    except ObjectNotFound:
        return (f"orchestration.work_pools names work pool {pool!r}, which the Prefect server at "
                f"{PREFECT_API_URL.value() or '(a temporary one)'} does not have: create it "
                f"(`prefect work-pool create {pool} --type process`) and start a worker on it")
    try:
        client.read_deployment_by_name(f"{FLOW}/{pool}")
        return None
    except ObjectNotFound:
        pass
    client.create_deployment(
        client.create_flow_from_name(FLOW), pool, work_pool_name=pool, entrypoint=ENTRYPOINT,
        pull_steps=PULL_STEPS,
        parameter_openapi_schema=run_stage_on_worker.parameters.model_dump_for_openapi(),
        description="One dvc stage, run by a worker in its checkout ($PREFPIPE_ROOT): flows/dispatch.py")
    say(f"created the deployment {FLOW}/{pool}")
    return None


def wait_for_worker_run(client: SyncPrefectClient, run_id: UUID, stage: str, pool: str, timeout_s: float,
                        say: Callable[[str], None]) -> State:
    """The worker's run's final state; or its Scheduled or Pending state when no worker started it
    within `timeout_s`: then it is cancelled, so that a worker started later does not run the stage
    outside this run."""
    start, said = time.monotonic(), None
    while True:
        state = client.read_flow_run(run_id).state
        if state.is_final():
            return state
        waited = time.monotonic() - start
        if state.is_scheduled() or state.is_pending():
            if waited >= timeout_s:
                cancel(client, run_id, f"no worker started it within {timeout_s:g} s", say)
                return state
            if said is None or waited - said >= SAY_EVERY_S:
                say(f"{stage}: waiting for a worker on work pool {pool} ({waited:.0f} s of up to "
                    f"{timeout_s:g} s, orchestration.dispatch_timeout_s)")
                said = waited
        time.sleep(POLL_S)


def cancel(client: SyncPrefectClient, run_id: UUID, why: str, say: Callable[[str], None]) -> None:
    """Cancel the worker's run: at once while it waits for a worker, else through its worker
    (Cancelling: the worker stops its process). One that cannot be cancelled is only reported."""
    try:
        state = client.read_flow_run(run_id).state
        if state is None or not state.is_final():
            client.set_flow_run_state(run_id, Cancelled(message=why) if state is None or state.is_scheduled()
                                      else Cancelling(message=why))
    except Exception as err:  # the stage's own outcome is the one to report
        say(f"could not cancel the worker's flow run {run_id}: {err!r}")
