"""Checkpointer: when it saves, what restore brings back, and crash safety of the rename."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from prefpipe.train.checkpoint import STATE_FILE, Checkpointer
from prefpipe.train.kl_control import AdaptiveKLController, FixedKLController


def make_objects(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
    return model, optimizer, scheduler


def train_step(model, optimizer, scheduler):
    loss = model(torch.ones(4, 3)).pow(2).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()


def saved_step(path) -> int:
    return torch.load(path, map_location="cpu", weights_only=False)["step"]


def test_saves_only_on_multiples_of_every(tmp_path):
    model, optimizer, scheduler = make_objects()
    ckpt = Checkpointer(tmp_path / "ck", every=2)
    assert ckpt.path == tmp_path / "ck" / STATE_FILE
    seen = []
    for step in range(1, 6):
        train_step(model, optimizer, scheduler)
        ckpt.step_done(step, model, optimizer, scheduler, {}, [{"step": step}])
        seen.append(saved_step(ckpt.path) if ckpt.path.exists() else None)
    assert seen == [None, 2, 2, 4, 4]
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == [STATE_FILE]  # no .partial left


def test_restore_brings_back_everything(tmp_path):
    model, optimizer, scheduler = make_objects()
    kl = AdaptiveKLController(0.1, target=2.0, horizon=10)
    ckpt = Checkpointer(tmp_path, every=2)
    history = []
    for step in range(1, 3):
        train_step(model, optimizer, scheduler)
        kl.update(5.0, 5)
        history.append({"step": step, "loss": float(step)})
        ckpt.step_done(step, model, optimizer, scheduler, {"kl": kl}, history)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    exp_avg = optimizer.state[model.weight]["exp_avg"].clone()
    lr = scheduler.get_last_lr()[0]
    beta = kl.beta
    after_save = (torch.rand(5), random.random(), np.random.rand())

    # a fresh run: different init, no optimizer state, schedule at 0, β at its initial value
    model2, optimizer2, scheduler2 = make_objects(seed=1)
    kl2 = AdaptiveKLController(0.1, target=2.0, horizon=10)
    assert not torch.equal(model2.weight, weights["weight"])
    torch.rand(3)  # move every RNG elsewhere
    random.random()
    np.random.rand()
    step, restored_history = Checkpointer(tmp_path, every=2).restore(
        model2, optimizer2, scheduler2, {"kl": kl2})

    assert step == 2
    assert restored_history == [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 2.0}]
    for name, value in model2.state_dict().items():
        assert torch.equal(value, weights[name])
    assert torch.equal(optimizer2.state[model2.weight]["exp_avg"], exp_avg)
    assert optimizer2.state[model2.weight]["step"].item() == 2
    assert scheduler2.last_epoch == 2
    assert scheduler2.get_last_lr()[0] == pytest.approx(lr)
    assert lr == pytest.approx(0.1 / 3)
    assert kl2.beta == beta == pytest.approx(0.1 * 1.1 ** 2)
    assert torch.equal(torch.rand(5), after_save[0])
    assert random.random() == after_save[1]
    assert np.random.rand() == after_save[2]


def test_restored_run_continues_like_the_uninterrupted_one(tmp_path):
    model, optimizer, scheduler = make_objects()
    ckpt = Checkpointer(tmp_path, every=2)
    for step in range(1, 3):
        train_step(model, optimizer, scheduler)
        ckpt.step_done(step, model, optimizer, scheduler, {}, [])
    for _ in range(2):
        train_step(model, optimizer, scheduler)
    model2, optimizer2, scheduler2 = make_objects(seed=5)
    assert ckpt.restore(model2, optimizer2, scheduler2, {})[0] == 2
    for _ in range(2):
        train_step(model2, optimizer2, scheduler2)
    for name, value in model.state_dict().items():
        assert torch.allclose(model2.state_dict()[name], value, rtol=0, atol=1e-7)


def test_no_checkpoint_means_fresh_start(tmp_path):
    model, optimizer, scheduler = make_objects()
    before = model.weight.clone()
    assert Checkpointer(tmp_path / "missing", every=2).restore(model, optimizer, scheduler, {}) == (0, [])
    assert torch.equal(model.weight, before)


@pytest.mark.parametrize(("directory", "every"), [("dir", 0), (None, 2), (None, 0)])
def test_disabled_checkpointer_never_writes(tmp_path, monkeypatch, directory, every):
    monkeypatch.chdir(tmp_path)
    model, optimizer, scheduler = make_objects()
    ckpt = Checkpointer(tmp_path / directory if directory else None, every=every)
    for step in range(1, 7):
        ckpt.step_done(step, model, optimizer, scheduler, {"kl": FixedKLController(0.1)}, [])
    assert list(tmp_path.iterdir()) == []
    assert ckpt.restore(model, optimizer, scheduler, {}) == (0, [])
    ckpt.finish()


def test_every_zero_ignores_an_existing_checkpoint(tmp_path):
    model, optimizer, scheduler = make_objects()
    Checkpointer(tmp_path, every=1).step_done(1, model, optimizer, scheduler, {}, [{"step": 1}])
    assert (tmp_path / STATE_FILE).exists()
    assert Checkpointer(tmp_path, every=0).restore(model, optimizer, scheduler, {}) == (0, [])


def test_finish_removes_directory(tmp_path):
    model, optimizer, scheduler = make_objects()
    ckpt = Checkpointer(tmp_path / "run", every=1)
    ckpt.step_done(1, model, optimizer, scheduler, {}, [])
    assert ckpt.path.exists()
    ckpt.finish()
    assert not (tmp_path / "run").exists()
    ckpt.finish()  # idempotent


def test_finish_removes_the_stage_folder_once_empty(tmp_path):
    """checkpoints/<stage>/<digest>/: the finished run leaves no empty checkpoints/<stage>/ behind,
    but keeps another run's checkpoint in it."""
    model, optimizer, scheduler = make_objects()
    other = Checkpointer(tmp_path / "train_reward" / "other", every=1)
    other.step_done(1, model, optimizer, scheduler, {}, [])
    ckpt = Checkpointer(tmp_path / "train_reward" / "abc", every=1)
    ckpt.step_done(1, model, optimizer, scheduler, {}, [])
    ckpt.finish()
    assert other.path.exists()
    other.finish()
    assert not (tmp_path / "train_reward").exists()
    assert tmp_path.exists()


