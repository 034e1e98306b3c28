"""End to end: rounds run by a served Prefect deployment (started here) against the real Prefect
server, on tiny params, with harmful pairs routed to one human annotator (the critic stands in while
her answers are missing).

1. round 1 samples from SFT and publishes;
2. round 2, started by `prefpipe run`, is killed in train_policy after its first checkpoint; the
   deployment's next run resumes it and publishes from round 1's version;
3. round 3's gate is forced to fail: the run fails with the gate named, its verdicts and artifacts
   say why, nothing is published and `current` stays at round 2's version;
4. a run with nothing new (rounds.iterations done) ends in seconds without training;
5. alice answers some of her tasks in the real app, against the critic; the next run is round 4, for
   her labels: it samples from round 2's version (the last good one), retrains, and trains on her
   preferences instead of the critic's;
6. `prefpipe reproduce` of round 2's version reruns it from its recorded inputs after rounds 3 and 4:
   every output has the hash the resumed round recorded.

Slow (about ten minutes): every stage is a real subprocess started by DVC."""
from __future__ import annotations

import json
import re
import time
from datetime import datetime

import httpx
import pytest

from prefpipe.store import Store, read_parquet, rows
from tests.conftest import AnnotationApp, make_repo, merge, task_runs
from tests.rounds_drivers import (
    OPPOSITE,
    answer_in_the_browser,
    cli,
    commit,
    deployment_id,
    run_deployment,
    run_until,
    serve,
)

pytestmark = pytest.mark.slow
DEPLOYMENT = "rounds-e2e"
ANNOTATOR = "alice"
ANSWERS = 6
LAX_GATES = {"enforce_gates": True, "kl_budget": 1000.0, "gates": {
    "win_rate_low": {"min": 0.0}, "accuracy_drop": {"max": 1.0}, "policy_same_opener_share": {"max": 1.0},
    "policy_distinct_2": {"min": 0.0}, "policy_prompt_independent_share": {"max": 1.0},
    "proxy_divergence": {"max": 1.0}, "length_drift": {"max": 100.0},
    "policy_repeated_ngram_share": {"max": 1.0}}}
PARAMS = {"generate": {"prompts": 60}, "evaluate": {"prompts": 24, **LAX_GATES},
          "rounds": {"iterations": 3}, "runtime": {"checkpoint_every": 4},
          "label": {"routing": {"arithmetic": "verifier", "code": "verifier", "harmful": "human",
                                "default": "critic"},
                    "human": {"annotators": [ANNOTATOR], "overlap": 1, "gold_every": 0, "wait_s": 0.0,
                              "missing": "critic"}}}
CHECKPOINTS = "checkpoints/train_policy/*/state.pt"  # tasks/_stage.train_context's folder
RESUMED = re.compile(r"resuming from (checkpoints/train_policy/\S+) at step (\d+)")  # checkpoint.py
TRAINING = {"generate", "label", "train_reward", "train_policy", "evaluate", "gate", "publish"}
TRAINED = ("train_reward:models/reward", "train_policy:models/policy")
# round 2: a checkpoint every 4 DPO steps of 12 epochs, so the kill lands in training however busy
# the machine; the other rounds train TINY's one epoch
LONG_TRAINING, SHORT_TRAINING = ({"policy": {"dpo": {"optim": {"epochs": e}}}} for e in (12.0, 1.0))
FAILING_GATES = {"win_rate_low": {"min": 0.999}, "policy_no_such_signal": {"max": 1.0}}  # round 3's
STALE = {"passed": False, "verdicts": {"old": {"status": "failed", "reason": "from another run"}}}


