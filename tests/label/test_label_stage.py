"""The label stage (tasks/label.py) with the critic's http judge against the real loopback server:
it reports how many answers came from the cache, flags degenerate labels, and marks as used for
training only labels that give a preference; your own prompts routed to the verifier are checked by
their answers, and those without one go undecided."""
from __future__ import annotations

import json
import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from prefpipe.config import load_params
from prefpipe.label.critic.http_judge import JudgeHTTPError
from prefpipe.store import Store
from tasks import paths
from tasks.label import label
from tests.conftest import write_round_one
from tests.label.critic.openai_server import MARKER, OpenAIServer

PAIRS = 24


def write_inputs(marked: bool) -> None:
    """PAIRS user pairs; with `marked`, every even pair's response a carries the server's MARKER (the
    judge prefers it), else the server answers 'A' to every question."""
    pairs, prompts = [], []
    for i in range(PAIRS):
        good = marked and i % 2 == 0
        prompts.append({"prompt_id": f"x{i}", "source": "mine.jsonl", "category": "general",
                        "prompt": f"question {i}?", "meta": None, "split": "train"})
        pairs.append({"pair_id": f"p{i}", "prompt_id": f"x{i}", "category": "general",
                      "prompt": f"question {i}?", "response_a": f"{MARKER} a {i}" if good else f"a {i}",
                      "finished_a": True, "response_b": f"b {i}", "finished_b": True})
    paths.DATA.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(pairs), paths.PAIRS)
    pq.write_table(pa.Table.from_pylist(prompts), paths.PROMPTS)


def label_with(tmp_path, caplog, section: dict) -> dict:
    """The label stage run with `section` as params.yaml's `label` (round one written to the store
    the first time), its log in a cleared `caplog`; returns its metrics."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"label": section}))
    params = load_params(tmp_path / "params.yaml", check_paths=False)
    caplog.clear()
    store = Store(tmp_path / "store" / "prefpipe.duckdb")
    if not paths.ROUND_INFO.exists():
        write_round_one(store)
    with caplog.at_level(logging.INFO, logger="prefpipe"):
        label(params, store)
    return json.loads((paths.METRICS / "label.json").read_text())


def critic_only(http: dict, **more) -> dict:
    """params.yaml's `label` that routes every pair to the critic with the http judge `http`, plus `more`."""
    return {"routing": {"default": "critic"}, "critic": {"judge": "http", "http": http}, **more}


def run_label(tmp_path, base_url: str, caplog, max_retries: int = 3) -> dict:
    http = {"base_url": base_url, "model": "judge-model", "concurrency": 4, "max_retries": max_retries,
            "cache_path": str(tmp_path / "critic_cache.sqlite")}
    return label_with(tmp_path, caplog, critic_only(http))


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_log_and_metrics_count_cached_answers_and_another_server_is_asked(in_tmp, caplog):
    write_inputs(marked=True)
    with OpenAIServer() as first, OpenAIServer() as second:
        metrics = run_label(in_tmp, first.base_url, caplog)
        assert (metrics["critic_cache_hits"], metrics["critic_judge_calls"]) == (0, 2 * PAIRS)
        assert f"0 answers from the cache, {2 * PAIRS} from the judge" in caplog.text

        metrics = run_label(in_tmp, first.base_url, caplog)  # a rerun: all from the cache
        assert (metrics["critic_cache_hits"], metrics["critic_judge_calls"]) == (2 * PAIRS, 0)
        assert f"{2 * PAIRS} answers from the cache, 0 from the judge" in caplog.text
        assert first.requests == 2 * PAIRS

        metrics = run_label(in_tmp, second.base_url, caplog)  # another server: asked afresh
        assert (metrics["critic_cache_hits"], metrics["critic_judge_calls"]) == (0, 2 * PAIRS)
        assert second.requests == 2 * PAIRS
    assert metrics["degenerate_warnings"] == 0 and "degenerate" not in caplog.text


def test_a_base_url_where_nothing_listens_fails_despite_a_warm_cache(in_tmp, caplog):
    write_inputs(marked=True)
    with OpenAIServer() as server:
        run_label(in_tmp, server.base_url, caplog)
    with OpenAIServer() as gone:
        nowhere = gone.base_url
    with pytest.raises(JudgeHTTPError, match="gave up"):
        run_label(in_tmp, nowhere, caplog, max_retries=0)


def test_ties_are_not_used_for_training(in_tmp, caplog):
    write_inputs(marked=True)
    with OpenAIServer() as server:
        metrics = run_label(in_tmp, server.base_url, caplog)
    labels = pq.read_table(paths.LABELS).to_pylist()
    assert {row["choice"] for row in labels} == {"a", "tie"}  # odd pairs: the judge says A both ways
    assert all(row["used_for_training"] == (row["choice"] == "a") for row in labels)
    assert metrics["preferences"] == PAIRS // 2 and metrics["tie_share_critic"] == 0.5


