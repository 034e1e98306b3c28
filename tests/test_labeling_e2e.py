"""End to end: human labels through the real annotation app while pipeline commands use the same
DuckDB file, the Prefect flow pausing for annotators, and import/export through the CLI.

Slow: a tiny repository runs prepare -> sft -> generate -> label through real `dvc`."""
from __future__ import annotations

import json
import re
import threading
import time

import duckdb
import httpx
import pytest

from tests.conftest import AnnotationApp, flow_runs, make_repo

pytestmark = pytest.mark.slow
ANNOTATORS = ("ann1", "ann2")
HUMAN_ROUTING = {"label": {"routing": {"arithmetic": "verifier", "code": "verifier", "harmful": "human",
                                       "default": "critic"},
                           "human": {"annotators": list(ANNOTATORS), "overlap": 2, "gold_every": 4,
                                     "wait_s": 300.0}}}


def label_some(url: str, token: str, limit: int, errors: list) -> int:
    """One annotator working through the JSON API: always prefers the first response shown."""
    done = 0
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        while done < limit:
            response = client.get("/api/next")
            if response.status_code != 200:
                errors.append(f"next {response.status_code}: {response.text}")
                return done
            task = response.json()["task"]
            if task is None:
                return done
            submitted = client.post("/api/submit", json={"task_id": task["task_id"], "choice": "first"})
            if submitted.status_code != 200:
                errors.append(f"submit {submitted.status_code}: {submitted.text}")
                return done
            done += 1
    return done


@pytest.fixture(scope="module")
def labeled_repo(tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("labeling"), None, HUMAN_ROUTING)
    repo.tokens = {}
    for name in ANNOTATORS:
        out = repo.prefpipe("label", "annotators", "add", name, "--admin").stdout
        repo.tokens[name] = re.search(r"token (\S+)", out).group(1)
    repo.dvc("repro", "label")
    return repo


def metrics(repo) -> dict:
    return json.loads((repo.path / "metrics" / "label.json").read_text())


def test_label_stage_queues_harmful_pairs_for_humans_and_falls_back_to_the_critic(labeled_repo):
    first = metrics(labeled_repo)
    harmful_pairs = first["human_pending"] // 2
    assert harmful_pairs > 0 and first["human_queued"] >= first["human_pending"]
    assert first["count_critic"] > 0 and "count_human" not in first
    assert first["critic_gold_agreement"] > 0.6


def test_app_and_pipeline_share_the_store_without_lock_failures(labeled_repo):
    app, errors = AnnotationApp(labeled_repo), []
    try:
        counts = {}
        workers = [threading.Thread(target=lambda n=name: counts.__setitem__(
            n, label_some(app.url, labeled_repo.tokens[n], 12, errors))) for name in ANNOTATORS]
        for worker in workers:
            worker.start()
        # meanwhile a pipeline stage opens the same DuckDB file many times (reads, writes, run log)
        stage = labeled_repo.prefpipe("stage", "label", "--force")
        for worker in workers:
            worker.join(timeout=300)
        assert not errors, errors
        assert counts == {name: 12 for name in ANNOTATORS}
        assert "stage label done" in stage.stdout + stage.stderr
        status = labeled_repo.prefpipe("label", "status").stdout
        assert "human labels:" in status and "gold accuracy" in status
    finally:
        app.stop()


def test_flow_pauses_for_annotators_and_collects_their_labels(labeled_repo, prefect_server):
    labeled_repo.api_url = prefect_server
    app, errors = AnnotationApp(labeled_repo), []

    def finish_queues_after_the_pause():
        time.sleep(8)  # the flow pauses once the label stage has run
        for name in ANNOTATORS:
            label_some(app.url, labeled_repo.tokens[name], 10_000, errors)

    try:
        worker = threading.Thread(target=finish_queues_after_the_pause)
        worker.start()
        run = labeled_repo.prefpipe("run", "--stage", "label")
        worker.join(timeout=300)
    finally:
        app.stop()
    assert not errors, errors
    output = run.stdout + run.stderr
    assert "pausing for" in output and "resuming: 0 human tasks pending" in output
    after = metrics(labeled_repo)
    assert after["human_pending"] == 0 and after["count_human"] > 0
    assert after["gold_agreement_human"] >= 0.0 and "human_alpha" in after
    flow_run = [r for r in flow_runs(prefect_server) if r["state_type"] == "COMPLETED"][-1]
    states = httpx.get(f"{prefect_server}/flow_run_states/", params={"flow_run_id": flow_run["id"]})
    assert "Paused" in [state["name"] for state in states.json()]


def test_export_then_import_through_the_cli(labeled_repo, tmp_path):
    out = tmp_path / "prefs.jsonl"
    exported = labeled_repo.prefpipe("label", "export", str(out), "--format", "trl").stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and set(rows[0]) >= {"prompt", "chosen", "rejected"}
    assert f"{len(rows)} preference rows" in exported
    imported = labeled_repo.prefpipe("label", "import", str(out), "--format", "trl").stdout
    assert "rows" in imported
    bad = tmp_path / "bad.jsonl"
    bad.write_text(out.read_text().splitlines()[0] + "\n" + '{"prompt": "p", "chosen": "x"}\n')
    failed = labeled_repo.prefpipe("label", "import", str(bad), "--format", "trl", check=False)
    assert failed.returncode == 2 and "bad.jsonl: line 2" in failed.stderr


def test_label_imports_are_trained_on_and_bad_rows_stop_the_stage(labeled_repo, tmp_path):
    inputs = labeled_repo.path / "data" / "inputs"
    labeled_repo.prefpipe("label", "export", str(inputs / "mine.jsonl"), "--format", "hh")
    lines = (inputs / "mine.jsonl").read_text().splitlines()
    exported = len(set(lines))  # distinct preferences
    before = metrics(labeled_repo)["preferences"] - metrics(labeled_repo)["imported"]
    labeled_repo.set_params({"label": {"imports": [{"path": "data/inputs/mine.jsonl", "format": "hh"}],
                                       "human": {"wait_s": 0.0}}})
    labeled_repo.dvc("repro", "label")
    after = metrics(labeled_repo)
    assert after["imported"] == exported and after["preferences"] == before + exported
    pairs_before = stored_pairs(labeled_repo)
    with open(inputs / "mine.jsonl", "a") as handle:
        handle.write('{"chosen": "\\n\\nHuman: hi\\n\\nAssistant: a", "rejected": "no transcript"}\n')
    failed = labeled_repo.dvc("repro", "label", check=False)
    assert failed.returncode != 0
    assert f"mine.jsonl: line {len(lines) + 1}" in failed.stdout + failed.stderr
    assert stored_pairs(labeled_repo) == pairs_before  # nothing of the bad file entered the store


def stored_pairs(repo) -> int:
    with duckdb.connect(str(repo.path / "store" / "prefpipe.duckdb"), read_only=True) as con:
        return con.execute("SELECT count(*) FROM pairs").fetchall()[0][0]
