"""Functional EfficientNet B0–B7 (layer for layer `keras.applications.EfficientNetB{phi}(include_top=False)`) and
EfficientNet-Lite0–4, the mobile and int8-friendly variant of the TPU reference implementation.

The architecture is data: `BLOCKS` is the B0 stage table, `SCALING` and `LITE_SCALING` the compound-scaling tables,
and `Rules` what distinguishes the families (Lite: ReLU6, no squeeze-excite, stem and head not scaled, the first
and last stages' repeats not scaled, inputs normalised as `(x − 127) / 128`). One generic builder loops over them.
Layer names follow Keras' scheme (`block{stage}{letter}_{part}`) so that ImageNet weights load by name.

Example:
    >>> model = build_efficientnet(0, input_shape=(224, 224, 3))
    >>> model.output_shape
    (None, 7, 7, 1280)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import keras
from keras import layers

from nets.fused import BatchNormalization, activation_layer

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)

CONV_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"},
}


@dataclass(frozen=True)
class StageArgs:
    """One stage of MBConv blocks, in B0 units (before width/depth scaling)."""

    kernel_size: int
    repeats: int
    filters_in: int
    filters_out: int
    expand_ratio: int
    strides: int
    se_ratio: float = 0.25


BLOCKS: tuple[StageArgs, ...] = (
    StageArgs(3, 1, 32, 16, 1, 1),
    StageArgs(3, 2, 16, 24, 6, 2),
    StageArgs(5, 2, 24, 40, 6, 2),
    StageArgs(3, 3, 40, 80, 6, 2),
    StageArgs(5, 3, 80, 112, 6, 1),
    StageArgs(5, 4, 112, 192, 6, 2),
    StageArgs(3, 1, 192, 320, 6, 1),
)


@dataclass(frozen=True)
class Scaling:
    """Compound-scaling coefficients of one EfficientNet variant."""

    width: float
    depth: float
    resolution: int
    dropout: float


# phi -> (width, depth, default resolution, top dropout), from the EfficientNet paper.
SCALING: tuple[Scaling, ...] = (
    Scaling(1.0, 1.0, 224, 0.2),
    Scaling(1.0, 1.1, 240, 0.2),
    Scaling(1.1, 1.2, 260, 0.3),
    Scaling(1.2, 1.4, 300, 0.3),
    Scaling(1.4, 1.8, 380, 0.4),
    Scaling(1.6, 2.2, 456, 0.4),
    Scaling(1.8, 2.6, 528, 0.5),
    Scaling(2.0, 3.1, 600, 0.5),
)


# EfficientNet-Lite0–4 (tensorflow/tpu models/official/efficientnet/lite): width, depth, resolution, dropout.
LITE_SCALING: tuple[Scaling, ...] = (
    Scaling(1.0, 1.0, 224, 0.2),
    Scaling(1.0, 1.1, 240, 0.2),
    Scaling(1.1, 1.2, 260, 0.3),
    Scaling(1.2, 1.4, 280, 0.3),
    Scaling(1.4, 1.8, 300, 0.3),
)


@dataclass(frozen=True)
class Rules:
    """What a family does with the shared table: activation, squeeze-excite, which parts scale, input statistics
    (per RGB channel, on the 0–1 scale after dividing by 255)."""

    activation: str
    squeeze_excite: bool
    scale_stem_and_head: bool
    scale_end_stage_repeats: bool
    mean_rgb: tuple[float, float, float]
    stddev_rgb: tuple[float, float, float]


EFFICIENTNET_RULES = Rules("swish", True, True, True, IMAGENET_MEAN_RGB, IMAGENET_STDDEV_RGB)
LITE_RULES = Rules("relu6", False, False, False, (127 / 255,) * 3, (128 / 255,) * 3)
STEM_FILTERS, HEAD_FILTERS = 32, 1280


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Scale a channel count by `width` and round to a multiple of `divisor`, never losing more than 10%."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    """Scale a stage's block count by `depth`, rounding up."""
    return int(math.ceil(depth * repeats))


def block_schedule(repeats: list[int], drop_connect_rate: float) -> Iterator[tuple[int, int, float, str]]:
    """(stage index, repeat index, drop-connect rate, Keras name prefix `block{stage}{letter}_`) of every block.

    The drop rate grows linearly from 0 at the first block towards `drop_connect_rate` at the last.
    """
    total, index = sum(repeats), 0
    for stage_index, count in enumerate(repeats):
        for repeat in range(count):
            name = f"block{stage_index + 1}{chr(ord('a') + repeat)}_"
            yield stage_index, repeat, drop_connect_rate * index / total, name
            index += 1


