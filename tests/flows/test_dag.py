"""The stage graph read from dvc.yaml."""
from __future__ import annotations

from pathlib import Path

import pytest

from flows.dag import load_stages

REPO = Path(__file__).resolve().parents[2]


def test_repo_dvc_yaml_order_and_upstreams():
    stages = load_stages(REPO / "dvc.yaml")
    assert [s.name for s in stages] == ["prepare", "sft", "round", "generate", "label", "train_reward",
                                        "train_policy", "evaluate", "gate", "publish"]
    upstream = {s.name: set(s.upstream) for s in stages}
    assert upstream == {
        "prepare": set(),
        "sft": {"prepare"},
        "round": {"prepare", "sft"},
        "generate": {"round"},
        "label": {"prepare", "generate", "round"},
        "train_reward": {"prepare", "sft", "label"},
        "train_policy": {"prepare", "sft", "round", "label", "train_reward"},
        "evaluate": {"prepare", "sft", "train_reward", "train_policy"},
        "gate": {"round", "evaluate"},
        "publish": {"round", "label", "train_reward", "train_policy", "evaluate", "gate"},
    }
    assert [s.name for s in stages if s.always_run] == ["round"]
    by_name = {s.name: s for s in stages}
    assert by_name["label"].cmd == "sh tasks/python -m tasks.label"
    # metrics and plots count as outputs; {path: options} entries give their path
    assert "metrics/sft.json" in by_name["sft"].outs and "plots/sft_loss.csv" in by_name["sft"].outs
    assert "models/tokenizer" in by_name["prepare"].outs
    assert "data/pairs.parquet" in by_name["label"].deps


def test_every_stage_comes_after_its_upstreams():
    stages = load_stages(REPO / "dvc.yaml")
    position = {s.name: i for i, s in enumerate(stages)}
    for stage in stages:
        assert all(position[u] < position[stage.name] for u in stage.upstream)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dvc.yaml"
    path.write_text(text)
    return path


def test_dependency_order_beats_file_order_and_nested_paths_link(tmp_path):
    path = write(tmp_path, """
stages:
  report:
    cmd: [python report.py, echo done]
    deps: [out/model/weights.bin]
    outs: [report.md]
  train:
    cmd: python train.py
    deps: [data/clean]
    outs: [out/model]
  clean:
    cmd: python clean.py
    deps: [raw.csv]
    outs: [data/clean/part-0.parquet]
  unrelated:
    cmd: echo hi
""")
    stages = load_stages(path)
    assert [s.name for s in stages] == ["clean", "train", "report", "unrelated"]
    upstream = {s.name: s.upstream for s in stages}
    assert upstream["report"] == ("train",)  # a dep inside an out folder
    assert upstream["train"] == ("clean",)  # an out inside a dep folder
    assert upstream["unrelated"] == ()
    assert stages[2].cmd == "python report.py && echo done"


def test_similar_prefixes_do_not_link(tmp_path):
    path = write(tmp_path, """
stages:
  a:
    cmd: a
    deps: [models/sft_v2]
  b:
    cmd: b
    outs: [models/sft]
""")
    assert {s.name: s.upstream for s in load_stages(path)} == {"b": (), "a": ()}


def test_cycle_is_rejected(tmp_path):
    path = write(tmp_path, """
stages:
  first:
    cmd: one
    deps: [b.txt]
    outs: [a.txt]
  second:
    cmd: two
    deps: [a.txt]
    outs: [b.txt]
  free:
    cmd: three
""")
    with pytest.raises(ValueError, match="cycle") as err:
        load_stages(path)
    assert "first" in str(err.value) and "second" in str(err.value)
    assert "free" not in str(err.value)


def test_empty_stages(tmp_path):
    assert load_stages(write(tmp_path, "stages: {}\n")) == []


def test_meta_after_declares_the_hook_and_dvc_ignores_it(tmp_path):
    path = write(tmp_path, """
stages:
  ask:
    cmd: ask
    meta: {after: wait_for_humans, owner: someone}
    outs: [asked.txt]
  plain:
    cmd: plain
    meta: {owner: someone}
""")
    assert {s.name: s.after for s in load_stages(path)} == {"ask": "wait_for_humans", "plain": None}


def test_meta_after_must_be_a_name(tmp_path):
    path = write(tmp_path, "stages:\n  ask:\n    cmd: ask\n    meta: {after: [a, b]}\n")
    with pytest.raises(ValueError, match="stage ask: meta.after"):
        load_stages(path)


def test_repo_declares_the_human_wait_on_one_stage():
    assert [s.after for s in load_stages(REPO / "dvc.yaml") if s.after] == ["wait_for_humans"]


def test_meta_always_run_marks_a_stage_and_must_be_a_boolean(tmp_path):
    path = write(tmp_path, "stages:\n  look:\n    cmd: look\n    meta: {always_run: true}\n"
                           "  other:\n    cmd: other\n")
    assert [(s.name, s.always_run) for s in load_stages(path)] == [("look", True), ("other", False)]
    bad = write(tmp_path, "stages:\n  look:\n    cmd: look\n    meta: {always_run: 'yes'}\n")
    with pytest.raises(ValueError, match="stage look: meta.always_run must be true or false"):
        load_stages(bad)
