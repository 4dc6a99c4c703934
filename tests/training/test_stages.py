"""Progressive learning and multi-scale batches, and a schedule that stays continuous while a time budget re-plans
a run whose epoch durations change by stage."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import utils.training.time_budget as time_budget
from tests.training.test_time_budget import Clock
from utils.config.run_config import AugmentConfig, ModelSpec, TrainConfig
from utils.training.callbacks import CloseMosaic
from utils.training.progress import RunProgress
from utils.training.schedules import WarmupDecay
from utils.training.stages import (
    multi_scale_batches,
    multi_scale_sizes,
    stage_end,
    stage_for,
    training_stages,
)
from utils.training.time_budget import EpochPlan, TimeBudget

SPEC = ModelSpec(class_names=("a",), anchors=[[10, 13]] * 9, input_size=416)


def config(**settings) -> TrainConfig:
    return TrainConfig(train="t", val="v", run_dir="r", model=SPEC, **settings)


def test_progressive_stages_grow_size_and_regularisation_from_weak_to_the_configured():
    augment = AugmentConfig(mosaic=1.0, mixup=0.2, scale_min=0.5, scale_max=1.5)
    stages = training_stages(config(progressive=True, augment=augment))
    # Four stages from half the input size (208 → 224, the nearest multiple of 32) up to 416, in steps of 32.
    assert [s.input_size for s in stages] == [224, 288, 352, 416]
    assert [round(s.augment.mosaic, 3) for s in stages] == [0.0, 0.333, 0.667, 1.0]
    assert [round(s.augment.mixup, 3) for s in stages] == [0.0, 0.067, 0.133, 0.2]
    # The zoom range grows from half its width (0.75–1.25) to the configured 0.5–1.5; drop connect likewise.
    assert (stages[0].augment.scale_min, stages[0].augment.scale_max) == (0.75, 1.25)
    assert (stages[-1].augment, stages[-1].drop_connect_scale) == (augment, 1.0)
    assert stages[0].drop_connect_scale == 0.5
    assert [s.input_size for s in training_stages(config(progressive=True, progressive_min_size=128,
                                                         progressive_stages=2))] == [128, 416]
    assert training_stages(config())[0].input_size == 416 and len(training_stages(config())) == 1
    with pytest.raises(ValueError, match="progressive_min_size: must be a multiple of 32"):
        config(progressive=True, progressive_min_size=100)
    with pytest.raises(ValueError, match="give one"):
        config(progressive=True, multi_scale=True)


def test_stages_are_equal_shares_of_the_plan_and_only_move_forward():
    stages = training_stages(config(progressive=True))
    assert [stage_for(stages, epoch, 20) for epoch in range(20)] == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5
    assert [stage_end(stages, i, 20) for i in range(4)] == [5, 10, 15, 20]
    # The plan shrinks to 10 epochs at epoch 6 (stage 2 by then); a later longer plan does not move it back.
    assert stage_for(stages, 6, 10) == 2 and stage_for(stages, 7, 40, reached=2) == 2


def test_multi_scale_batches_draw_sizes_in_range_and_scale_the_boxes():
    assert multi_scale_sizes(416) == list(range(224, 640 + 1, 32))
    images = tf.zeros((2, 416, 416, 3))
    boxes = tf.constant([[[10.0, 20.0, 100.0, 200.0, 1.0], [-1.0] * 5]] * 2)
    dataset = multi_scale_batches(tf.data.Dataset.from_tensors((images, boxes)).repeat(12), 416, seed=3)
    sizes = []
    for batch_images, batch_boxes in dataset:
        size = int(batch_images.shape[1])
        sizes.append(size)
        assert batch_images.shape == (2, size, size, 3)
        np.testing.assert_allclose(batch_boxes[0, 0].numpy(), [10 * size / 416, 20 * size / 416,
                                                                100 * size / 416, 200 * size / 416, 1.0], rtol=1e-6)
        np.testing.assert_array_equal(batch_boxes[0, 1].numpy(), [-1.0] * 5)
    assert set(sizes) <= set(multi_scale_sizes(416)) and len(set(sizes)) > 3
    again = [int(b[0].shape[1]) for b in multi_scale_batches(tf.data.Dataset.from_tensors((images, boxes)).repeat(12),
                                                               416, seed=3)]
    assert again == sizes  # drawn from the seed and the batch number


def test_replanning_under_stage_dependent_epoch_times_never_jumps_the_rate(tmp_path, monkeypatch):
    """A 20-minute budget over 4 progressive stages whose epochs take 20, 40, 60 and 80 s, and 30 s once mosaic
    closes: the plan moves after every epoch, and the rate at the step of each re-plan is the same before and after
    it; the stages and the mosaic switch only move forward."""
    clock = Clock()
    start = clock.now
    monkeypatch.setattr(time_budget.time, "monotonic", clock)
    steps_per_epoch = 10
    stages = training_stages(config(progressive=True))
    schedule = WarmupDecay(1e-3, total_steps=300 * steps_per_epoch, warmup_steps=steps_per_epoch)
    progress, plan = RunProgress(), EpochPlan(300)
    switch = tf.Variable(1.0)
    mosaic = CloseMosaic(switch, plan, 3, progress)
    iterations = [0]
    jumps = []

    def replan(end_epoch: int) -> None:
        before = float(schedule(iterations[0]))
        schedule.replan(end_epoch * steps_per_epoch, at_step=iterations[0])
        jumps.append(abs(float(schedule(iterations[0])) - before))

    budget = TimeBudget(20 * 60, plan, 300, 0, replan, tmp_path / "budget.json")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False
    budget.set_model(model)
    budget.on_train_begin()
    epoch, seen_stages, switches, rates = 0, [], [], []
    while epoch < plan.end_epoch and not budget.exhausted:
        progress.stage = stage_for(stages, epoch, plan.end_epoch, progress.stage)
        seen_stages.append(progress.stage)
        mosaic.on_epoch_begin(epoch)
        switches.append(float(switch.numpy()))
        clock.now += 30 if switches[-1] == 0 else 20 * (progress.stage + 1)
        for _ in range(steps_per_epoch):
            rates.append(float(schedule(iterations[0])))
            iterations[0] += 1
        budget.on_epoch_end(epoch)
        epoch += 1
    assert len(jumps) > 3 and max(jumps) < 1e-9  # every re-plan continuous at its step
    assert seen_stages == sorted(seen_stages) and seen_stages[-1] == 3  # forward only, to the last stage
    closed = switches.index(0.0)
    assert all(value == 0.0 for value in switches[closed:])  # closed once, never reopened
    steps = np.abs(np.diff(rates[steps_per_epoch:]))  # after the one-epoch warmup (its steps are 10% of the peak)
    assert steps.max() < 0.05 * max(rates)  # no later step changes the rate by more than 5% of the peak
    assert 19 * 60 <= clock.now - start <= 21 * 60  # ends at the budget, give or take half an epoch


@pytest.mark.heavy
@pytest.mark.slow
def test_one_network_trains_at_every_stage_size_and_the_loss_reads_the_grid_from_the_batch():
    """A stage switch changes the batch's size in pixels and so the grid the targets are assigned on: one network
    built for any input size takes both, and the loss follows."""
    from nets.detector import YoloDetector
    from nets.yolo import build_yolo

    network = build_yolo("cspdarknet-n", "yolov5", 1, input_shape=(None, None, 3), prior_size=64)
    anchors = np.linspace(4, 40, 18).reshape(9, 2)
    detector = YoloDetector.from_network(network, ["a"], anchors, "v5", input_hw=(64, 64))
    detector.compile(keras.optimizers.Adam(1e-3))
    batches = None
    for size in (32, 64):
        images = np.full((2, size, size, 3), 90.0, "float32")
        boxes = np.full((2, 3, 5), -1.0, "float32")
        boxes[:, 0] = [size / 8, size / 8, size / 2, size / 2, 0]
        outputs = detector(images, training=False)
        assert [tuple(o.shape[1:3]) for o in outputs] == [(size // 8,) * 2, (size // 16,) * 2, (size // 32,) * 2]
        batch = tf.data.Dataset.from_tensors((images, boxes))
        batches = batch if batches is None else batches.concatenate(batch)
    assert batches.element_spec[0].shape.as_list() == [2, None, None, 3]  # one traced step takes both sizes
    box_losses = []  # Keras logs the epoch's running mean: batch 2's own loss is twice its mean less batch 1's
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: box_losses.append(
        float(logs["box_loss"])))
    history = detector.fit(batches, epochs=1, shuffle=False, verbose=0, callbacks=[record]).history
    per_batch = [box_losses[0], 2 * box_losses[1] - box_losses[0]]
    assert np.isfinite(history["loss"]).all() and min(per_batch) > 0, per_batch
    assert detector.input_hw == (64, 64) and detector.detect(np.zeros((50, 70, 3), np.uint8))
