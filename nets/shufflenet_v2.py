"""Functional ShuffleNetV2 (Ma et al., 2018) x0.5–x2.0, with the plain stem or YOLOv5-face's StemBlock.

A unit either splits the channels in half and transforms one half (stride 1), or transforms two copies of the
input, one per branch (stride 2, doubling the channels); the two halves are concatenated and shuffled so that
information crosses between them. Stages 2, 3 and 4 (4, 8, 4 units) end at strides 8, 16 and 32.

Layer names: `stem_*`, `stage{s}_unit{u}_{branch}_{part}`, `conv5_*`, `predictions`; each unit ends with its
`..._shuffle` layer, so a stage's output is found by name.

Example:
    >>> model = build_shufflenet_v2(1.0, input_shape=(224, 224, 3), include_top=True)
    >>> sum(int(w.numpy().size) for w in model.trainable_weights)  # torchvision's shufflenet_v2_x1_0
    2278604
"""

from __future__ import annotations

import keras
from keras import layers, ops

from nets.efficientnet import IMAGENET_MEAN_RGB, IMAGENET_STDDEV_RGB
from nets.fused import BatchNormalization

# width -> output channels of the stem, stages 2, 3, 4 and conv5 (the paper's Table 5).
STAGE_CHANNELS: dict[float, tuple[int, int, int, int, int]] = {
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}
STAGE_UNITS = (4, 8, 4)
STEMS = ("plain", "stemblock")
# PyTorch's BatchNorm (the published models' framework) uses eps 1e-5; detection BN momentum as our other backbones.
BN_EPSILON = 1e-5


