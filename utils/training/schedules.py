"""Learning rate per step: linear warmup, then cosine or step decay to a final fraction of the peak; and the peak
itself, scaled by batch size against a nominal batch."""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from utils.config.run_config import LR_DECAYS

STEP_DECAY_STEPS = 10  # step decay: ten equal drops from the peak to the final rate


def scaled_learning_rate(learning_rate: float, batch_size: int, nominal_batch_size: int,
                         limits: tuple[float, float]) -> float:
    """`learning_rate` is the rate at `nominal_batch_size`; scale it linearly to `batch_size` and clip it to
    `limits`. A nominal batch of 0 turns scaling (and clipping) off."""
    if nominal_batch_size <= 0:
        return learning_rate
    low, high = limits
    return min(max(learning_rate * batch_size / nominal_batch_size, low), high)


@keras.saving.register_keras_serializable(package="effyolo")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from `warmup_start × peak` to `peak` over `warmup_steps`, then cosine or step decay to
    `final_ratio × peak` at `total_steps` (constant after). The first `first_phase_steps` steps (a frozen phase
    at its own batch size) run at `first_phase_scale` times that rate.

    `replan` moves the end of the decay during training (a time budget re-estimating how many steps fit) without
    a jump: from the step it is called at, the decay continues from where it stands and covers the rest of the way
    over the new remaining steps. The decay's progress is `anchor_progress + (step − anchor_step) / (total −
    anchor_step) · (1 − anchor_progress)`; the three are variables the traced step reads."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0, final_ratio: float = 0.01,
                 decay: str = "cosine", warmup_start: float = 0.01, first_phase_steps: int = 0,
                 first_phase_scale: float = 1.0) -> None:
        if decay not in LR_DECAYS:
            raise ValueError(f"unknown lr decay {decay!r}; expected one of {LR_DECAYS}")
        self.peak, self.warmup_steps = float(peak), int(warmup_steps)
        self.planned_total = tf.Variable(float(total_steps), trainable=False, name="planned_total_steps")
        self.anchor_step = tf.Variable(float(warmup_steps), trainable=False, name="decay_anchor_step")
        self.anchor_progress = tf.Variable(0.0, trainable=False, name="decay_anchor_progress")
        self.final_ratio, self.decay, self.warmup_start = float(final_ratio), decay, float(warmup_start)
        self.first_phase_steps, self.first_phase_scale = int(first_phase_steps), float(first_phase_scale)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = max(self.warmup_steps, 1)
        warm = self.peak * (self.warmup_start + (1.0 - self.warmup_start) * step / warmup)
        progress = self.progress_at(step)
        final = self.peak * self.final_ratio
        if self.decay == "cosine":
            decayed = final + (self.peak - final) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        else:
            drops = ops.minimum(ops.floor(progress * STEP_DECAY_STEPS), STEP_DECAY_STEPS - 1)
            decayed = self.peak * ops.power(self.final_ratio, drops / (STEP_DECAY_STEPS - 1))
        rate = ops.where(step < self.warmup_steps, warm, decayed)
        return rate * ops.where(step < self.first_phase_steps, self.first_phase_scale, 1.0)

    def progress_at(self, step):
        """How far along the decay `step` is, 0 to 1 (0 during warmup)."""
        step = ops.cast(step, "float32")
        anchor_step = ops.convert_to_tensor(self.anchor_step)
        anchor_progress = ops.convert_to_tensor(self.anchor_progress)
        remaining = ops.maximum(ops.convert_to_tensor(self.planned_total) - anchor_step, 1.0)
        return ops.clip(anchor_progress + (step - anchor_step) / remaining * (1.0 - anchor_progress), 0.0, 1.0)

    @property
    def total_steps(self) -> int:
        return int(self.planned_total.numpy())

    @property
    def anchor(self) -> tuple[int, float]:
        return int(self.anchor_step.numpy()), float(self.anchor_progress.numpy())

    def replan(self, total_steps: int, at_step: int = 0) -> None:
        """End the decay at `total_steps`, continuing smoothly from `at_step` (the optimizer's step now)."""
        if at_step > self.warmup_steps:
            progress = float(self.progress_at(at_step))
            self.anchor_step.assign(float(at_step))
            self.anchor_progress.assign(progress)
        self.planned_total.assign(float(max(total_steps, at_step + 1)))

    def restore(self, total_steps: int, anchor: tuple[int, float]) -> None:
        """The plan a resumed run had: its total and anchor, as `replan` left them."""
        self.planned_total.assign(float(total_steps))
        self.anchor_step.assign(float(max(anchor[0], self.warmup_steps)))
        self.anchor_progress.assign(float(anchor[1]))

    def get_config(self) -> dict:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "final_ratio": self.final_ratio, "decay": self.decay, "warmup_start": self.warmup_start,
                "first_phase_steps": self.first_phase_steps, "first_phase_scale": self.first_phase_scale}