@pytest.fixture(scope="module")
def rounds(tmp_path_factory, prefect_server):
    repo = make_repo(tmp_path_factory.mktemp("rounds"), prefect_server, PARAMS)
    api = prefect_server
    repo.token = re.search(r"token (\S+)", repo.prefpipe("label", "annotators", "add", ANNOTATOR).stdout)[1]
    commit(repo.path)  # publish records HEAD; reproduce checks it out
    repo.store = Store(repo.path / "store" / "prefpipe.duckdb")
    server = serve(repo.path, api, DEPLOYMENT)
    repo.runs, repo.locks = {}, {}
    try:
        deployment = deployment_id(api, DEPLOYMENT)
        repo.runs[1] = run_deployment(api, deployment)
        repo.set_params(LONG_TRAINING)
        repo.killed_at = run_until(repo.path, api, CHECKPOINTS)
        repo.rounds_after_kill = repo.store.registry.rounds()
        repo.runs[2] = run_deployment(api, deployment)
        repo.set_params(merge(SHORT_TRAINING, {"evaluate": {"gates": FAILING_GATES}}))  # round 3 must fail
        stale = repo.path / "metrics" / "stale.json"  # verdicts no stage of round 3 writes
        stale.write_text(json.dumps(STALE))
        repo.runs[3] = run_deployment(api, deployment)
        repo.gates_of_round_3 = json.loads((repo.path / "metrics" / "gates.json").read_text())
        stale.unlink()
        repo.set_params({"evaluate": {"gates": {"win_rate_low": {"min": 0.0}}}})
        repo.runs["idle"] = run_deployment(api, deployment)
        repo.locks["idle"] = repo.lock_hashes()
        repo.earlier_pairs = repo.store.registry.pairs_before(4)
        app = AnnotationApp(repo)
        try:
            repo.meant = answer_in_the_browser(app.url, repo.token, repo.earlier_pairs, ANSWERS)
        finally:
            app.stop()
        repo.runs[4] = run_deployment(api, deployment)
        repo.locks[4] = repo.lock_hashes()
    finally:
        server.terminate()
        server.wait(timeout=60)
    repo.serve_log = (repo.path / "serve.log").read_text()
    return repo


def states(repo) -> dict:
    return {key: run["state_type"] for key, run in repo.runs.items()}


def test_each_round_samples_from_the_last_published_version(rounds):
    assert states(rounds) == {1: "COMPLETED", 2: "COMPLETED", 3: "FAILED", "idle": "COMPLETED",
                              4: "COMPLETED"}, rounds.serve_log[-3000:]
    by_round = {r["round"]: r for r in rounds.store.registry.rounds()}
    assert [by_round[n]["status"] for n in (1, 2, 3, 4)] == ["published", "published", "rejected",
                                                             "published"]
    assert set(by_round) == {1, 2, 3, 4}  # the idle run started no round
    versions = {v["round"]: v for v in rounds.store.registry.versions()}
    assert set(versions) == {1, 2, 4}
    assert versions[1]["parent_version"] == "sft" and by_round[1]["generator_version"] == "sft"
    assert versions[2]["parent_version"] == versions[1]["version"] == by_round[2]["generator_version"]
    # round 3 failed its gate: round 4 samples from round 2's version, not round 3's policy
    assert by_round[3]["generator_version"] == versions[2]["version"]
    assert by_round[4]["generator_version"] == versions[2]["version"] == versions[4]["parent_version"]
    assert rounds.store.registry.current()["version"] == versions[4]["version"]
    # the generator's weights are the parent's: the candidates carry its model hash
    assert by_round[2]["generator_hash"] == versions[1]["model_hash"]
    assert by_round[4]["generator_hash"] == versions[2]["model_hash"]


def artifacts(api_url: str, flow_run_id: str) -> dict[str, dict]:
    found = httpx.post(f"{api_url}/artifacts/filter",
                       json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}).json()
    return {a["key"]: a for a in found}


def test_a_failed_gate_fails_the_run_and_its_artifacts_say_why(rounds, prefect_server):
    run = rounds.runs[3]
    assert "gate failed: round 3 rejected: win_rate_low " in run["state"]["message"], run["state"]
    tasks = {t["name"]: t["state_type"] for t in task_runs(prefect_server, run["id"])}
    assert tasks.pop("gate") == "FAILED" and set(tasks.values()) == {"COMPLETED"}, tasks
    written = rounds.gates_of_round_3
    assert written["passed"] is False and written["failed"] == ["win_rate_low"], written
    assert written["verdicts"]["policy_no_such_signal"]["status"] == "skipped"
    assert written["verdicts"]["kl_budget"]["status"] == "passed"
    found = artifacts(prefect_server, run["id"])
    assert {"prefpipe-summary", "prefpipe-report", "prefpipe-gates"} <= set(found), sorted(found)
    assert found["prefpipe-gates"]["type"] == "markdown"
    assert "## gates: FAILED" in found["prefpipe-gates"]["data"]
    assert "| win_rate_low | FAILED |" in found["prefpipe-gates"]["data"]
    assert "win_rate" in json.dumps(found["prefpipe-summary"]["data"])
    assert "prefpipe-stale" not in found  # stale files of no stage this run ran stay out


def test_passing_gates_show_their_verdicts(rounds, prefect_server):
    gates = artifacts(prefect_server, rounds.runs[4]["id"])["prefpipe-gates"]
    assert "## gates: passed" in gates["data"] and "| win_rate_low | passed |" in gates["data"]


