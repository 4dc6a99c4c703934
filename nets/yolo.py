"""The assembled detector: image → backbone → neck → head → raw outputs per stride."""

from __future__ import annotations

import re

import keras

from nets.backbones import build_backbone
from nets.head import init_head_biases, yolo_head
from nets.necks import build_neck


def backbone_phi(backbone: str) -> int:
    """The compound-scaling index of a backbone name (0 for names without one)."""
    match = re.search(r"-b(\d)$", backbone)
    return int(match.group(1)) if match else 0


def build_yolo(
    backbone: str,
    neck: str,
    num_classes: int,
    input_shape: tuple[int, int, int] = (416, 416, 3),
    anchors_per_scale: int = 3,
    backbone_weights: str | None = None,
    neck_width: float | None = None,
) -> keras.Model:
    """Build the detector as a functional model with outputs [p3, p4, p5], each (B, H/s, W/s, A, 5 + C).

    Example:
        >>> model = build_yolo("efficientnet-b0", "yolov3", num_classes=2, input_shape=(64, 64, 3))
        >>> [tuple(o.shape) for o in model.outputs]
        [(None, 8, 8, 3, 7), (None, 4, 4, 3, 7), (None, 2, 2, 3, 7)]
    """
    height, width, _ = input_shape
    if height % 32 or width % 32:
        raise ValueError(f"input size must be a multiple of 32, got {height}x{width}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    images = keras.Input(shape=input_shape, name="images")
    features = build_backbone(backbone, input_shape=input_shape, weights=backbone_weights)(images)
    fused = build_neck(neck, list(features), phi=backbone_phi(backbone), width=neck_width)
    outputs = yolo_head(fused, num_classes, anchors_per_scale)
    model = keras.Model(images, outputs, name=f"{backbone}-{neck}")
    init_head_biases(model, num_classes, input_size=max(height, width))
    return model


def freeze_backbone(model: keras.Model, frozen: bool = True) -> None:
    """Freeze (or unfreeze) exactly the backbone, found by name; its BatchNorm layers then run in inference mode."""
    model.get_layer("backbone").trainable = not frozen
