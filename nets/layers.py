"""Small building blocks shared by backbones, necks and heads: Conv + BatchNorm + activation, and YOLOv5's CSP
bottleneck blocks."""

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


def bottleneck(x: keras.KerasTensor, filters: int, shortcut: bool, name: str) -> keras.KerasTensor:
    """1×1 → 3×3 conv, plus the input when `shortcut`."""
    y = conv_bn_act(x, filters, 1, name=f"{name}_cv1")
    y = conv_bn_act(y, filters, 3, name=f"{name}_cv2")
    return layers.Add(name=f"{name}_add")([x, y]) if shortcut else y


def c3_block(x: keras.KerasTensor, filters: int, repeats: int, name: str, shortcut: bool = False) -> keras.KerasTensor:
    """CSP bottleneck with 3 convs: [1×1 → bottlenecks] ‖ [1×1] → concat → 1×1, each branch half of `filters`."""
    hidden = filters // 2
    main = conv_bn_act(x, hidden, 1, name=f"{name}_cv1")
    for i in range(repeats):
        main = bottleneck(main, hidden, shortcut, name=f"{name}_m{i}")
    side = conv_bn_act(x, hidden, 1, name=f"{name}_cv2")
    x = layers.Concatenate(name=f"{name}_concat")([main, side])
    return conv_bn_act(x, filters, 1, name=f"{name}_cv3")


@keras.saving.register_keras_serializable(package="effyolo")
class ImplicitAdd(layers.Layer):
    """YOLOR's implicit knowledge added to a feature map: one learned offset per channel (YOLOv7's ImplicitA,
    initialised N(0, 0.02))."""

    def build(self, input_shape) -> None:
        self.offset = self.add_weight(shape=(input_shape[-1],), name="offset",
                                      initializer=keras.initializers.RandomNormal(0.0, 0.02))

    def call(self, inputs):
        return inputs + keras.ops.cast(self.offset, inputs.dtype)


@keras.saving.register_keras_serializable(package="effyolo")
class ImplicitMultiply(layers.Layer):
    """YOLOR's implicit knowledge multiplying a feature map: one learned scale per channel (YOLOv7's ImplicitM,
    initialised N(1, 0.02))."""

    def build(self, input_shape) -> None:
        self.scale = self.add_weight(shape=(input_shape[-1],), name="scale",
                                     initializer=keras.initializers.RandomNormal(1.0, 0.02))

    def call(self, inputs):
        return inputs * keras.ops.cast(self.scale, inputs.dtype)


@keras.saving.register_keras_serializable(package="effyolo")
class AnchorReshape(layers.Layer):
    """(B, H, W, A · D) → (B, H, W, A, D) for any H and W (Keras' `Reshape` needs them fixed): the anchor head's
    outputs, so one network trains and runs at every input size."""

    def __init__(self, anchors: int, depth: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.anchors, self.depth = anchors, depth

    def call(self, inputs):
        shape = keras.ops.shape(inputs)
        return keras.ops.reshape(inputs, (shape[0], shape[1], shape[2], self.anchors, self.depth))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], self.anchors, self.depth)

    def get_config(self) -> dict:
        return {**super().get_config(), "anchors": self.anchors, "depth": self.depth}
