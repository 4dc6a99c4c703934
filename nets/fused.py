"""Layers whose training step runs fused kernels: BatchNormalization and the swish activation.

Keras 3 computes both with chains of elementwise ops, and their gradients with as many again, each a pass over
the feature map: on a CPU that was about 40% of an EfficientNet training step (docs/performance.md). While
training, `BatchNormalization` runs TensorFlow's `FusedBatchNormV3` (one kernel forward, one backward; oneDNN's on
x86) and `Swish` computes its input gradient in one XLA-compiled loop. Called for inference (predict, export) both
are exactly Keras' layers, so exported graphs do not change. Same weights, names and results: the moving statistics
are updated with the biased batch variance, as Keras does.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers


@keras.saving.register_keras_serializable(package="effyolo")
class BatchNormalization(layers.BatchNormalization):
    """`keras.layers.BatchNormalization` with a fused training kernel (`fused=False`: exactly Keras' layer)."""

    def __init__(self, *args, fused: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fused = fused

    def _fusable(self, inputs, mask) -> bool:
        return (self.fused and keras.backend.backend() == "tensorflow" and mask is None and not self.renorm
                and not self.synchronized and len(inputs.shape) == 4 and self.axis in (-1, 3)
                and self.scale and self.center)

    def call(self, inputs, training=None, mask=None):
        if not (training and self._fusable(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        # Statistics in float32 whatever the compute dtype, as Keras; the kernel reads bfloat16 and float16 itself.
        x = inputs if inputs.dtype in (tf.bfloat16, tf.float16, tf.float32) else tf.cast(inputs, "float32")
        gamma, beta = tf.cast(self.gamma, "float32"), tf.cast(self.beta, "float32")
        moving_mean = tf.cast(self.moving_mean, "float32")
        moving_variance = tf.cast(self.moving_variance, "float32")
        if not self.trainable:  # frozen: normalise with the moving statistics, as Keras does
            y, *_ = tf.raw_ops.FusedBatchNormV3(x=x, scale=gamma, offset=beta, mean=moving_mean,
                                                variance=moving_variance, epsilon=self.epsilon, is_training=False)
            return tf.cast(y, self.compute_dtype)
        empty = tf.zeros([0], "float32")
        y, mean, unbiased_variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=gamma, offset=beta, mean=empty, variance=empty, epsilon=self.epsilon, is_training=True)
        # The kernel returns the batch variance with Bessel's correction; Keras averages the biased one.
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), "float32")
        variance = unbiased_variance * (count - 1.0) / count
        self.moving_mean.assign(moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(y, self.compute_dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "fused": self.fused}


@tf.function(jit_compile=True)
def _swish_input_gradient(x: tf.Tensor, upstream: tf.Tensor) -> tf.Tensor:
    x32 = tf.cast(x, "float32")  # XLA's CPU code emulates bfloat16 arithmetic; the casts fuse into the loop
    sigmoid = tf.sigmoid(x32)
    return tf.cast(tf.cast(upstream, "float32") * (sigmoid * (1.0 + x32 * (1.0 - sigmoid))), upstream.dtype)


@tf.custom_gradient
def swish_with_fused_gradient(x: tf.Tensor):
    """`x · sigmoid(x)` whose gradient is one XLA loop instead of TensorFlow's five elementwise ops."""
    return tf.nn.silu(x), lambda upstream: _swish_input_gradient(x, upstream)


@keras.saving.register_keras_serializable(package="effyolo")
class Swish(layers.Layer):
    """`keras.layers.Activation("swish")` with a fused gradient while training (`fused=False`: exactly Keras')."""

    def __init__(self, fused: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fused = fused

    def call(self, inputs, training=None):
        if training and self.fused and keras.backend.backend() == "tensorflow":
            return swish_with_fused_gradient(inputs)
        return keras.activations.silu(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "fused": self.fused}


def activation_layer(activation: str, name: str) -> keras.layers.Layer:
    """The layer for a named activation: `Swish` for "swish"/"silu", LeakyReLU of slope 0.1 for "leaky" (YOLOv7's),
    Keras' `Activation` otherwise."""
    if activation in ("swish", "silu"):
        return Swish(name=name)
    if activation == "leaky":
        return layers.LeakyReLU(negative_slope=0.1, name=name)
    return layers.Activation(activation, name=name)


def set_fused_kernels(model: keras.Model, fused: bool) -> int:
    """Switch every fused layer of `model` (nested models included) to its fused kernels or to Keras' ops; takes
    effect at the next trace (benchmarks compare the two in one process). Returns how many layers it switched."""
    switched = 0
    for layer in model.layers:
        if isinstance(layer, BatchNormalization | Swish):
            layer.fused = fused
            switched += 1
        elif isinstance(layer, keras.Model):
            switched += set_fused_kernels(layer, fused)
    return switched
