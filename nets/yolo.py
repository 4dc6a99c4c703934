"""The assembled detector: image → backbone → neck → head → raw outputs per stride."""

from __future__ import annotations

import keras

from nets.backbones import build_backbone, parse_backbone_name
from nets.head import decoupled_head, init_decoupled_head_biases, init_head_biases, yolo_head
from nets.model_stats import nested_layers
from nets.necks import build_neck
from utils.ops import levels
from utils.ops.coding import DEFAULT_REG_MAX

# The anchor head each neck was published with: YOLOv3's widens each level with a 3×3 conv; YOLOv5's predicts
# straight from the neck; YOLOv7-tiny's too (its neck ends in 3×3 convs), with YOLOR's implicit layers (IDetect).
ANCHOR_HEAD_OF_NECK = {"yolov3": {"hidden_conv": True}, "yolov5": {"hidden_conv": False},
                       "yolov7-tiny": {"hidden_conv": False, "implicit": True}}
HEADS = ("anchor", "decoupled")


def build_yolo(
    backbone: str,
    neck: str,
    num_classes: int,
    input_shape: tuple[int, int, int] = (416, 416, 3),
    backbone_weights: str | None = None,
    neck_width: float | None = None,
    neck_depth: float | None = None,
    head: str = "anchor",
    reg_max: int = DEFAULT_REG_MAX,
    prior_size: int = 416,
) -> keras.Model:
    """Build the detector as a functional model with outputs [p3, p4, p5]: with the anchor head each
    (B, H/s, W/s, A, 5 + C), with the decoupled head each (B, H/s, W/s, 4 · reg_max + C).

    `input_shape` may leave height and width None: one network for inputs of any size (multiples of 32; progressive
    and multi-scale training), its head's priors set for inputs of `prior_size`.

    Example:
        >>> model = build_yolo("efficientnet-b0", "yolov3", num_classes=2, input_shape=(64, 64, 3))
        >>> [tuple(o.shape) for o in model.outputs]
        [(None, 8, 8, 3, 7), (None, 4, 4, 3, 7), (None, 2, 2, 3, 7)]
    """
    height, width, _ = input_shape
    if any(side is not None and side % levels.max_stride() for side in (height, width)):
        raise ValueError(f"input size must be a multiple of {levels.max_stride()}, got {height}x{width}")
    if neck not in ANCHOR_HEAD_OF_NECK:
        raise ValueError(f"unknown neck {neck!r}; expected one of {sorted(ANCHOR_HEAD_OF_NECK)}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; expected one of {HEADS}")
    images = keras.Input(shape=input_shape, name="images")
    features = build_backbone(backbone, input_shape=input_shape, weights=backbone_weights)(images)
    fused = build_neck(neck, list(features), phi=parse_backbone_name(backbone).scale_index, width=neck_width,
                       depth=neck_depth)
    if head == "decoupled":
        model = keras.Model(images, decoupled_head(fused, num_classes, reg_max), name=f"{backbone}-{neck}-decoupled")
        init_decoupled_head_biases(model, num_classes)
        return model
    outputs = yolo_head(fused, num_classes, **ANCHOR_HEAD_OF_NECK[neck])
    model = keras.Model(images, outputs, name=f"{backbone}-{neck}")
    init_head_biases(model, num_classes, input_size=max(height or prior_size, width or prior_size))
    return model


def freeze_backbone(model: keras.Model, frozen: bool = True, batchnorm_frozen: bool = False) -> None:
    """Freeze (or unfreeze) exactly the backbone, found by name; its BatchNorm layers then run in inference mode.
    With `batchnorm_frozen`, an unfrozen backbone keeps its BatchNorm layers frozen: pretrained statistics and
    scale/offset fixed, inference mode (small batches give noisy statistics)."""
    backbone = model.get_layer("backbone")
    backbone.trainable = not frozen
    if not frozen and batchnorm_frozen:
        for layer in nested_layers(backbone):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