def test_a_judge_that_always_answers_the_same_letter_is_flagged(in_tmp, caplog):
    write_inputs(marked=False)
    with OpenAIServer() as server:
        metrics = run_label(in_tmp, server.base_url, caplog)
    assert metrics["count_critic_tie"] == PAIRS and metrics["preferences"] == 0
    assert metrics["tie_share_critic"] == 1.0 and metrics["first_shown_share_critic"] == 1.0
    assert metrics["degenerate_warnings"] == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"critic: {PAIRS} of {PAIRS} labels (100%) pick no side" in w for w in warnings)
    assert any(f"shown first in {2 * PAIRS} of {2 * PAIRS}" in w for w in warnings)
    assert not any(pq.read_table(paths.LABELS).column("used_for_training").to_pylist())


def test_your_prompts_with_answers_are_verified_and_those_without_go_undecided(in_tmp, caplog):
    """Routing math -> verifier on your own prompts: the one with an answer is labelled by the
    verifier (the right answer wins), the one without is unverifiable and goes to the critic."""
    prompts = [{"prompt_id": "m1", "source": "mine.jsonl", "category": "math", "prompt": "What is 6 times 7?",
                "meta": '{"answer": "42"}', "split": "train"},
               {"prompt_id": "m2", "source": "mine.jsonl", "category": "math", "prompt": "What is 2 + 2?",
                "meta": None, "split": "train"},
               {"prompt_id": "g1", "source": "mine.jsonl", "category": "general", "prompt": "Hello?",
                "meta": None, "split": "train"}]
    sides = (("p1", "m1", "math", "The answer is 41.", "The answer is 42."),
             ("p2", "m2", "math", f"{MARKER} 4", "5"), ("p3", "g1", "general", f"{MARKER} hi", "hey"))
    pairs = [{"pair_id": pid, "prompt_id": prompt, "category": category, "prompt": "", "response_a": a,
              "finished_a": True, "response_b": b, "finished_b": True}
             for pid, prompt, category, a, b in sides]
    paths.DATA.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(pairs), paths.PAIRS)
    pq.write_table(pa.Table.from_pylist(prompts), paths.PROMPTS)
    with OpenAIServer() as server:
        http = {"base_url": server.base_url, "model": "judge-model", "cache_path": ""}
        metrics = label_with(in_tmp, caplog, {"routing": {"math": "verifier", "default": "critic"},
                                              "critic": {"judge": "http", "http": http}})
    assert metrics["count_verifier_b"] == 1 and metrics["count_verifier"] == 1
    assert metrics["verifier_unverifiable"] == 1 and metrics["count_critic_a"] == 2
    final = {row["pair_id"]: row["source"] for row in pq.read_table(paths.LABELS).to_pylist()}
    assert final == {"p1": "verifier", "p2": "critic", "p3": "critic"}
    assert "1 verifier-routed pairs have no reference answer or tests" in caplog.text


def run_label_importing(tmp_path, base_url: str, caplog, imports: list[dict]) -> dict:
    """run_label with `label.imports`."""
    http = {"base_url": base_url, "model": "judge-model", "cache_path": str(tmp_path / "critic_cache.sqlite")}
    return label_with(tmp_path, caplog, critic_only(http, imports=imports))


def test_imported_preferences_join_the_snapshot_and_a_bad_file_leaves_it_as_it_was(in_tmp, caplog):
    from tasks.label import PREFERENCES_SCHEMA

    write_inputs(marked=True)
    good = in_tmp / "mine.jsonl"
    rows = [{"prompt": f"imported {i}?", "chosen": f"yes {i}", "rejected": f"no {i}"} for i in range(7)]
    good.write_text("".join(json.dumps(row) + "\n" for row in [*rows, rows[0]]))  # one repeated row
    with OpenAIServer() as server:
        metrics = run_label_importing(in_tmp, server.base_url, caplog, [{"path": str(good)}])
        snapshot = pq.read_table(paths.PREFERENCES)
        assert snapshot.schema == PREFERENCES_SCHEMA
        imported = [row for row in snapshot.to_pylist() if row["round"] is None]
        assert [(r["prompt"], r["chosen"], r["rejected"], r["source"], r["category"]) for r in imported] == \
            [(r["prompt"], r["chosen"], r["rejected"], "import", "imported") for r in rows]
        assert metrics["imported"] == 7 and metrics["preferences"] == PAIRS // 2 + 7 == snapshot.num_rows

        bad = in_tmp / "bad.jsonl"
        bad.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"prompt": "p", "chosen": "a"}) + "\n")
        before = paths.PREFERENCES.read_bytes()
        with pytest.raises(Exception, match=r"label.imports: .*bad.jsonl: line 2: missing column 'rejected'"):
            run_label_importing(in_tmp, server.base_url, caplog, [{"path": str(good)}, {"path": str(bad)}])
        assert paths.PREFERENCES.read_bytes() == before
