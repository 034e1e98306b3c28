"""The supervised loop's per-step callbacks: they see every step, time it, and can stop the run."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from prefpipe.config.schema import OptimParams
from prefpipe.train.callbacks import StepInfo, StopTraining
from prefpipe.train.loop import TrainContext, supervised_loop

OPTIM = OptimParams(epochs=2.0, batch_size=4, lr=0.1, warmup_steps=1)  # 10 items: 3 steps per epoch
STEPS = 6


def _run(*callbacks, optim: OptimParams = OPTIM, batches: list | None = None
         ) -> tuple[list[dict], torch.nn.Module]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    data = torch.randn(10, 3)

    def loss_fn(model, idx, global_idx):
        if batches is not None:
            batches.append(global_idx)
        loss = model(data[idx]).pow(2).mean()
        return loss, {"loss": loss.item()}

    history = supervised_loop("test", model, optim, len(data), 0, TrainContext(callbacks=callbacks),
                              loss_fn)
    return history, model


def test_shuffle_false_trains_in_the_order_given():
    batches: list = []
    _run(optim=replace(OPTIM, shuffle=False), batches=batches)
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] * 2


def test_a_callback_sees_every_step():
    seen: list[StepInfo] = []
    history, model = _run(seen.append)
    assert [i.step for i in seen] == list(range(STEPS)) and len(history) == STEPS
    assert all(i.total_steps == STEPS and i.trainer == "test" and i.is_main for i in seen)
    assert [i.metrics for i in seen] == history  # the history rows: step, loss, lr, grad_norm
    assert all(i.seconds >= 0.0 and i.model is model for i in seen)


def test_callback_metrics_are_a_copy():
    def scribble(info: StepInfo) -> None:
        info.metrics["loss"] = -1.0

    history, _ = _run(scribble)
    assert all(row["loss"] >= 0.0 for row in history)


def test_returning_true_stops_after_that_step_and_every_callback_sees_it():
    seen: list[int] = []
    history, _ = _run(lambda info: info.step == 2, lambda info: seen.append(info.step))
    assert len(history) == 3 and seen == [0, 1, 2]


def test_raising_stop_training_stops_early():
    def stop_at_first(info: StepInfo) -> None:
        raise StopTraining

    history, _ = _run(stop_at_first)
    assert [row["step"] for row in history] == [0]


def test_other_exceptions_propagate():
    def broken(info: StepInfo) -> None:
        raise KeyError("bad metric")

    with pytest.raises(KeyError):
        _run(broken)


def test_callbacks_do_not_change_training():
    plain, model_a = _run()
    watched, model_b = _run(lambda info: None)
    assert plain == watched
    torch.testing.assert_close(model_a.weight, model_b.weight, rtol=0, atol=0)
