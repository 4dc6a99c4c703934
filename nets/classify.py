"""ImageNet classification with a backbone's pretrained classifier: proof that its weights and preprocessing are
right (a cat photo must come out as a cat)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from nets.backbones import build_full_network, parse_backbone_name
from nets.efficientnet import LITE_SCALING, SCALING
from nets.lite_weights import load_lite_weights
from nets.pretrained import efficientnet_application, keras_application_model, with_top

CROP_FRACTION = 224 / (224 + 32)  # the reference evaluation's centre crop


def classifier(backbone: str, weights: str) -> tuple[keras.Model, int]:
    """The backbone with its ImageNet classifier and `weights`, and its input resolution."""
    spec = parse_backbone_name(backbone)
    if spec.family == "efficientnet-lite":
        resolution = LITE_SCALING[int(spec.variant)].resolution
        model = build_full_network(spec, (resolution, resolution, 3), include_top=True, bn_momentum=0.99)
        load_lite_weights(model, int(spec.variant), weights)
        return model, resolution
    if spec.family == "efficientnet":
        resolution = SCALING[int(spec.variant)].resolution
        application = with_top(efficientnet_application(int(spec.variant)))
        return keras_application_model(application, (resolution, resolution, 3), weights, include_top=True), resolution
    raise ValueError(f"{backbone}: classification needs a family with published ImageNet weights "
                     f"(efficientnet-b*, efficientnet-lite*)")


def centre_crop(image_rgb: np.ndarray, resolution: int) -> tf.Tensor:
    """The central square (`CROP_FRACTION` of the shorter side) resized to `resolution`, as float 0–255."""
    height, width = image_rgb.shape[:2]
    side = int(round(min(height, width) * CROP_FRACTION))
    top, left = (height - side) // 2, (width - side) // 2
    crop = tf.cast(image_rgb[top:top + side, left:left + side], tf.float32)
    return tf.image.resize(crop, (resolution, resolution), method="bicubic")


IMAGENET_CLASSES = Path(__file__).resolve().parents[1] / "model_data" / "imagenet_classes.txt"


def class_names() -> list[str]:
    """ImageNet-1k's class names in the classifiers' output order (the synsets sorted, as Keras' class index file
    has them), from `model_data/imagenet_classes.txt` (`<synset> <name>` a line): no download."""
    return [line.split(" ", 1)[1] for line in IMAGENET_CLASSES.read_text(encoding="utf-8").splitlines()]


def imagenet_top5(image_rgb: np.ndarray, backbone: str, weights: str) -> list[tuple[int, str, float]]:
    """(class id, name, probability) of the five most probable ImageNet classes of an RGB uint8 image."""
    model, resolution = classifier(backbone, weights)
    probabilities = model(centre_crop(image_rgb, resolution)[None], training=False).numpy()[0]
    top = np.argsort(probabilities)[::-1][:5]
    names = class_names()
    return [(int(i), names[i], float(probabilities[i])) for i in top]