def test_non_main_process_does_not_write_but_hits_barrier(tmp_path):
    calls = []
    model, optimizer, scheduler = make_objects()
    ckpt = Checkpointer(tmp_path / "run", every=2, is_main=False, barrier=lambda: calls.append(1))
    for step in range(1, 5):
        ckpt.step_done(step, model, optimizer, scheduler, {}, [])
    assert not (tmp_path / "run").exists()
    assert len(calls) == 2  # steps 2 and 4
    ckpt.path.parent.mkdir()
    ckpt.path.write_bytes(b"x")
    ckpt.finish()
    assert ckpt.path.exists()  # only the main process removes the directory


def test_leftover_partial_file_does_not_break_restore(tmp_path):
    model, optimizer, scheduler = make_objects()
    kl = FixedKLController(0.3)
    ckpt = Checkpointer(tmp_path, every=1)
    train_step(model, optimizer, scheduler)
    ckpt.step_done(1, model, optimizer, scheduler, {"kl": kl}, [{"step": 1}])
    weights = model.weight.clone()
    # a kill during the next save leaves a truncated temp file next to the good checkpoint
    (tmp_path / "state.partial").write_bytes(b"PK\x03\x04 truncated")
    model2, optimizer2, scheduler2 = make_objects(seed=3)
    kl2 = FixedKLController(0.0)
    step, history = Checkpointer(tmp_path, every=1).restore(model2, optimizer2, scheduler2, {"kl": kl2})
    assert (step, history) == (1, [{"step": 1}])
    assert torch.equal(model2.weight, weights)
    assert kl2.beta == 0.3
    # and the next save replaces the leftover
    ckpt.step_done(2, model2, optimizer2, scheduler2, {"kl": kl2}, history)
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_FILE]
    assert saved_step(tmp_path / STATE_FILE) == 2
