"""An exponential moving average of the whole model state, ramped in as YOLOv5's `ModelEMA` does.

After optimizer update n the average moves towards the weights with decay `d = momentum · (1 − exp(−n / tau))`, so
the first updates copy the weights almost unchanged and the average never starts from random initial values.
Every floating-point variable of the model is averaged — trainable ones and BatchNorm moving statistics alike, as
YOLOv5 averages its whole state dict — so the averaged weights run with statistics that match them. A frozen
variable is averaged too, which leaves it unchanged: the average is right in any training phase, whatever the
optimizer updates.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from utils.io.files import atomic_write

RAMP_UPDATES = 2000  # YOLOv5's tau: updates until the decay reaches 1 − 1/e of its momentum
log = logging.getLogger(__name__)


def ramp_updates(total_steps: int) -> int:
    """YOLOv5's tau of 2000 updates, shortened to a tenth of the planned steps on short runs (so the average
    reaches its momentum before training ends)."""
    return max(1, min(RAMP_UPDATES, total_steps // 10))


class WeightAverage(keras.callbacks.Callback):
    """Keep the moving average of a model's floating-point variables, updated after every training batch.

    The average starts at the first batch from the weights then in the model (a restored resume state included).
    `swapped_in()` puts the average into the model for the duration of a block (evaluation, saving) and restores
    the trained values after it. `save` / `load` keep it with a run's resume state.
    """

    def __init__(self, momentum: float, tau: float) -> None:
        super().__init__()
        # Variables, so that a time budget's re-planned length reaches the traced update (`replan`).
        self._momentum = tf.Variable(float(momentum), trainable=False, name="ema_momentum")
        self._tau = tf.Variable(float(tau), trainable=False, name="ema_tau")
        self.averages: list[tf.Variable] | None = None
        self.updates = tf.Variable(0.0, trainable=False, dtype=tf.float32, name="ema_updates")
        self._update = None

    @property
    def momentum(self) -> float:
        return float(self._momentum.numpy())

    @property
    def tau(self) -> float:
        return float(self._tau.numpy())

    def replan(self, momentum: float, tau: float) -> None:
        self._momentum.assign(float(momentum))
        self._tau.assign(float(tau))

    def averaged_variables(self) -> list:
        return [v for v in self.model.weights if np.dtype(v.dtype).kind == "f"]

    def _build(self) -> None:
        variables = self.averaged_variables()
        if self.averages is None:
            self.averages = [tf.Variable(v.numpy(), trainable=False, name=f"ema_{i}") for i, v in enumerate(variables)]
        values = [v.value for v in variables]  # the backing tensors' variables, read inside the graph function

        @tf.function
        def update() -> None:
            self.updates.assign_add(1.0)
            decay = self._momentum * (1.0 - tf.exp(-self.updates / self._tau))
            for average, value in zip(self.averages, values, strict=True):
                # decay · average + (1 − decay) · value, written so that an unchanged value leaves it exact
                average.assign_add((1.0 - decay) * (tf.cast(value, average.dtype) - average))

        self._update = update

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._update is None:  # first built here, after a resume state (restored at train begin) is loaded
            self._build()
        self._update()

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """Inside the block the model holds the average; the trained values come back after it."""
        if self.averages is None:
            yield
            return
        variables = self.averaged_variables()
        trained = [v.numpy() for v in variables]
        for variable, average in zip(variables, self.averages, strict=True):
            variable.assign(average.numpy())
        try:
            yield
        finally:
            for variable, value in zip(variables, trained, strict=True):
                variable.assign(value)

    def save(self, path: str | Path, epoch: int) -> None:
        """Write the average, its update count and the epoch it belongs to (atomically)."""
        if self.averages is None:
            return
        arrays = {f"v{i}": a.numpy() for i, a in enumerate(self.averages)}
        atomic_write(path, lambda tmp: np.savez(tmp, updates=self.updates.numpy(), epoch=epoch, **arrays),
                     suffix=".npz")

    def load(self, path: str | Path, epoch: int) -> bool:
        """Restore the average saved for `epoch`; False (the average restarts from the weights) when the file is
        absent, of another epoch or of another model."""
        path = Path(path)
        if not path.is_file():
            return False
        with np.load(path) as saved:
            variables = self.averaged_variables()
            arrays = [saved[f"v{i}"] for i in range(len(variables)) if f"v{i}" in saved]
            shapes_match = len(arrays) == len(variables) and all(
                a.shape == tuple(v.shape) for a, v in zip(arrays, variables, strict=True))
            if int(saved["epoch"]) != epoch or not shapes_match:
                log.warning("%s does not belong to the resume state (epoch %d): the weight average restarts from "
                            "the restored weights", path, epoch)
                return False
            self.averages = [tf.Variable(a, trainable=False, name=f"ema_{i}") for i, a in enumerate(arrays)]
            self.updates.assign(float(saved["updates"]))
        self._build()
        return True


@contextlib.contextmanager
def averaged(average: WeightAverage | None) -> Iterator[None]:
    """`average.swapped_in()`, or nothing when the run keeps no average."""
    if average is None:
        yield
    else:
        with average.swapped_in():
            yield
