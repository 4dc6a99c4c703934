"""Backbone registry: a name → a `keras.Model` named "backbone" with outputs [stride 8, stride 16, stride 32].

Names: `efficientnet-b0`…`-b7`, `efficientnet-lite0`…`-lite4`, `efficientnetv2-b0`…`-b3`, `-s`, `-m`, `-l`,
`shufflenetv2-x0.5`…`-x2.0` and the same with `-stemblock` (YOLOv5-face's StemBlock in place of the conv +
max-pool stem), and `cspdarknet-n`…`-x` (YOLOv5's own). Feature maps are the ends of stages, found by layer name,
never by index.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras

from nets.cspdarknet import MULTIPLES as CSPDARKNET_SIZES
from nets.cspdarknet import build_cspdarknet
from nets.efficientnet import LITE_SCALING, SCALING, build_efficientnet, build_efficientnet_lite
from nets.efficientnet_v2 import STAGES, VARIANTS, build_efficientnet_v2
from nets.lite_weights import load_lite_weights
from nets.pretrained import (
    copy_weights_by_name,
    efficientnet_application,
    efficientnet_v2_application,
    keras_application_model,
)
from nets.shufflenet_v2 import STAGE_CHANNELS, build_shufflenet_v2

# Detection training is short next to ImageNet's; BatchNorm statistics that follow faster keep evaluation during
# training honest (YOLOv5 uses 0.97 as well). Weights are unaffected.
DETECTION_BN_MOMENTUM = 0.97
# The EfficientNet phi of similar size to each V2 variant (by parameters and ImageNet accuracy).
V2_SCALE_INDEX = {"b0": 0, "b1": 1, "b2": 2, "b3": 3, "s": 4, "m": 6, "l": 7}
# The phi whose neck multiples are each CSPDarknet size's own (the neck tables follow YOLOv5's n/s/m/l/x by phi).
CSPDARKNET_SCALE_INDEX = {"n": 0, "s": 2, "m": 4, "l": 6, "x": 7}
# Families whose weights files are of our own model (no ImageNet weights published for them in Keras).
OWN_WEIGHTS_FAMILIES = ("shufflenetv2", "cspdarknet")


@dataclass(frozen=True)
class BackboneSpec:
    """A parsed backbone name: its family, variant and the stages whose ends are the stride-8/16/32 maps."""

    name: str
    family: str  # "efficientnet" | "efficientnet-lite" | "efficientnetv2" | "shufflenetv2" | "cspdarknet"
    variant: str  # "0".."7" | "0".."4" | "b0".."l" | "0.5".."2.0" | "n".."x"
    stem: str = "plain"

    @property
    def feature_stages(self) -> tuple[int, int, int]:
        if self.family in ("efficientnet", "efficientnet-lite"):
            return (3, 5, 7)
        if self.family == "efficientnetv2":
            return (3, 5, len(STAGES[VARIANTS[self.variant].table]))
        return (2, 3, 4)

    @property
    def scale_index(self) -> int:
        """The EfficientNet phi of comparable size, which picks the neck's default width and depth."""
        if self.family in ("efficientnet", "efficientnet-lite"):  # Lite0–4 scale as B0–B4
            return int(self.variant)
        if self.family == "efficientnetv2":
            return V2_SCALE_INDEX[self.variant]
        if self.family == "cspdarknet":
            return CSPDARKNET_SCALE_INDEX[self.variant]
        return 0


def backbone_names() -> list[str]:
    """Every backbone name `build_backbone` accepts."""
    return (
        [f"efficientnet-b{phi}" for phi in range(len(SCALING))]
        + [f"efficientnet-lite{variant}" for variant in range(len(LITE_SCALING))]
        + [f"efficientnetv2-{variant}" for variant in VARIANTS]
        + [f"shufflenetv2-x{width}{suffix}" for suffix in ("", "-stemblock") for width in STAGE_CHANNELS]
        + [f"cspdarknet-{size}" for size in CSPDARKNET_SIZES]
    )


def parse_backbone_name(name: str) -> BackboneSpec:
    """Split a backbone name into family and variant; unknown names are an error listing the known ones."""
    if name not in backbone_names():
        raise ValueError(f"unknown backbone {name!r}; expected one of {backbone_names()}")
    family, _, variant = name.partition("-")
    if family == "efficientnet" and variant.startswith("lite"):
        return BackboneSpec(name, "efficientnet-lite", variant.removeprefix("lite"))
    if family == "efficientnet":
        return BackboneSpec(name, family, variant[1:])
    if family in ("efficientnetv2", "cspdarknet"):
        return BackboneSpec(name, family, variant)
    width, _, stem = variant[1:].partition("-")
    return BackboneSpec(name, family, width, stem or "plain")


