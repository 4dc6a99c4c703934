"""ImageNet classification with a backbone's pretrained classifier: proof that its weights and preprocessing are
right (a cat photo must come out as a cat)."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from nets.backbones import build_full_network, parse_backbone_name
from nets.efficientnet import LITE_SCALING, SCALING
from nets.lite_weights import load_lite_weights
from nets.pretrained import efficientnet_application

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
        constructor = getattr(keras.applications, efficientnet_application(int(spec.variant)).constructor)
        return constructor(include_top=True, weights=weights, input_shape=(resolution, resolution, 3)), resolution
    raise ValueError(f"{backbone}: classification needs a family with published ImageNet weights "
                     f"(efficientnet-b*, efficientnet-lite*)")


def centre_crop(image_rgb: np.ndarray, resolution: int) -> tf.Tensor:
    """The central square (`CROP_FRACTION` of the shorter side) resized to `resolution`, as float 0–255."""
    height, width = image_rgb.shape[:2]
    side = int(round(min(height, width) * CROP_FRACTION))
    top, left = (height - side) // 2, (width - side) // 2
    crop = tf.cast(image_rgb[top:top + side, left:left + side], tf.float32)
    return tf.image.resize(crop, (resolution, resolution), method="bicubic")


def class_names() -> list[str] | None:
    """ImageNet's class names from Keras' class index file (downloaded once into its cache), or None when it cannot
    be had (offline)."""
    try:
        path = keras.utils.get_file("imagenet_class_index.json", keras.applications.imagenet_utils.CLASS_INDEX_PATH,
                                    cache_subdir="models")
        index = json.loads(Path(path).read_text(encoding="utf-8"))
    except Exception:  # Keras' get_file wraps network failures in a plain Exception
        return None
    return [index[str(i)][1] for i in range(1000)]


def imagenet_top5(image_rgb: np.ndarray, backbone: str, weights: str) -> list[tuple[int, str, float]]:
    """(class id, name or "", probability) of the five most probable ImageNet classes of an RGB uint8 image."""
    model, resolution = classifier(backbone, weights)
    probabilities = model(centre_crop(image_rgb, resolution)[None], training=False).numpy()[0]
    top = np.argsort(probabilities)[::-1][:5]
    names = class_names()
    return [(int(i), names[i] if names else "", float(probabilities[i])) for i in top]
