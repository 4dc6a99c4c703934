"""Optimizers that behave as in the PyTorch recipes the defaults come from: SGD's weight decay, Adam's steps."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="effyolo")
class CoupledDecaySGD(keras.optimizers.SGD):
    """SGD with weight decay added to the gradient before momentum (`g + wd·w`), as `torch.optim.SGD` and so
    YOLOv5 apply it, instead of Keras' decoupled `w -= lr·wd·w`.

    With momentum m the coupled term accumulates to about wd / (1 − m) per step: ≈ 16× Keras' decoupled decay of
    the same value at m = 0.937. Variables excluded with `exclude_from_weight_decay` get none.
    """

    def apply(self, grads, trainable_variables=None):
        variables = self._trainable_variables if trainable_variables is None else list(trainable_variables)
        if self.weight_decay:
            grads = [g if g is None or not self._use_weight_decay(v)
                     else g + ops.cast(self.weight_decay, g.dtype) * ops.cast(v, g.dtype)
                     for g, v in zip(grads, variables, strict=True)]
        return super().apply(grads, trainable_variables)

    def _apply_weight_decay(self, variables) -> None:
        """The decay is in the gradient (see `apply`), not a separate decoupled step."""


@keras.saving.register_keras_serializable(package="effyolo")
class PerVariableStepAdam(keras.optimizers.Adam):
    """Adam (AdamW with `weight_decay`, decoupled as Keras applies it) whose bias correction counts each variable's
    own updates, as `torch.optim.Adam` keeps a step per parameter, instead of the optimizer's iterations.

    With the shared count, a variable that starts training late — a backbone unfrozen after a frozen phase — starts
    from zero moments but is bias-corrected as if it had trained all along: after a frozen phase of a thousand
    steps or more its updates are 3–6× the learning rate over its first hundred steps and still 1.3× after a
    thousand (after 100 frozen steps, up to 2×). Counted per variable, its first update is a fresh Adam's. When
    every variable trains from the first step the two counts agree, and so do the updates.
    """

    def build(self, variables) -> None:
        if self.built:
            return
        super().build(variables)
        strategy = tf.distribute.get_strategy()
        self._own_steps = []
        for variable in variables:
            with strategy.extended.colocate_vars_with(variable.value if isinstance(variable, keras.Variable)
                                                      else variable):
                self._own_steps.append(self.add_variable(
                    shape=(), initializer="zeros", dtype="float32",
                    name=f"{variable.path.replace('/', '_')}_steps"))

    def update_step(self, gradient, variable, learning_rate) -> None:
        index = self._get_variable_index(variable)
        steps, m, v = self._own_steps[index], self._momentums[index], self._velocities[index]
        self.assign_add(steps, 1.0)
        step = ops.cast(steps, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        beta_1, beta_2 = ops.cast(self.beta_1, variable.dtype), ops.cast(self.beta_2, variable.dtype)
        alpha = ops.cast(learning_rate, variable.dtype) * ops.sqrt(1 - beta_2**step) / (1 - beta_1**step)
        self.assign_add(m, (gradient - m) * (1 - beta_1))
        self.assign_add(v, (ops.square(gradient) - v) * (1 - beta_2))
        self.assign_sub(variable, alpha * m / (ops.sqrt(v) + self.epsilon))
