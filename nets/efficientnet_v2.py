"""Functional EfficientNetV2 B0–B3 and S/M/L, layer for layer `keras.applications.EfficientNetV2*(include_top=False)`.

Early stages use Fused-MBConv (one full k×k conv in place of expand 1×1 + depthwise), later stages MBConv with
squeeze-excite. The stage tables are data (`STAGES`); B1–B3 scale B0's table by width and depth as V1 does, S/M/L have
their own tables. Layer names follow Keras' scheme so ImageNet weights published for `keras.applications` load by name.

Example:
    >>> model = build_efficientnet_v2("b0", input_shape=(224, 224, 3))
    >>> model.output_shape
    (None, 7, 7, 1280)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
from keras import layers

from nets.efficientnet import (
    CONV_INITIALIZER,
    IMAGENET_MEAN_RGB,
    IMAGENET_STDDEV_RGB,
    block_schedule,
    conv_bn,
    residual_with_drop_connect,
    squeeze_excite,
)
from nets.fused import BatchNormalization, activation_layer


@dataclass(frozen=True)
class V2Stage:
    """One stage: `fused` picks Fused-MBConv; filters are before width scaling, repeats before depth scaling."""

    fused: bool
    repeats: int
    filters_in: int
    filters_out: int
    expand_ratio: int
    strides: int
    se_ratio: float = 0.0
    kernel_size: int = 3


def _stages(rows: tuple[tuple, ...]) -> tuple[V2Stage, ...]:
    return tuple(V2Stage(*row) for row in rows)


# (fused, repeats, filters_in, filters_out, expand_ratio, strides, se_ratio), from the EfficientNetV2 paper/Keras.
STAGES: dict[str, tuple[V2Stage, ...]] = {
    "b": _stages((
        (True, 1, 32, 16, 1, 1), (True, 2, 16, 32, 4, 2), (True, 2, 32, 48, 4, 2),
        (False, 3, 48, 96, 4, 2, 0.25), (False, 5, 96, 112, 6, 1, 0.25), (False, 8, 112, 192, 6, 2, 0.25),
    )),
    "s": _stages((
        (True, 2, 24, 24, 1, 1), (True, 4, 24, 48, 4, 2), (True, 4, 48, 64, 4, 2),
        (False, 6, 64, 128, 4, 2, 0.25), (False, 9, 128, 160, 6, 1, 0.25), (False, 15, 160, 256, 6, 2, 0.25),
    )),
    "m": _stages((
        (True, 3, 24, 24, 1, 1), (True, 5, 24, 48, 4, 2), (True, 5, 48, 80, 4, 2),
        (False, 7, 80, 160, 4, 2, 0.25), (False, 14, 160, 176, 6, 1, 0.25), (False, 18, 176, 304, 6, 2, 0.25),
        (False, 5, 304, 512, 6, 1, 0.25),
    )),
    "l": _stages((
        (True, 4, 32, 32, 1, 1), (True, 7, 32, 64, 4, 2), (True, 7, 64, 96, 4, 2),
        (False, 10, 96, 192, 4, 2, 0.25), (False, 19, 192, 224, 6, 1, 0.25), (False, 25, 224, 384, 6, 2, 0.25),
        (False, 7, 384, 640, 6, 1, 0.25),
    )),
}


@dataclass(frozen=True)
class V2Variant:
    """Scaling of one variant and the stage table it scales."""

    table: str
    width: float
    depth: float
    resolution: int


VARIANTS: dict[str, V2Variant] = {
    "b0": V2Variant("b", 1.0, 1.0, 224),
    "b1": V2Variant("b", 1.0, 1.1, 240),
    "b2": V2Variant("b", 1.1, 1.2, 260),
    "b3": V2Variant("b", 1.2, 1.4, 300),
    "s": V2Variant("s", 1.0, 1.0, 384),
    "m": V2Variant("m", 1.0, 1.0, 480),
    "l": V2Variant("l", 1.0, 1.0, 480),
}

BN_MOMENTUM = 0.9  # Keras' default for V2 (V1 uses 0.99)


def round_filters_v2(filters: int, width: float, divisor: int = 8) -> int:
    """V2's rounding: scale by `width`, round to a multiple of `divisor` (no 10% floor, unlike V1)."""
    return int(max(divisor, int(filters * width + divisor / 2) // divisor * divisor))


def stage_repeats(variant: str) -> list[int]:
    """Blocks per stage of a variant after depth scaling."""
    spec = VARIANTS[variant]
    return [int(math.ceil(stage.repeats * spec.depth)) for stage in STAGES[spec.table]]


def v2_block(
    x: keras.KerasTensor,
    stage: V2Stage,
    filters_in: int,
    filters_out: int,
    strides: int,
    drop_rate: float,
    name: str,
    bn_momentum: float = BN_MOMENTUM,
) -> keras.KerasTensor:
    """One MBConv or Fused-MBConv block (with skip and stochastic depth when shapes allow)."""
    inputs = x
    expanded = filters_in * stage.expand_ratio
    k = stage.kernel_size
    if stage.fused:
        if stage.expand_ratio != 1:
            x = conv_bn(x, expanded, k, f"{name}expand_conv", f"{name}expand_bn", strides, bn_momentum)
            x = activation_layer("swish", name=f"{name}expand_activation")(x)
        if stage.se_ratio > 0:
            x = squeeze_excite(x, filters_in, stage.se_ratio, name)
        # Without expansion the single conv is the k×k strided one, and it keeps its activation.
        single = stage.expand_ratio == 1
        x = conv_bn(x, filters_out, k if single else 1, f"{name}project_conv", f"{name}project_bn",
                    strides if single else 1, bn_momentum)
        if single:
            x = activation_layer("swish", name=f"{name}project_activation")(x)
    else:
        if stage.expand_ratio != 1:
            x = conv_bn(x, expanded, 1, f"{name}expand_conv", f"{name}expand_bn", bn_momentum=bn_momentum)
            x = activation_layer("swish", name=f"{name}expand_activation")(x)
        x = layers.DepthwiseConv2D(k, strides=strides, padding="same", use_bias=False,
                                   depthwise_initializer=CONV_INITIALIZER, name=f"{name}dwconv2")(x)
        x = BatchNormalization(momentum=bn_momentum, name=f"{name}bn")(x)
        x = activation_layer("swish", name=f"{name}activation")(x)
        if stage.se_ratio > 0:
            x = squeeze_excite(x, filters_in, stage.se_ratio, name)
        x = conv_bn(x, filters_out, 1, f"{name}project_conv", f"{name}project_bn", bn_momentum=bn_momentum)
    if strides == 1 and filters_in == filters_out:
        x = residual_with_drop_connect(x, inputs, drop_rate, name)
    return x


def build_efficientnet_v2(
    variant: str,
    input_shape: tuple[int | None, int | None, int] = (None, None, 3),
    drop_connect_rate: float = 0.2,
    bn_momentum: float = BN_MOMENTUM,
    name: str | None = None,
) -> keras.Model:
    """EfficientNetV2 feature extractor (up to `top_activation`), taking 0–255 RGB pixels.

    Args:
        variant: "b0"…"b3", "s", "m" or "l".
        input_shape: (H, W, 3); None dimensions allowed.
        drop_connect_rate: stochastic-depth rate of the last block (linearly increasing from 0).
        bn_momentum: BatchNorm moving-average momentum.
        name: model name, `efficientnetv2-{variant}` by default (as Keras).

    Input scaling is Keras': B variants rescale to 0–1 and normalise by ImageNet mean/std (constants, no
    weights); S/M/L map 0–255 to −1…1.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown EfficientNetV2 variant {variant!r}; expected one of {list(VARIANTS)}")
    spec = VARIANTS[variant]
    stages = STAGES[spec.table]
    inputs = keras.Input(shape=input_shape, name="input_layer")
    if spec.table == "b":
        x = layers.Rescaling(1.0 / 255.0, name="rescaling")(inputs)
        x = layers.Normalization(mean=list(IMAGENET_MEAN_RGB), variance=[s * s for s in IMAGENET_STDDEV_RGB],
                                 axis=-1, name="normalization")(x)
    else:
        x = layers.Rescaling(1.0 / 128.0, offset=-1.0, name="rescaling")(inputs)
    x = conv_bn(x, round_filters_v2(stages[0].filters_in, spec.width), 3, "stem_conv", "stem_bn", 2, bn_momentum)
    x = activation_layer("swish", name="stem_activation")(x)

    for stage_index, repeat, drop_rate, block_name in block_schedule(stage_repeats(variant), drop_connect_rate):
        stage = stages[stage_index]
        filters_out = round_filters_v2(stage.filters_out, spec.width)
        x = v2_block(
            x, stage,
            filters_in=round_filters_v2(stage.filters_in, spec.width) if repeat == 0 else filters_out,
            filters_out=filters_out,
            strides=stage.strides if repeat == 0 else 1,
            drop_rate=drop_rate,
            name=block_name,
            bn_momentum=bn_momentum,
        )

    x = conv_bn(x, round_filters_v2(1280, spec.width), 1, "top_conv", "top_bn", bn_momentum=bn_momentum)
    x = activation_layer("swish", name="top_activation")(x)
    return keras.Model(inputs, x, name=name or f"efficientnetv2-{variant}")
