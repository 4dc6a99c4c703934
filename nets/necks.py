"""Necks: fuse the backbone's stride-8/16/32 maps into three detection maps. Necks know nothing of backbones."""

from __future__ import annotations

import keras
from keras import layers

from nets.layers import conv_bn_act

NECK_NAMES = ("yolov3",)

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


def build_neck(
    neck: str, features: list[keras.KerasTensor], phi: int = 0, width: float | None = None
) -> list[keras.KerasTensor]:
    """Apply the named neck to backbone features; `width` defaults to the per-phi table."""
    if neck == "yolov3":
        return yolov3_fpn(features, width=YOLOV3_WIDTH_BY_PHI[phi] if width is None else width)
    raise ValueError(f"unknown neck {neck!r}; expected one of {NECK_NAMES}")
