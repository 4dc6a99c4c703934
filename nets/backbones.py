"""Backbone registry: a name → a `keras.Model` named "backbone" with outputs [stride 8, stride 16, stride 32]."""

from __future__ import annotations

import re

import keras

from nets.efficientnet import SCALING, build_efficientnet
from nets.pretrained import copy_weights_by_name, keras_efficientnet

# The stride-8/16/32 maps of EfficientNet are the ends of stages 3, 5 and 7 (found by name, never by index).
EFFICIENTNET_FEATURE_STAGES = (3, 5, 7)
# Detection training is short next to ImageNet's; BatchNorm statistics that follow faster keep evaluation during
# training honest (YOLOv5 uses 0.97 as well). Weights are unaffected.
DETECTION_BN_MOMENTUM = 0.97


def backbone_names() -> list[str]:
    """Every backbone name `build_backbone` accepts."""
    return [f"efficientnet-b{phi}" for phi in range(len(SCALING))]


def last_layer_of_stage(model: keras.Model, stage: int) -> keras.layers.Layer:
    """The last layer whose name starts with `block{stage}` (the stage's output)."""
    pattern = re.compile(rf"block{stage}[a-z]+_")
    matches = [layer for layer in model.layers if pattern.match(layer.name)]
    if not matches:
        raise ValueError(f"{model.name} has no layer named block{stage}*")
    return matches[-1]


def build_backbone(
    name: str,
    input_shape: tuple[int | None, int | None, int] = (None, None, 3),
    weights: str | None = None,
) -> keras.Model:
    """Build a backbone by name and return its three feature maps, stride 8 first.

    Args:
        name: one of `backbone_names()`, e.g. "efficientnet-b0".
        input_shape: (H, W, 3) of 0–255 pixels.
        weights: None (random init), "imagenet" (`keras.applications`' download and cache), or a Keras weights
            file of `keras.applications.EfficientNetB{phi}(include_top=False)`; copied by layer name, and any
            layer left unloaded is an error. With "imagenet" the model gets the extra `Rescaling` (1/sqrt(std))
            that Keras inserts for those weights, so the pretrained features come out right.
    """
    match = re.fullmatch(r"efficientnet-b(\d)", name)
    if not match or int(match.group(1)) >= len(SCALING):
        raise ValueError(f"unknown backbone {name!r}; expected one of {backbone_names()}")
    phi = int(match.group(1))
    full = build_efficientnet(phi, input_shape=input_shape, imagenet_rescaling=weights == "imagenet",
                              bn_momentum=DETECTION_BN_MOMENTUM)
    if weights is not None:
        copy_weights_by_name(keras_efficientnet(phi, input_shape, weights), full)
    outputs = [last_layer_of_stage(full, stage).output for stage in EFFICIENTNET_FEATURE_STAGES]
    return keras.Model(full.input, outputs, name="backbone")
