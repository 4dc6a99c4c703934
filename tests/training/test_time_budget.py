"""Training for a time budget: the plan after every epoch, the stop, the resume, and the schedule it moves."""

import json

import keras
import pytest
import tensorflow as tf

import utils.training.time_budget as time_budget
from utils.training.schedules import WarmupDecay
from utils.training.time_budget import EpochPlan, TimeBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run_epochs(budget: TimeBudget, clock: Clock, durations: list[float], first_epoch: int = 0) -> list[int]:
    """Feed epochs of the given durations; the plan's end after each, until the budget stops training."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False
    budget.set_model(model)
    budget.on_train_begin()
    ends = []
    for epoch, seconds in enumerate(durations, start=first_epoch):
        clock.now += seconds
        budget.on_epoch_end(epoch)
        ends.append(budget.plan.end_epoch)
        if model.stop_training:
            break
    return ends


def test_plan_follows_the_epoch_time_and_stops_at_the_nearest_epoch_boundary(tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(time_budget.time, "monotonic", clock)
    replans = []
    budget = TimeBudget(52.0, EpochPlan(100), 100, 0, replans.append, tmp_path / "resume" / "time_budget.json")
    # The first epoch (30 s, tracing included) plans nothing; after the second (10 s): 40 s used, 12 s left, one
    # more epoch of 10 s ends 2 s short, where stopping would end 12 s short: end after epoch 3 (50 s).
    ends = run_epochs(budget, clock, [30.0, 10.0, 10.0, 10.0])
    assert ends == [100, 3, 3] and replans == [3]
    assert budget.exhausted and budget.used == pytest.approx(50.0)
    saved = json.loads((tmp_path / "resume" / "time_budget.json").read_text())
    assert saved == {"epoch": 3, "seconds": 50.0, "epoch_seconds": 10.0}


def test_a_resumed_run_spends_only_what_is_left_and_a_larger_budget_extends_the_plan(tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(time_budget.time, "monotonic", clock)
    state = tmp_path / "time_budget.json"
    state.write_text(json.dumps({"epoch": 4, "seconds": 80.0, "epoch_seconds": 20.0}))
    replans = []
    # 200 s in all: 120 s left at 20 s an epoch → six more epochs after the fourth; the cap is 9.
    budget = TimeBudget(200.0, EpochPlan(30), 9, 4, replans.append, state)
    assert budget.plan.end_epoch == 9 and replans == [9] and not budget.exhausted
    ends = run_epochs(budget, clock, [20.0] * 5, first_epoch=4)
    assert ends == [9] * 5 and budget.exhausted and budget.used == pytest.approx(180.0)
    # A state one epoch behind the resume state (a kill between the two saves) is scaled to the resumed epoch.
    state.write_text(json.dumps({"epoch": 3, "seconds": 60.0, "epoch_seconds": 20.0}))
    assert TimeBudget(200.0, EpochPlan(30), 30, 4, lambda end: None, state).used == pytest.approx(80.0)


def test_replanning_moves_the_decay_end_inside_a_traced_step():
    schedule = WarmupDecay(0.01, total_steps=100, warmup_steps=0, final_ratio=0.01)
    rate = tf.function(lambda step: schedule(step))
    halfway = float(rate(tf.constant(50)))
    assert halfway == pytest.approx(0.0001 + 0.0099 * 0.5)  # cosine midpoint of 100 steps
    schedule.replan(50)  # after tracing: the traced function reads the new total
    assert float(rate(tf.constant(50))) == pytest.approx(0.0001)
    assert float(rate(tf.constant(25))) == pytest.approx(0.0001 + 0.0099 * 0.5)
    assert schedule.get_config()["total_steps"] == 50


def test_the_weight_average_ramp_is_replanned_inside_its_traced_update():
    import math

    import numpy as np

    from utils.training.ema import WeightAverage

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    average = WeightAverage(0.9, 10.0)
    average.set_model(model)
    average.on_train_batch_end(0)  # builds and traces the update; the average starts at the weights (0)
    average.replan(0.5, 1.0)
    model.layers[0].kernel.assign([[1.0]])
    average.on_train_batch_end(1)
    decay = 0.5 * (1.0 - math.exp(-2.0 / 1.0))  # update 2 with the new momentum and ramp
    np.testing.assert_allclose(average.averages[0].numpy(), [[1.0 - decay]], rtol=1e-6)
    assert (average.momentum, average.tau) == (0.5, 1.0)
