"""Pretrained backbone weights: take them from `keras.applications` (its download and cache) and copy by name.

Every weighted layer of our model must find a same-named, same-shaped layer in the source; anything left unloaded
is an error that lists the layers, so nothing is skipped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import keras

KERAS_CACHE = Path("~/.keras/models")


@dataclass(frozen=True)
class KerasApplication:
    """Where `keras.applications` publishes one model's no-top ImageNet weights."""

    constructor: str
    file_name: str
    url: str


def efficientnet_application(phi: int) -> KerasApplication:
    file_name = f"efficientnetb{phi}_notop.h5"
    return KerasApplication(f"EfficientNetB{phi}", file_name, f"https://storage.googleapis.com/keras-applications/"
                                                              f"{file_name}")


def efficientnet_v2_application(variant: str) -> KerasApplication:
    file_name = f"efficientnetv2-{variant}_notop.h5"
    return KerasApplication(f"EfficientNetV2{variant.upper()}", file_name,
                            f"https://storage.googleapis.com/tensorflow/keras-applications/efficientnet_v2/{file_name}")


def keras_name(name: str) -> str:
    """Keras auto-names its unnamed preprocessing layers `rescaling_3`, `normalization_2`, …; ours are fixed."""
    return re.sub(r"^(rescaling|normalization)_\d+$", r"\1", name)


def with_top(application: KerasApplication) -> KerasApplication:
    """The same model's weights with its ImageNet classifier (Keras publishes them beside the no-top file)."""
    file_name = application.file_name.replace("_notop", "")
    return KerasApplication(application.constructor, file_name, application.url.replace("_notop", ""))


def keras_application_model(application: KerasApplication, input_shape: tuple, weights: str,
                            include_top: bool = False) -> keras.Model:
    """The `keras.applications` model (without its classifier, or with it and `application` `with_top`) with
    `weights` ("imagenet" or a file path).

    "imagenet" uses Keras' own download and cache; offline, the error names the file and where to put it.
    """
    constructor = getattr(keras.applications, application.constructor)
    if weights != "imagenet" and not Path(weights).is_file():
        raise FileNotFoundError(f"{weights}: backbone weights file not found")
    try:
        return constructor(include_top=include_top, weights=weights, input_shape=input_shape)
    except Exception as error:  # Keras' get_file wraps network failures in a plain Exception
        if weights != "imagenet":
            raise ValueError(f"{weights}: not {application.constructor} weights for keras.applications "
                             f"({error})") from None
        raise OSError(
            f"could not get the ImageNet weights {application.file_name} ({type(error).__name__}: {error}). "
            f"Offline, download {application.url} elsewhere and put it at {KERAS_CACHE / application.file_name}, "
            f"or pass the file with --backbone-weights PATH; --backbone-weights none trains from scratch instead"
        ) from None


def copy_weights_by_name(source: keras.Model, target: keras.Model) -> int:
    """Copy every weighted layer of `target` from the same-named layer of `source`.

    Returns:
        the number of layers copied.

    Raises:
        ValueError listing every target layer that found no same-named layer or whose weight shapes differ.
    """
    by_name = {keras_name(layer.name): layer for layer in source.layers}
    problems, copied = [], 0
    for layer in target.layers:
        if not layer.weights:
            continue
        match = by_name.get(keras_name(layer.name))
        if match is None:
            problems.append(f"{layer.name}: no layer of that name in {source.name}")
            continue
        shapes = [tuple(w.shape) for w in layer.weights]
        source_shapes = [tuple(w.shape) for w in match.weights]
        if shapes != source_shapes:
            problems.append(f"{layer.name}: shapes {shapes} != {source_shapes}")
            continue
        layer.set_weights(match.get_weights())
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()  # `call` reads tensors derived from the variables, not the variables
        copied += 1
    if problems:
        listed = "\n  ".join(problems[:20]) + (f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise ValueError(f"{len(problems)} backbone layers were left unloaded:\n  {listed}")
    return copied
