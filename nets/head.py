"""Detection heads.

The anchor head (YOLOv3/v5): per level an optional 3×3 conv (YOLOv3) and a 1×1 prediction conv, reshaped to
(H, W, A, 5 + C). YOLOv3 widens each level with a 3×3 conv to twice the neck's width before predicting; YOLOv5's
Detect predicts straight from the neck's C3 output (its neck is already wide), so `hidden_conv=False` there.

The decoupled head (YOLOv8): anchor-free, separate box and class branches per level, boxes as distributions over
`reg_max` distance bins (DFL); (H, W, 4 · reg_max + C).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers

from nets.layers import AnchorReshape, ImplicitAdd, ImplicitMultiply, conv_bn_act
from utils.ops import levels
from utils.ops.coding import DEFAULT_REG_MAX


def yolo_head(
    features: list[keras.KerasTensor], num_classes: int, name: str = "head",
    hidden_conv: bool = True, implicit: bool = False,
) -> list[keras.KerasTensor]:
    """Raw predictions per level: (B, H/s, W/s, A, 5 + C) = tx, ty, tw, th, objectness logit, class logits.
    `implicit`: YOLOv7's IDetect — a learned per-channel offset added to the input of the prediction conv and a
    learned per-output scale after it (`ImplicitAdd`, `ImplicitMultiply`)."""
    outputs = []
    anchors_per_scale = levels.ANCHORS_PER_LEVEL
    for feature, level in zip(features, levels.level_names(), strict=True):
        x = conv_bn_act(feature, 2 * feature.shape[-1], 3, name=f"{name}_{level}") if hidden_conv else feature
        if implicit:
            x = ImplicitAdd(name=f"{name}_{level}_implicit_add")(x)
        x = layers.Conv2D(anchors_per_scale * (5 + num_classes), 1, name=f"{name}_{level}_pred",
                          dtype="float32")(x)  # float32 logits under mixed precision too
        if implicit:
            x = ImplicitMultiply(name=f"{name}_{level}_implicit_multiply", dtype="float32")(x)
        outputs.append(AnchorReshape(anchors_per_scale, 5 + num_classes, name=level,
                                     dtype="float32")(x))  # (B, H/s, W/s, A, 5 + C)
    return outputs


def init_head_biases(model: keras.Model, num_classes: int, input_size: int, name: str = "head") -> None:
    """Start objectness and class logits at sensible priors so early training is not swamped by negatives.

    Objectness starts at about 8 objects per 640×640 image spread over a level's cells; classes at 0.6/C.
    """
    for level, stride in zip(levels.level_names(), levels.strides(), strict=True):
        layer = model.get_layer(f"{name}_{level}_pred")
        bias = np.zeros(layer.bias.shape, dtype="float32").reshape(-1, 5 + num_classes)
        cells = (input_size / stride) ** 2
        bias[:, 4] = math.log(8 / cells * (input_size / 640) ** 2 + 1e-9)
        bias[:, 5:] = math.log(0.6 / max(num_classes - 0.99, 0.01))
        layer.bias.assign(bias.reshape(-1))



def decoupled_head(
    features: list[keras.KerasTensor], num_classes: int, reg_max: int = DEFAULT_REG_MAX, name: str = "head",
) -> list[keras.KerasTensor]:
    """Anchor-free decoupled head (YOLOv8's Detect): per level a box branch (two 3×3 convs, then 4 × `reg_max`
    distance-bin logits) and a class branch (two 3×3 convs, then C class logits), concatenated to
    (B, H/s, W/s, 4 · reg_max + C). Branch widths follow YOLOv8: box max(16, c₃ / 4, 4 · reg_max), class
    max(c₃, min(C, 100)), c₃ the finest level's width."""
    finest = features[0].shape[-1]
    box_width = max(16, finest // 4, 4 * reg_max)
    class_width = max(finest, min(num_classes, 100))
    outputs = []
    for feature, level in zip(features, levels.level_names(), strict=True):
        box = conv_bn_act(feature, box_width, 3, name=f"{name}_{level}_box0")
        box = conv_bn_act(box, box_width, 3, name=f"{name}_{level}_box1")
        box = layers.Conv2D(4 * reg_max, 1, name=f"{name}_{level}_box_pred", dtype="float32")(box)
        cls = conv_bn_act(feature, class_width, 3, name=f"{name}_{level}_cls0")
        cls = conv_bn_act(cls, class_width, 3, name=f"{name}_{level}_cls1")
        cls = layers.Conv2D(num_classes, 1, name=f"{name}_{level}_cls_pred", dtype="float32")(cls)
        outputs.append(layers.Concatenate(name=level, dtype="float32")([box, cls]))  # (B, H/s, W/s, 4R + C)
    return outputs


def init_decoupled_head_biases(model: keras.Model, num_classes: int, name: str = "head") -> None:
    """YOLOv8's priors: box-bin logits 1.0; class logits at about 5 objects per 640×640 image over a level's cells."""
    for level, stride in zip(levels.level_names(), levels.strides(), strict=True):
        box = model.get_layer(f"{name}_{level}_box_pred")
        box.bias.assign(np.ones(box.bias.shape, "float32"))
        cls = model.get_layer(f"{name}_{level}_cls_pred")
        cls.bias.assign(np.full(cls.bias.shape, math.log(5 / num_classes / (640 / stride) ** 2), "float32"))