def last_layer_of_stage(model: keras.Model, stage: int) -> keras.layers.Layer:
    """The last layer of stage `stage`: named `block{stage}{letter}_…` (EfficientNet) or `stage{stage}_…`."""
    pattern = re.compile(rf"(block{stage}[a-z]+|stage{stage})_")
    matches = [layer for layer in model.layers if pattern.match(layer.name)]
    if not matches:
        raise ValueError(f"{model.name} has no layer of stage {stage}")
    return matches[-1]


def build_full_network(spec: BackboneSpec, input_shape: tuple, imagenet_rescaling: bool = False,
                       include_top: bool = False, bn_momentum: float = DETECTION_BN_MOMENTUM) -> keras.Model:
    """The whole feature extractor of a backbone (up to its top conv; with `include_top`, the ImageNet classifier
    of the EfficientNet families), randomly initialised."""
    if spec.family == "efficientnet":
        return build_efficientnet(int(spec.variant), input_shape=input_shape, imagenet_rescaling=imagenet_rescaling,
                                  bn_momentum=bn_momentum, include_top=include_top)
    if spec.family == "efficientnet-lite":
        return build_efficientnet_lite(int(spec.variant), input_shape=input_shape, bn_momentum=bn_momentum,
                                       include_top=include_top)
    if include_top:
        raise ValueError(f"{spec.name}: no ImageNet classifier is built for this family")
    if spec.family == "efficientnetv2":
        return build_efficientnet_v2(spec.variant, input_shape=input_shape, bn_momentum=bn_momentum)
    if spec.family == "cspdarknet":
        return build_cspdarknet(spec.variant, input_shape=input_shape)
    return build_shufflenet_v2(float(spec.variant), input_shape=input_shape, stem=spec.stem, bn_momentum=bn_momentum)


def load_backbone_weights(spec: BackboneSpec, full: keras.Model, input_shape: tuple, weights: str) -> None:
    """Fill `full` with pretrained weights, every weighted layer (see `build_backbone`).

    EfficientNet V1/V2 copy by name from the `keras.applications` model; EfficientNet-Lite maps the published
    checkpoints by name (`nets.lite_weights`); ShuffleNetV2 and CSPDarknet files are of our own model, so they load
    straight into it, with Keras' warning about layers the file lacks turned into an error.
    """
    if spec.family == "efficientnet-lite":
        load_lite_weights(full, int(spec.variant), weights)
        return
    if spec.family not in OWN_WEIGHTS_FAMILIES:
        application = (efficientnet_application(int(spec.variant)) if spec.family == "efficientnet"
                       else efficientnet_v2_application(spec.variant))
        copy_weights_by_name(keras_application_model(application, input_shape, weights), full)
        return
    if weights == "imagenet":
        raise ValueError(
            f"{spec.name}: no ImageNet weights are published for this backbone in Keras; pass "
            f"--backbone-weights PATH to a weights file of this backbone (its full network saved with "
            f"save_weights), or --backbone-weights none to train from scratch")
    if not Path(weights).is_file():
        raise FileNotFoundError(f"{weights}: backbone weights file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # Keras only warns when it skips layers the file lacks
            full.load_weights(weights)
    except Exception as error:  # Keras raises ValueError/KeyError/OSError variously for a mismatched file
        raise ValueError(f"{weights}: not weights of {spec.name} ({type(error).__name__}: {error})") from None


def build_backbone(
    name: str,
    input_shape: tuple[int | None, int | None, int] = (None, None, 3),
    weights: str | None = None,
) -> keras.Model:
    """Build a backbone by name and return its three feature maps, stride 8 first.

    Args:
        name: one of `backbone_names()`, e.g. "efficientnet-b0".
        input_shape: (H, W, 3) of 0–255 pixels.
        weights: None (random init), "imagenet" (`keras.applications`' download and cache; EfficientNet V1/V2),
            or a weights file: for EfficientNet V1/V2 one of the `keras.applications` model with
            `include_top=False`, for ShuffleNetV2 one saved from `build_shufflenet_v2(include_top=False)`.
            Copied by layer name; any layer left unloaded is an error. V1 with "imagenet" gets the extra
            `Rescaling` (1/sqrt(std)) that Keras inserts for those weights, so the pretrained features come out right.
    """
    spec = parse_backbone_name(name)
    full = build_full_network(spec, input_shape, imagenet_rescaling=weights == "imagenet")
    if weights is not None:
        load_backbone_weights(spec, full, input_shape, weights)
    outputs = [last_layer_of_stage(full, stage).output for stage in spec.feature_stages]
    return keras.Model(full.input, outputs, name="backbone")
