"""Necks: fuse the backbone's stride-8/16/32 maps into three detection maps. Necks know nothing of backbones."""

from __future__ import annotations

import keras
from keras import layers

from nets.layers import c3_block, conv_bn_act

NECK_NAMES = ("yolov3", "yolov5", "yolov7-tiny")

# YOLOv3's neck widths are (128, 256, 512) per level; a width multiple per phi keeps B0 light and B7 full.
YOLOV3_BASE_WIDTHS = (128, 256, 512)
YOLOV3_WIDTH_BY_PHI = (0.5, 0.5, 0.5, 0.75, 0.75, 1.0, 1.0, 1.0)


def five_convs(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """YOLOv3's alternating 1×1 / 3×3 stack: 1×1 f, 3×3 2f, 1×1 f, 3×3 2f, 1×1 f."""
    for i, (width, kernel) in enumerate([(filters, 1), (2 * filters, 3)] * 2 + [(filters, 1)]):
        x = conv_bn_act(x, width, kernel, name=f"{name}_conv{i}")
    return x


def yolov3_fpn(
    features: list[keras.KerasTensor], width: float = 1.0, name: str = "neck"
) -> list[keras.KerasTensor]:
    """YOLOv3 top-down FPN.

    Args:
        features: backbone maps [stride 8, stride 16, stride 32].
        width: multiple of YOLOv3's (128, 256, 512) level widths.

    Returns:
        [stride 8, stride 16, stride 32] maps with widths `width` × (128, 256, 512).
    """
    widths = [max(16, int(round(w * width / 8)) * 8) for w in YOLOV3_BASE_WIDTHS]
    outputs: list[keras.KerasTensor] = [None, None, None]  # type: ignore[list-item]
    x = None
    for level in (2, 1, 0):  # stride 32 → 8
        tag = f"{name}_p{level + 3}"
        if x is None:
            x = features[level]
        else:
            x = conv_bn_act(x, widths[level], 1, name=f"{tag}_lateral")
            x = layers.UpSampling2D(2, name=f"{tag}_upsample")(x)
            x = layers.Concatenate(name=f"{tag}_concat")([x, features[level]])
        x = five_convs(x, widths[level], name=tag)
        outputs[level] = x
    return outputs


# YOLOv5's PAN widths are (256, 512, 1024) per level and its C3 blocks repeat 3 bottlenecks, both scaled by
# (width, depth) multiples; per phi this follows YOLOv5's n/s/m/l/x sizes: B0–B1 n, B2–B3 s, B4–B5 m, B6 l, B7 x.
YOLOV5_BASE_WIDTHS = (256, 512, 1024)
YOLOV5_C3_REPEATS = 3
YOLOV5_MULTIPLES_BY_PHI: tuple[tuple[float, float], ...] = (
    (0.25, 0.33), (0.25, 0.33), (0.5, 0.33), (0.5, 0.33), (0.75, 0.67), (0.75, 0.67), (1.0, 1.0), (1.25, 1.33),
)


def sppf_block(x: keras.KerasTensor, filters: int, name: str, pool_size: int = 5) -> keras.KerasTensor:
    """Spatial pyramid pooling, fast: three chained k×k max-pools (receptive fields 5, 9, 13) concatenated."""
    hidden = x.shape[-1] // 2
    x = conv_bn_act(x, hidden, 1, name=f"{name}_cv1")
    pooled = [x]
    for i in range(3):
        pooled.append(layers.MaxPooling2D(pool_size, strides=1, padding="same", name=f"{name}_pool{i}")(pooled[-1]))
    x = layers.Concatenate(name=f"{name}_concat")(pooled)
    return conv_bn_act(x, filters, 1, name=f"{name}_cv2")


def yolov5_pan(
    features: list[keras.KerasTensor], width: float = 1.0, depth: float = 1.0, name: str = "neck"
) -> list[keras.KerasTensor]:
    """YOLOv5 neck: SPPF on stride 32, top-down FPN then bottom-up PAN, C3 blocks after every concat.

    Args:
        features: backbone maps [stride 8, stride 16, stride 32].
        width: multiple of YOLOv5's (256, 512, 1024) level widths.
        depth: multiple of the three bottlenecks in each C3 block (at least one).

    Returns:
        [stride 8, stride 16, stride 32] maps with widths `width` × (256, 512, 1024).
    """
    w3, w4, w5 = [max(16, int(round(w * width / 8)) * 8) for w in YOLOV5_BASE_WIDTHS]
    repeats = max(1, round(YOLOV5_C3_REPEATS * depth))
    p5 = sppf_block(features[2], w5, name=f"{name}_p5_sppf")
    p5_lateral = conv_bn_act(p5, w4, 1, name=f"{name}_p5_lateral")
    x = layers.UpSampling2D(2, name=f"{name}_p4_upsample")(p5_lateral)
    x = layers.Concatenate(name=f"{name}_p4_concat")([x, features[1]])
    x = c3_block(x, w4, repeats, name=f"{name}_p4_c3")
    p4_lateral = conv_bn_act(x, w3, 1, name=f"{name}_p4_lateral")
    x = layers.UpSampling2D(2, name=f"{name}_p3_upsample")(p4_lateral)
    x = layers.Concatenate(name=f"{name}_p3_concat")([x, features[0]])
    out3 = c3_block(x, w3, repeats, name=f"{name}_p3_c3")
    x = conv_bn_act(out3, w3, 3, strides=2, name=f"{name}_p4_down")
    x = layers.Concatenate(name=f"{name}_p4_pan_concat")([x, p4_lateral])
    out4 = c3_block(x, w4, repeats, name=f"{name}_p4_pan_c3")
    x = conv_bn_act(out4, w4, 3, strides=2, name=f"{name}_p5_down")
    x = layers.Concatenate(name=f"{name}_p5_pan_concat")([x, p5_lateral])
    out5 = c3_block(x, w5, repeats, name=f"{name}_p5_pan_c3")
    return [out3, out4, out5]


# YOLOv7-tiny's neck (the layers after its backbone in yolov7-tiny.yaml): the pooling block's width, then per level
# the ELAN blocks' branch widths and outputs, and the 3×3 convs before the head — at width multiple 1.
YOLOV7_TINY_POOL_WIDTH = 256
YOLOV7_TINY_LEVEL_WIDTHS = (64, 128, 256)  # ELAN outputs at strides 8, 16, 32; their branches are half
YOLOV7_TINY_OUTPUT_WIDTHS = (128, 256, 512)  # the 3×3 convs that feed the head


def tiny_conv(x: keras.KerasTensor, filters: int, kernel: int, name: str, strides: int = 1) -> keras.KerasTensor:
    """YOLOv7-tiny's Conv: BatchNorm and LeakyReLU(0.1)."""
    return conv_bn_act(x, filters, kernel, name=name, strides=strides, activation="leaky")


def tiny_elan(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """YOLOv7-tiny's ELAN block: two 1×1 branches of `filters` / 2, two 3×3 convs chained on the second, the four
    concatenated (last first) and fused by a 1×1 conv to `filters`."""
    branch = filters // 2
    first = tiny_conv(x, branch, 1, name=f"{name}_cv1")
    second = tiny_conv(x, branch, 1, name=f"{name}_cv2")
    third = tiny_conv(second, branch, 3, name=f"{name}_cv3")
    fourth = tiny_conv(third, branch, 3, name=f"{name}_cv4")
    x = layers.Concatenate(name=f"{name}_concat")([fourth, third, second, first])
    return tiny_conv(x, filters, 1, name=f"{name}_cv5")


def tiny_spp(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """YOLOv7-tiny's SPPCSPC-style block: a 1×1 branch beside a 1×1 conv pooled by 5, 9 and 13 max-pools in
    parallel; the pools and their input concatenated (largest first), fused, joined with the branch and fused."""
    side = tiny_conv(x, filters, 1, name=f"{name}_cv1")
    main = tiny_conv(x, filters, 1, name=f"{name}_cv2")
    pooled = [layers.MaxPooling2D(k, strides=1, padding="same", name=f"{name}_pool{k}")(main) for k in (5, 9, 13)]
    x = layers.Concatenate(name=f"{name}_pool_concat")([*pooled[::-1], main])
    x = tiny_conv(x, filters, 1, name=f"{name}_cv3")
    x = layers.Concatenate(name=f"{name}_concat")([x, side])
    return tiny_conv(x, filters, 1, name=f"{name}_cv4")


def yolov7_tiny_pan(
    features: list[keras.KerasTensor], width: float = 1.0, name: str = "neck"
) -> list[keras.KerasTensor]:
    """YOLOv7-tiny neck: the pooling block on stride 32, a top-down FPN and a bottom-up PAN with an ELAN block after
    every concat, and a 3×3 conv per level before the head.

    Args:
        features: backbone maps [stride 8, stride 16, stride 32].
        width: multiple of YOLOv7-tiny's widths.

    Returns:
        [stride 8, stride 16, stride 32] maps with widths `width` × (128, 256, 512).
    """

    def scaled(channels: int) -> int:
        return max(8, int(round(channels * width / 8)) * 8)

    w3, w4, w5 = (scaled(c) for c in YOLOV7_TINY_LEVEL_WIDTHS)
    p5 = tiny_spp(features[2], scaled(YOLOV7_TINY_POOL_WIDTH), name=f"{name}_p5_spp")
    x = layers.UpSampling2D(2, name=f"{name}_p4_upsample")(tiny_conv(p5, w4, 1, name=f"{name}_p5_lateral"))
    x = layers.Concatenate(name=f"{name}_p4_concat")([tiny_conv(features[1], w4, 1, name=f"{name}_p4_route"), x])
    p4 = tiny_elan(x, w4, name=f"{name}_p4_elan")
    x = layers.UpSampling2D(2, name=f"{name}_p3_upsample")(tiny_conv(p4, w3, 1, name=f"{name}_p4_lateral"))
    x = layers.Concatenate(name=f"{name}_p3_concat")([tiny_conv(features[0], w3, 1, name=f"{name}_p3_route"), x])
    out3 = tiny_elan(x, w3, name=f"{name}_p3_elan")
    x = tiny_conv(out3, w4, 3, name=f"{name}_p4_down", strides=2)
    x = layers.Concatenate(name=f"{name}_p4_pan_concat")([x, p4])
    out4 = tiny_elan(x, w4, name=f"{name}_p4_pan_elan")
    x = tiny_conv(out4, w5, 3, name=f"{name}_p5_down", strides=2)
    x = layers.Concatenate(name=f"{name}_p5_pan_concat")([x, p5])
    out5 = tiny_elan(x, w5, name=f"{name}_p5_pan_elan")
    return [tiny_conv(out, scaled(channels), 3, name=f"{name}_p{level}_out")
            for level, out, channels in zip((3, 4, 5), (out3, out4, out5), YOLOV7_TINY_OUTPUT_WIDTHS, strict=True)]


def build_neck(
    neck: str, features: list[keras.KerasTensor], phi: int = 0, width: float | None = None,
    depth: float | None = None,
) -> list[keras.KerasTensor]:
    """Apply the named neck to backbone features; `width` (and for yolov5 `depth`) default to the per-phi tables."""
    if neck == "yolov3":
        return yolov3_fpn(features, width=YOLOV3_WIDTH_BY_PHI[phi] if width is None else width)
    if neck == "yolov5":
        default_width, default_depth = YOLOV5_MULTIPLES_BY_PHI[phi]
        return yolov5_pan(features, width=default_width if width is None else width,
                          depth=default_depth if depth is None else depth)
    if neck == "yolov7-tiny":
        return yolov7_tiny_pan(features, width=1.0 if width is None else width)
    raise ValueError(f"unknown neck {neck!r}; expected one of {NECK_NAMES}")