@keras.saving.register_keras_serializable(package="effyolo")
class ChannelShuffle(layers.Layer):
    """Interleave the channels of `groups` equal groups: [a0 a1 … b0 b1 …] → [a0 b0 a1 b1 …]."""

    def __init__(self, groups: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.groups = groups

    def call(self, inputs):
        shape = ops.shape(inputs)
        channels = inputs.shape[-1]
        grouped = ops.reshape(inputs, (shape[0], shape[1], shape[2], self.groups, channels // self.groups))
        return ops.reshape(ops.swapaxes(grouped, 3, 4), (shape[0], shape[1], shape[2], channels))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "groups": self.groups}


@keras.saving.register_keras_serializable(package="effyolo")
class ChannelHalf(layers.Layer):
    """The first (`index=0`) or second (`index=1`) half of the channels."""

    def __init__(self, index: int, **kwargs):
        super().__init__(**kwargs)
        self.index = index

    def call(self, inputs):
        half = inputs.shape[-1] // 2
        return inputs[..., half * self.index: half * (self.index + 1)]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // 2)

    def get_config(self) -> dict:
        return {**super().get_config(), "index": self.index}


def _conv_bn(x: keras.KerasTensor, filters: int, kernel_size: int, name: str, strides: int = 1,
             relu: bool = True, bn_momentum: float = 0.97) -> keras.KerasTensor:
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = BatchNormalization(momentum=bn_momentum, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _depthwise_bn(x: keras.KerasTensor, strides: int, name: str, bn_momentum: float) -> keras.KerasTensor:
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"{name}_dwconv")(x)
    return BatchNormalization(momentum=bn_momentum, epsilon=BN_EPSILON, name=f"{name}_dwbn")(x)


def shuffle_unit(x: keras.KerasTensor, filters_out: int, strides: int, name: str,
                 bn_momentum: float = 0.97) -> keras.KerasTensor:
    """One ShuffleNetV2 unit; `filters_out` is split evenly between its two branches."""
    branch_filters = filters_out // 2
    if strides == 1:
        kept = ChannelHalf(0, name=f"{name}_split_keep")(x)
        branch = ChannelHalf(1, name=f"{name}_split_branch")(x)
    else:
        kept = _depthwise_bn(x, strides, f"{name}_branch1", bn_momentum)
        kept = _conv_bn(kept, branch_filters, 1, f"{name}_branch1_pw", bn_momentum=bn_momentum)
        branch = x
    branch = _conv_bn(branch, branch_filters, 1, f"{name}_branch2_pw1", bn_momentum=bn_momentum)
    branch = _depthwise_bn(branch, strides, f"{name}_branch2", bn_momentum)
    branch = _conv_bn(branch, branch_filters, 1, f"{name}_branch2_pw2", bn_momentum=bn_momentum)
    x = layers.Concatenate(name=f"{name}_concat")([kept, branch])
    return ChannelShuffle(2, name=f"{name}_shuffle")(x)


def stem_block(x: keras.KerasTensor, filters: int, bn_momentum: float = 0.97) -> keras.KerasTensor:
    """YOLOv5-face StemBlock (stride 4): conv s2 → [1×1 → 3×3 s2] ‖ [2×2 max-pool] → concat → 1×1 fuse."""
    x = _conv_bn(x, filters, 3, "stem_1", strides=2, bn_momentum=bn_momentum)
    conv = _conv_bn(x, filters // 2, 1, "stem_2a", bn_momentum=bn_momentum)
    conv = _conv_bn(conv, filters, 3, "stem_2b", strides=2, bn_momentum=bn_momentum)
    pool = layers.MaxPooling2D(2, strides=2, padding="same", name="stem_2p_pool")(x)
    x = layers.Concatenate(name="stem_concat")([conv, pool])
    return _conv_bn(x, filters, 1, "stem_3", bn_momentum=bn_momentum)


def build_shufflenet_v2(
    width: float,
    input_shape: tuple[int | None, int | None, int] = (None, None, 3),
    stem: str = "plain",
    include_top: bool = False,
    classes: int = 1000,
    bn_momentum: float = 0.97,
    name: str | None = None,
) -> keras.Model:
    """ShuffleNetV2 taking 0–255 RGB pixels (normalised inside by ImageNet mean/std, constants).

    Args:
        width: 0.5, 1.0, 1.5 or 2.0.
        input_shape: (H, W, 3); None dimensions allowed.
        stem: "plain" (3×3 s2 conv-BN-ReLU + 3×3 s2 max-pool) or "stemblock" (YOLOv5-face StemBlock).
        include_top: add conv5, global average pooling and the `classes`-way dense layer (the classifier form
            that the published parameter counts refer to); without it the model ends at conv5's activation.
        classes: classifier outputs when `include_top`.
        bn_momentum: BatchNorm moving-average momentum.
        name: model name, `shufflenetv2-x{width}` (plus `-stemblock`) by default.
    """
    if width not in STAGE_CHANNELS:
        raise ValueError(f"ShuffleNetV2 width must be one of {sorted(STAGE_CHANNELS)}, got {width}")
    if stem not in STEMS:
        raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
    channels = STAGE_CHANNELS[width]
    inputs = keras.Input(shape=input_shape, name="input_layer")
    x = layers.Rescaling(1.0 / 255.0, name="rescaling")(inputs)
    x = layers.Normalization(mean=list(IMAGENET_MEAN_RGB), variance=[s * s for s in IMAGENET_STDDEV_RGB],
                             axis=-1, name="normalization")(x)
    if stem == "plain":
        x = _conv_bn(x, channels[0], 3, "stem", strides=2, bn_momentum=bn_momentum)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    else:
        x = stem_block(x, channels[0], bn_momentum)
    for stage, (units, filters) in enumerate(zip(STAGE_UNITS, channels[1:4], strict=True), start=2):
        for unit in range(units):
            x = shuffle_unit(x, filters, 2 if unit == 0 else 1, f"stage{stage}_unit{unit + 1}", bn_momentum)
    x = _conv_bn(x, channels[4], 1, "conv5", bn_momentum=bn_momentum)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(classes, name="predictions")(x)
    suffix = "-stemblock" if stem == "stemblock" else ""
    return keras.Model(inputs, x, name=name or f"shufflenetv2-x{width}{suffix}")
