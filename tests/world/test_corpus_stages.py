"""choose_prompts in the generate and evaluate stages (tasks/generate.py, tasks/evaluate.py) on a
150-prompt file of your own: a count over the prompts there are is capped with a warning naming the
knob, and the metrics and the report say how many were asked for and used. The models are stand-ins
(the counts are the stages' own work), so this runs in about a second."""
from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import replace
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
from tests.conftest import write_round_one

SOURCE = "data/inputs/mine.jsonl"


@pytest.fixture
def own_prompts(tmp_path, monkeypatch):
    """150 prompts of your own (general / math / safety) as prepare writes them; their params."""
    monkeypatch.chdir(tmp_path)
    rows = [{"prompt": f"{c} question {i}?", "category": c}
            for i, c in enumerate(["general", "math", "safety"] * 50)]
    table = user_prompt_rows(rows, SOURCE, 0.2, 0)
    write_parquet(pa.Table.from_pylist(table), paths.PROMPTS)
    write_round_one()  # generate samples the round's prompts: every training prompt in round 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"prompts": SOURCE}}))
    params = load_params(tmp_path / "params.yaml", check_paths=False)
    return params, Counter(r["split"] for r in table)


def fake_samples(model, tokenizer, prompts, num_samples, sampling, seed, progress=None,
                 max_length=None):
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
    monkeypatch.setattr(tasks.generate, "model_version", lambda path: "sft-v0")
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


@pytest.mark.parametrize("stage, run, split", [(tasks.generate, tasks.generate.generate, "train"),
                                               (tasks.evaluate, tasks.evaluate.evaluate, "heldout")])
def test_prompts_cut_to_fit_the_context_are_one_warning_naming_the_knob(
        own_prompts, no_models, tmp_path, caplog, monkeypatch, stage, run, split):
    params, splits = own_prompts

    def every_other_prompt_cut(*args, max_length=None, **kwargs):
        assert max_length == params.model.n_positions
        return [replace(s, prompt_truncated=s.prompt_index % 2 == 0)
                for s in fake_samples(*args, **kwargs)]

    monkeypatch.setattr(stage, "sample_responses", every_other_prompt_cut)
    with caplog.at_level(logging.INFO, logger="prefpipe"):
        run(params, Store(tmp_path / "store" / "prefpipe.duckdb"))
    cut = [r.message for r in caplog.records if "prompts are longer than" in r.message]
    total = splits[split]
    assert len(cut) == 1 and cut[0].startswith(f"{(total + 1) // 2} of {total} prompts")
    assert f"lower {stage.__name__.split('.')[-1]}.sampling.max_new_tokens" in cut[0]


def test_evaluate_without_gold_writes_the_family_plot_header_not_an_empty_file(
        own_prompts, no_models, tmp_path, caplog):
    """A zero-byte plot file makes `dvc repro` warn "'plots/eval_by_family.csv' is empty." on
    every run; the header alone does not."""
    params, _ = own_prompts
    with caplog.at_level(logging.INFO, logger="prefpipe"):
        tasks.evaluate.evaluate(params, Store(tmp_path / "store" / "prefpipe.duckdb"))
    header = (paths.PLOTS / "eval_by_family.csv").read_text()
    assert header == "family,prompts,win," + ",".join(
        f"{side}_{key}" for side in ("policy", "reference")
        for key in ("well_formed", "correct", "flaws")) + "\n"
    assert "held-out prompts carry no gold facts" in caplog.text
