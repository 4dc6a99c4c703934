"""CSPDarknet: YOLOv5's own backbone (v6.0 and later), the baseline the replacement backbones are compared with.

A 6×6 stride-2 stem conv, then four stages of a 3×3 stride-2 conv and a C3 block whose bottlenecks keep their
shortcuts; SiLU and BatchNorm throughout. Widths and depths scale by YOLOv5's n/s/m/l/x multiples (channels rounded
up to multiples of 8, repeats rounded, at least one). Stage 2, 3 and 4 ends are the stride-8/16/32 maps. YOLOv5 ends
its backbone with SPPF; here SPPF opens the `yolov5` neck instead — the same layers on the same map, so
CSPDarknet + `yolov5` is YOLOv5 layer for layer.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from nets.layers import c3_block, conv_bn_act

STEM_CHANNELS = 64
# Per stage (output channels, C3 bottlenecks) of yolov5l (multiples 1.0, 1.0).
STAGES = ((128, 3), (256, 6), (512, 9), (1024, 3))
# (depth, width) multiples of each size, as YOLOv5's yolov5{n,s,m,l,x}.yaml.
MULTIPLES = {"n": (0.33, 0.25), "s": (0.33, 0.50), "m": (0.67, 0.75), "l": (1.0, 1.0), "x": (1.33, 1.25)}


def scaled_width(channels: int, multiple: float) -> int:
    """Channels × multiple, rounded up to a multiple of 8 (YOLOv5's `make_divisible`)."""
    return math.ceil(channels * multiple / 8) * 8


def scaled_depth(repeats: int, multiple: float) -> int:
    return max(round(repeats * multiple), 1)


def build_cspdarknet(variant: str, input_shape: tuple = (None, None, 3)) -> keras.Model:
    """CSPDarknet of size `variant` (n, s, m, l, x) taking 0–255 RGB pixels (scaled to 0–1 inside, as YOLOv5 feeds
    them); layers named `stem_*` and `stage{1..4}_{down,c3}_*`."""
    if variant not in MULTIPLES:
        raise ValueError(f"unknown CSPDarknet size {variant!r}; expected one of {', '.join(MULTIPLES)}")
    depth, width = MULTIPLES[variant]
    inputs = keras.Input(input_shape, name="images")
    x = layers.Rescaling(1.0 / 255.0, name="rescaling")(inputs)
    x = conv_bn_act(x, scaled_width(STEM_CHANNELS, width), 6, name="stem", strides=2)
    for stage, (channels, repeats) in enumerate(STAGES, start=1):
        filters = scaled_width(channels, width)
        x = conv_bn_act(x, filters, 3, name=f"stage{stage}_down", strides=2)
        x = c3_block(x, filters, scaled_depth(repeats, depth), name=f"stage{stage}_c3", shortcut=True)
    return keras.Model(inputs, x, name=f"cspdarknet-{variant}")