def _same_pad_for_stride2(size: int | None, kernel_size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """TF-style 'same' padding for a stride-2 conv (Keras' `correct_pad`), on a square input."""
    adjust = 1 if size is None else 1 - size % 2
    half = kernel_size // 2
    return (half - adjust, half), (half - adjust, half)


def conv_bn(x: keras.KerasTensor, filters: int, kernel_size: int, name: str, bn_name: str, strides: int = 1,
            bn_momentum: float = 0.99) -> keras.KerasTensor:
    """Bias-free 'same' conv + BatchNorm with Keras' EfficientNet initialiser, named `name` and `bn_name`."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False,
                      kernel_initializer=CONV_INITIALIZER, name=name)(x)
    return BatchNormalization(momentum=bn_momentum, name=bn_name)(x)


def squeeze_excite(x: keras.KerasTensor, filters_in: int, se_ratio: float, name: str,
                   activation: str = "swish") -> keras.KerasTensor:
    """Squeeze-excite: global pool → 1×1 down to `filters_in · se_ratio` → 1×1 up → sigmoid gate on `x`."""
    filters = x.shape[-1]
    se = layers.GlobalAveragePooling2D(name=f"{name}se_squeeze")(x)
    se = layers.Reshape((1, 1, filters), name=f"{name}se_reshape")(se)
    se = layers.Conv2D(max(1, int(filters_in * se_ratio)), 1, padding="same", activation=activation,
                       kernel_initializer=CONV_INITIALIZER, name=f"{name}se_reduce")(se)
    se = layers.Conv2D(filters, 1, padding="same", activation="sigmoid", kernel_initializer=CONV_INITIALIZER,
                       name=f"{name}se_expand")(se)
    return layers.multiply([x, se], name=f"{name}se_excite")


def residual_with_drop_connect(x: keras.KerasTensor, inputs: keras.KerasTensor, drop_rate: float,
                               name: str) -> keras.KerasTensor:
    """`inputs + x`, where drop connect (stochastic depth) drops the whole branch `x` per sample; off at inference."""
    if drop_rate > 0:
        x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}drop")(x)
    return layers.add([x, inputs], name=f"{name}add")


def mbconv_block(
    x: keras.KerasTensor,
    args: StageArgs,
    filters_in: int,
    filters_out: int,
    strides: int,
    drop_rate: float,
    name: str,
    activation: str = "swish",
    bn_momentum: float = 0.99,
) -> keras.KerasTensor:
    """Inverted residual block: expand 1×1 → depthwise k×k → squeeze-excite → project 1×1 (+ drop-connect skip)."""
    inputs = x
    filters = filters_in * args.expand_ratio
    if args.expand_ratio != 1:
        x = conv_bn(x, filters, 1, f"{name}expand_conv", f"{name}expand_bn", bn_momentum=bn_momentum)
        x = activation_layer(activation, name=f"{name}expand_activation")(x)
    if strides == 2:
        x = layers.ZeroPadding2D(_same_pad_for_stride2(x.shape[1], args.kernel_size), name=f"{name}dwconv_pad")(x)
    x = layers.DepthwiseConv2D(args.kernel_size, strides=strides, padding="valid" if strides == 2 else "same",
                               use_bias=False, depthwise_initializer=CONV_INITIALIZER, name=f"{name}dwconv")(x)
    x = BatchNormalization(momentum=bn_momentum, name=f"{name}bn")(x)
    x = activation_layer(activation, name=f"{name}activation")(x)

    if args.se_ratio > 0:
        x = squeeze_excite(x, filters_in, args.se_ratio, name, activation)
    x = conv_bn(x, filters_out, 1, f"{name}project_conv", f"{name}project_bn", bn_momentum=bn_momentum)
    if strides == 1 and filters_in == filters_out:
        x = residual_with_drop_connect(x, inputs, drop_rate, name)
    return x


def build_efficientnet(
    phi: int,
    input_shape: tuple[int | None, int | None, int] = (None, None, 3),
    drop_connect_rate: float = 0.2,
    imagenet_rescaling: bool = False,
    bn_momentum: float = 0.99,
    name: str | None = None,
    include_top: bool = False,
) -> keras.Model:
    """EfficientNet-B{phi} feature extractor (up to `top_activation`), taking 0–255 RGB pixels.

    Args:
        phi: 0–7, selects B0–B7 by compound scaling.
        input_shape: (H, W, 3); None dimensions allowed.
        drop_connect_rate: stochastic-depth rate of the last block (linearly increasing from 0).
        imagenet_rescaling: add Keras' extra `Rescaling` by 1/sqrt(std) that its ImageNet weights expect.
        bn_momentum: BatchNorm moving-average momentum (Keras' 0.99 by default; lower adapts faster).
        name: model name, `efficientnetb{phi}` by default (as Keras).
        include_top: add the ImageNet classifier (`avg_pool`, `top_dropout`, `predictions`: 1000 softmax).
    """
    return _build(scaling_of(SCALING, phi, "phi"), EFFICIENTNET_RULES, input_shape, drop_connect_rate,
                  imagenet_rescaling, bn_momentum, name or f"efficientnetb{phi}", include_top)


def build_efficientnet_lite(
    variant: int,
    input_shape: tuple[int | None, int | None, int] = (None, None, 3),
    drop_connect_rate: float = 0.2,
    bn_momentum: float = 0.99,
    name: str | None = None,
    include_top: bool = False,
) -> keras.Model:
    """EfficientNet-Lite{variant} (0–4) feature extractor, taking 0–255 RGB pixels; arguments as
    `build_efficientnet`. Layer names are the B-series ones, without the squeeze-excite layers."""
    return _build(scaling_of(LITE_SCALING, variant, "EfficientNet-Lite variant"), LITE_RULES, input_shape,
                  drop_connect_rate, False, bn_momentum, name or f"efficientnetlite{variant}", include_top)


def scaling_of(table: tuple[Scaling, ...], index: int, what: str) -> Scaling:
    """`table[index]`, or a ValueError naming the valid range."""
    if not 0 <= index < len(table):
        raise ValueError(f"{what} must be in 0..{len(table) - 1}, got {index}")
    return table[index]


def stage_repeats(scale: Scaling, rules: Rules) -> list[int]:
    """Blocks per stage: the table's repeats scaled by depth (Lite: the first and last stage unscaled)."""
    last = len(BLOCKS) - 1
    return [stage.repeats if not rules.scale_end_stage_repeats and index in (0, last)
            else round_repeats(stage.repeats, scale.depth) for index, stage in enumerate(BLOCKS)]


def _build(scale: Scaling, rules: Rules, input_shape: tuple, drop_connect_rate: float, imagenet_rescaling: bool,
           bn_momentum: float, name: str, include_top: bool) -> keras.Model:
    inputs = keras.Input(shape=input_shape, name="input_layer")
    x = layers.Rescaling(1.0 / 255.0, name="rescaling")(inputs)
    normalization = layers.Normalization(axis=-1, name="normalization")
    x = normalization(x)
    if imagenet_rescaling:
        x = layers.Rescaling([1.0 / math.sqrt(s) for s in IMAGENET_STDDEV_RGB], name="rescaling_1")(x)
    stem_filters = round_filters(STEM_FILTERS, scale.width) if rules.scale_stem_and_head else STEM_FILTERS
    x = layers.ZeroPadding2D(_same_pad_for_stride2(input_shape[0], 3), name="stem_conv_pad")(x)
    x = layers.Conv2D(stem_filters, 3, strides=2, padding="valid", use_bias=False,
                      kernel_initializer=CONV_INITIALIZER, name="stem_conv")(x)
    x = BatchNormalization(momentum=bn_momentum, name="stem_bn")(x)
    x = activation_layer(rules.activation, name="stem_activation")(x)

    for stage_index, repeat, drop_rate, block_name in block_schedule(stage_repeats(scale, rules), drop_connect_rate):
        stage = BLOCKS[stage_index] if rules.squeeze_excite else replace(BLOCKS[stage_index], se_ratio=0.0)
        filters_out = round_filters(stage.filters_out, scale.width)
        x = mbconv_block(
            x, stage,
            filters_in=round_filters(stage.filters_in, scale.width) if repeat == 0 else filters_out,
            filters_out=filters_out,
            strides=stage.strides if repeat == 0 else 1,
            drop_rate=drop_rate,
            name=block_name,
            activation=rules.activation,
            bn_momentum=bn_momentum,
        )

    head_filters = round_filters(HEAD_FILTERS, scale.width) if rules.scale_stem_and_head else HEAD_FILTERS
    x = conv_bn(x, head_filters, 1, "top_conv", "top_bn", bn_momentum=bn_momentum)
    x = activation_layer(rules.activation, name="top_activation")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(scale.dropout, name="top_dropout")(x)
        x = layers.Dense(1000, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, x, name=name)
    set_input_normalization(normalization, rules.mean_rgb, rules.stddev_rgb)
    return model


def set_input_normalization(normalization: layers.Normalization, mean_rgb: tuple[float, float, float],
                            stddev_rgb: tuple[float, float, float]) -> None:
    """Put an RGB mean and standard deviation into an (unadapted) Normalization layer's state variables."""
    mean, variance, count = normalization.get_weights()
    mean[...] = mean_rgb
    variance[...] = [s * s for s in stddev_rgb]
    normalization.set_weights([mean, variance, count])
    normalization.finalize_state()  # `call` reads tensors derived here, not the variables set above
