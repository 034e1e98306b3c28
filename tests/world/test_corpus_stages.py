"""choose_prompts in the generate and evaluate stages (tasks/generate.py, tasks/evaluate.py) on a
150-prompt file of your own: a count over the prompts there are is capped with a warning naming the
knob, and the metrics and the report say how many were asked for and used. The models are stand-ins
(the counts are the stages' own work), so this runs in about a second."""
from __future__ import annotations

import json
import logging
from collections import Counter
from types import SimpleNamespace

import pyarrow as pa
import pytest
import yaml

import tasks.evaluate
import tasks.generate
from prefpipe.config import load_params
from prefpipe.models.generation import Sample
from prefpipe.store import Store, write_parquet
from prefpipe.world.catalog import user_prompt_rows
from tasks import paths

SOURCE = "data/inputs/mine.jsonl"


@pytest.fixture
def own_prompts(tmp_path, monkeypatch):
    """150 prompts of your own (general / math / safety) as prepare writes them; their params."""
    monkeypatch.chdir(tmp_path)
    rows = [{"prompt": f"{c} question {i}?", "category": c}
            for i, c in enumerate(["general", "math", "safety"] * 50)]
    table = user_prompt_rows(rows, SOURCE, 0.2, 0)
    write_parquet(pa.Table.from_pylist(table), paths.PROMPTS)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"prompts": SOURCE}}))
    params = load_params(tmp_path / "params.yaml", check_paths=False)
    return params, Counter(r["split"] for r in table)


def fake_samples(model, tokenizer, prompts, num_samples, sampling, seed, progress=None):
    if progress:
        progress(len(prompts))
    return [Sample(i, j, f"answer {j} to {p}", True, 3 + j)
            for i, p in enumerate(prompts) for j in range(num_samples)]


@pytest.fixture
def no_models(monkeypatch):
    for stage in (tasks.generate, tasks.evaluate):
        monkeypatch.setattr(stage, "load_tokenizer", lambda *a: SimpleNamespace(padding_side="right"))
        monkeypatch.setattr(stage, "load_causal_lm", lambda path: path)
        monkeypatch.setattr(stage, "sample_responses", fake_samples)
    monkeypatch.setattr(tasks.generate, "folder_hash", lambda path: "sft-v0")
    monkeypatch.setattr(tasks.evaluate, "load_reward_model", lambda path: path)
    monkeypatch.setattr(tasks.evaluate, "response_logprobs",
                        lambda model, tok, prompts, *a: [-1.0 if model == paths.POLICY_MODEL else -2.0
                                                         for _ in prompts])
    monkeypatch.setattr(tasks.evaluate, "score_responses",
                        lambda model, tok, prompts, responses, *a: [float(len(r)) for r in responses])


def test_generate_caps_at_the_training_prompts_and_says_so(own_prompts, no_models, tmp_path, caplog):
    params, splits = own_prompts
    with caplog.at_level(logging.INFO, logger="prefpipe"):
        tasks.generate.generate(params, Store(tmp_path / "store" / "prefpipe.duckdb"))
    train = splits["train"]
    assert (f"generate.prompts 2000 > {train} training prompts: each prompt used once ({train}); "
            "raise generate.pairs_per_prompt or generate.candidates_per_prompt") in caplog.text
    metrics = json.loads((paths.METRICS / "generate.json").read_text())
    assert (metrics["prompts_requested"], metrics["prompts"], metrics["distinct_prompts"]) == \
        (2000, train, train)
    assert metrics["candidates"] == 4 * train and metrics["pairs"] == 3 * train


def test_evaluate_caps_at_the_heldout_prompts_and_the_report_says_so(own_prompts, no_models, caplog,
                                                                      tmp_path):
    params, splits = own_prompts
    heldout = splits["heldout"]
    with caplog.at_level(logging.INFO, logger="prefpipe"):
        tasks.evaluate.evaluate(params, Store(tmp_path / "store" / "prefpipe.duckdb"))
    assert (f"evaluate.prompts 600 > {heldout} held-out prompts: evaluating each once ({heldout}); "
            "raise data.heldout_fraction") in caplog.text
    metrics = json.loads((paths.METRICS / "evaluate.json").read_text())
    assert (metrics["prompts_requested"], metrics["prompts"], metrics["distinct_prompts"]) == \
        (600, heldout, heldout)
    report = paths.REPORT.read_text()
    assert f"Held-out prompts: {heldout}, each once (evaluate.prompts 600 capped" in report
    assert "Held-out prompts: 600" not in report


def test_a_count_within_the_prompts_is_not_capped(own_prompts, no_models, tmp_path, caplog):
    params, splits = own_prompts
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"prompts": SOURCE},
                                                          "evaluate": {"prompts": 10}}))
    params = load_params(tmp_path / "params.yaml", check_paths=False)
    with caplog.at_level(logging.INFO, logger="prefpipe"):
        tasks.evaluate.evaluate(params, Store(tmp_path / "store" / "prefpipe.duckdb"))
    assert "evaluate.prompts" not in caplog.text
    metrics = json.loads((paths.METRICS / "evaluate.json").read_text())
    assert (metrics["prompts_requested"], metrics["prompts"], metrics["distinct_prompts"]) == (10, 10, 10)
    assert "Held-out prompts: 10\n" in paths.REPORT.read_text()