def test_a_published_version_records_its_lineage_and_artifacts(rounds):
    version = rounds.store.registry.versions()[-1]
    assert version["label_counts"] and sum(version["label_counts"].values()) > 0
    assert "win_rate" in version["metrics"] and version["gates"]["passed"] is True
    assert "stages:" in version["dvc_lock"] and "rounds:" in version["params_yaml"]
    assert len(version["git_revision"]) == 40
    assert (rounds.path / version["artifact_uri"] / "policy" / "config.json").exists()


def test_a_killed_round_resumes_from_its_checkpoint(rounds):
    assert [(r["round"], r["status"]) for r in rounds.rounds_after_kill] == [(1, "published"), (2, "running")]
    resumed = rounds.serve_log.split("round 2 was left unfinished: resuming it", 1)
    assert len(resumed) == 2, rounds.serve_log[-3000:]
    match = RESUMED.search(resumed[1])
    assert match and int(match[2]) > 0, resumed[1][-3000:]
    assert not list(rounds.path.glob(CHECKPOINTS))  # a finished stage leaves no checkpoint behind


def test_a_run_with_nothing_new_completes_in_seconds_without_training(rounds, prefect_server):
    idle = rounds.runs["idle"]
    took = datetime.fromisoformat(idle["end_time"]) - datetime.fromisoformat(idle["start_time"])
    assert took.total_seconds() <= 30, took
    ran = {t["name"] for t in task_runs(prefect_server, idle["id"])}
    assert ran and not ran & TRAINING, ran
    found = artifacts(prefect_server, idle["id"]).values()
    assert any("nothing new since round 3" in json.dumps(a["data"]) for a in found), found


def test_round_runs_are_named_by_their_round(rounds):
    names = {key: run["name"] for key, run in rounds.runs.items()}
    assert {key: name.split(" · ")[0] for key, name in names.items() if key != "idle"} == \
        {1: "round 1", 2: "round 2", 3: "round 3", 4: "round 4"}, names
    assert not names["idle"].startswith("round"), names


def test_app_labels_between_runs_start_a_round_that_retrains(rounds):
    last = rounds.store.registry.rounds()[-1]
    assert "new human labels" in last["reason"], last["reason"]
    assert len(rounds.meant) >= ANSWERS // 2, rounds.meant  # most tasks were recognised pairs
    for key in TRAINED:
        assert rounds.locks[4][key] != rounds.locks["idle"][key], key


def test_round_4_trains_on_her_preferences_not_the_critics(rounds):
    by_pair = {p["pair_id"]: p for p in rounds.earlier_pairs}
    history = {r["pair_id"]: r for r in rows(read_parquet(rounds.path / "data/round/history.parquet"))}
    preferences = {p["pair_id"]: p for p in rows(read_parquet(rounds.path / "data/preferences.parquet"))}
    flipped = 0
    for pair_id, choice in rounds.meant.items():
        assert (history[pair_id]["source"], history[pair_id]["choice"]) == ("human", choice)
        pair, preference = by_pair[pair_id], preferences[pair_id]
        assert preference["source"] == "human" and preference["chosen"] == pair[f"response_{choice}"]
        flipped += pair["choice"] == OPPOSITE[choice]  # the critic had picked the other side
    assert flipped > 0, "no answer disagreed with a decisive critic label"
    untouched = [p for p in rounds.earlier_pairs if p["pair_id"] not in rounds.meant
                 and p["pair_id"] in preferences]
    assert untouched and all(preferences[p["pair_id"]]["source"] == p["source"] for p in untouched)


def test_reproducing_round_2_after_later_rounds_gives_its_hashes(rounds, prefect_server, tmp_path):
    """Round 2 was resumed after a kill: an uninterrupted rerun of it matches it hash for hash."""
    version = next(v for v in rounds.store.registry.versions() if v["round"] == 2)
    started = time.monotonic()
    rerun = cli(rounds.path, prefect_server, "reproduce", version["version"])
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-1500:]
    assert "all outs match" in rerun.stdout, rerun.stdout[-3000:]
    assert "resuming from" not in rerun.stdout + rerun.stderr
    policy = [line for line in rerun.stdout.splitlines() if line.startswith("train_policy ")]
    assert any("models/policy" in line and line.rstrip().endswith("match") for line in policy), policy
    print(f"\nreproduce of round 2: {time.monotonic() - started:.0f}s")
