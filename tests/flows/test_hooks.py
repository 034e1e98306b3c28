"""The hooks a stage declares in dvc.yaml (`meta: {after: ...}`) and the flow dispatches on."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from flows import hooks
from flows.dag import Stage, load_stages
from prefpipe.errors import ConfigError, PrefpipeError

REPO = Path(__file__).resolve().parents[2]


def stage(after: str | None) -> Stage:
    return Stage("s", "cmd", (), (), (), after)


def test_every_hook_declared_in_dvc_yaml_is_registered():
    hooks.check_hooks(load_stages(REPO / "dvc.yaml"))


def test_an_unknown_hook_fails_before_any_stage_runs():
    with pytest.raises(ConfigError, match="'wait_for_nobody'") as err:
        hooks.check_hooks([stage(None), stage("wait_for_nobody")], "my/dvc.yaml")
    assert isinstance(err.value, PrefpipeError) and "my/dvc.yaml: stage s" in str(err.value)


def human_params(wait_s: float) -> SimpleNamespace:
    return SimpleNamespace(label=SimpleNamespace(human=SimpleNamespace(wait_s=wait_s)),
                           store=SimpleNamespace(path="store/prefpipe.duckdb", lock_timeout_s=1.0))


def test_wait_for_humans_does_nothing_when_waiting_is_off(tmp_path):
    def rerun() -> str:
        raise AssertionError("must not rerun")

    assert hooks.wait_for_humans(stage("wait_for_humans"), human_params(0.0), rerun, tmp_path) is None
    assert not (tmp_path / "store").exists()  # did not even open the store


def test_importing_the_flow_modules_sets_no_environment():
    code = ("import os; before = dict(os.environ); import flows.hooks, flows.dag, flows.cli, "
            "flows.dvc_state; import sys; assert dict(os.environ) == before; "
            "assert 'prefect' not in sys.modules, 'prefect imported'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_importing_the_flow_itself_sets_no_environment(tmp_path):
    code = ("import os; before = dict(os.environ); import flows.pipeline, flows.human_wait; "
            "assert dict(os.environ) == before")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path)  # the entry point's job; here the test's
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True)


def test_wait_for_humans_waits_then_reruns_the_stage(tmp_path, monkeypatch):
    import prefpipe.annotate.human_queue as human_queue

    waited = []
    monkeypatch.setattr(human_queue, "pending_tasks", lambda store: 3)
    monkeypatch.setitem(sys.modules, "flows.human_wait", SimpleNamespace(
        wait_for_human_labels=lambda store, wait_s: waited.append(wait_s)))
    outcome = hooks.wait_for_humans(stage("wait_for_humans"), human_params(30.0), lambda: "ran", tmp_path)
    assert outcome == "ran" and waited == [30.0]


def test_wait_for_humans_skips_the_wait_when_nothing_is_pending(tmp_path, monkeypatch):
    import prefpipe.annotate.human_queue as human_queue

    monkeypatch.setattr(human_queue, "pending_tasks", lambda store: 0)
    monkeypatch.setitem(sys.modules, "flows.human_wait", SimpleNamespace(
        wait_for_human_labels=lambda store, wait_s: pytest.fail("must not wait")))
    outcome = hooks.wait_for_humans(stage("wait_for_humans"), human_params(30.0), lambda: "ran", tmp_path)
    assert outcome is None
