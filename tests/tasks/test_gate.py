"""Stage gate's recipe (tasks/gate.py): metrics/gates.json is written whether the gates pass or not,
a failed gate raises the user-fixable stage error with every reason, and enforce_gates: false only warns."""
from __future__ import annotations

import dataclasses
import json
import logging

import pytest

from prefpipe.config import Params
from prefpipe.errors import StageInputError
from prefpipe.store import Store
from tasks.gate import gate


def in_folder(tmp_path, monkeypatch, metrics: dict | None) -> None:
    monkeypatch.chdir(tmp_path)
    if metrics is not None:
        (tmp_path / "metrics").mkdir()
        (tmp_path / "metrics" / "evaluate.json").write_text(json.dumps(metrics))


def verdicts(tmp_path) -> dict:
    return json.loads((tmp_path / "metrics" / "gates.json").read_text())


def test_a_failed_gate_fails_the_stage_rejects_the_round_and_still_writes_the_verdicts(
        tmp_path, monkeypatch, caplog):
    in_folder(tmp_path, monkeypatch, {"kl_nats": 7.35, "win_rate_low": 0.222})
    (tmp_path / "data" / "round").mkdir(parents=True)
    (tmp_path / "data" / "round" / "round.json").write_text(json.dumps({"round": 1}))
    store = Store(tmp_path / "store.duckdb")
    store.registry.start_round(1, "sft", "", "", 0, 0, "test", prompt_ids=[], flow_run_id="")
    with caplog.at_level(logging.INFO, logger="prefpipe"), pytest.raises(StageInputError) as err:
        gate(Params(), store)
    reasons = ("kl_nats 7.35 > max 5 (evaluate.kl_budget): KL drift; win_rate_low 0.222 < "
               "min 0.5 (evaluate.gates.win_rate_low): no better than the reference")
    assert str(err.value) == "round 1 rejected: " + reasons
    (round_row,) = store.registry.rounds()
    assert (round_row["status"], round_row["message"]) == ("rejected", reasons)
    assert store.registry.current() is None
    written = verdicts(tmp_path)
    assert written["passed"] is False and written["failed"] == ["kl_budget", "win_rate_low"]
    assert written["verdicts"]["policy_distinct_2"]["status"] == "skipped"
    lines = [r.getMessage() for r in caplog.records if r.name == "prefpipe"]
    assert sum(line.startswith("failed ") for line in lines) == 2
    assert sum(line.startswith("skipped ") for line in lines) == 7  # one line per gate


def test_passing_gates_pass_the_stage(tmp_path, monkeypatch):
    in_folder(tmp_path, monkeypatch, {"kl_nats": 1.7, "win_rate_low": 0.69})
    assert gate(Params(), None) == {"gates": 9, "passed": 2, "failed": 0, "skipped": 7}
    assert verdicts(tmp_path)["passed"] is True


def test_with_enforce_gates_off_a_failed_gate_only_warns(tmp_path, monkeypatch, caplog):
    in_folder(tmp_path, monkeypatch, {"kl_nats": 12.8})
    params = Params(evaluate=dataclasses.replace(Params().evaluate, enforce_gates=False))
    with caplog.at_level(logging.WARNING, logger="prefpipe"):
        result = gate(params, None)
    assert result["failed"] == 1 and verdicts(tmp_path)["failed"] == ["kl_budget"]
    assert any("evaluate.enforce_gates is false" in r.getMessage() for r in caplog.records)


def test_no_evaluation_metrics_is_a_stage_error(tmp_path, monkeypatch):
    in_folder(tmp_path, monkeypatch, None)
    with pytest.raises(StageInputError, match="metrics/evaluate.json: no evaluation metrics"):
        gate(Params(), None)
    assert not (tmp_path / "metrics" / "gates.json").exists()
