"""Stage gate: evaluation's metrics against the gates of params.yaml; a failed gate fails the run.

Reads metrics/evaluate.json, applies `evaluate.kl_budget` and `evaluate.gates`
(prefpipe/evaluate/gates.py), logs one line per gate and writes metrics/gates.json whether or not
they pass, so a stopped run can be inspected (`dvc metrics show`, the Prefect run's artifacts). Any
failed gate ends the stage with exit code 2 and one line: each failed gate's reason, joined by "; "
(with `evaluate.enforce_gates: false`, a warning and the run goes on). A failed round is recorded
as rejected in the store's registry: it publishes nothing, and `current` stays where it was.
Run: sh tasks/python -m tasks.gate"""
from __future__ import annotations

import json
import logging

from prefpipe.config.schema import Params
from prefpipe.evaluate.gates import check_gates, failure_message, gates_report
from prefpipe.store import Store
from tasks import paths
from tasks._stage import StageInputError, run_stage, write_json
from tasks.round_info import read_round_info

log = logging.getLogger("prefpipe")
EVALUATION = paths.METRICS / "evaluate.json"
VERDICTS = paths.METRICS / "gates.json"


def gate(params: Params, store: Store) -> dict:
    if not EVALUATION.exists():
        raise StageInputError(f"{EVALUATION}: no evaluation metrics; run the evaluate stage first")
    metrics = json.loads(EVALUATION.read_text())
    verdicts = check_gates(metrics, params.evaluate.gates, params.evaluate.kl_budget)
    report = gates_report(verdicts)
    write_json(VERDICTS, report)
    for verdict in verdicts:
        level = logging.WARNING if verdict.status == "failed" else logging.INFO
        log.log(level, "%-7s %s", verdict.status, verdict.reason)
    log.info("verdicts -> %s", VERDICTS)
    if not report["passed"] and params.evaluate.enforce_gates:
        number = int(read_round_info()["round"])
        store.registry.finish_round(number, "rejected", message=failure_message(verdicts))
        raise StageInputError(f"round {number} rejected: {failure_message(verdicts)}")
    if not report["passed"]:
        log.warning("gates failed, but evaluate.enforce_gates is false: the run goes on (%s)",
                    failure_message(verdicts))
    counts = {status: sum(v.status == status for v in verdicts) for status in ("passed", "failed", "skipped")}
    return {"gates": len(verdicts), **counts}


if __name__ == "__main__":
    run_stage("gate", gate, uses_torch=False)
