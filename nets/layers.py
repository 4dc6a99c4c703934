"""Small building blocks shared by necks and heads."""

from __future__ import annotations

import keras
from keras import layers

from nets.fused import BatchNormalization, activation_layer


def conv_bn_act(
    x: keras.KerasTensor, filters: int, kernel_size: int, name: str, strides: int = 1, activation: str = "swish"
) -> keras.KerasTensor:
    """Conv (no bias) → BatchNorm → activation, layers named `{name}_conv`, `{name}_bn`, `{name}_act`."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = BatchNormalization(momentum=0.97, epsilon=1e-3, name=f"{name}_bn")(x)
    return activation_layer(activation, name=f"{name}_act")(x)
