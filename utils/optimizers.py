"""Optimizers whose weight decay behaves as in the PyTorch recipes the defaults come from."""

from __future__ import annotations

import keras
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
