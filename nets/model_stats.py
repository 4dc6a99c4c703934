"""Parameters and FLOPs of a Keras model, split into the detector's parts (backbone, neck, head).

FLOPs are 2 × multiply-adds of the convolution and dense layers, counted from their output shapes (the
convention of Ultralytics' GFLOPs); BatchNorm, activations, pooling and element-wise ops are not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np


def layer_flops(layer: keras.layers.Layer) -> int:
    """2 × multiply-adds of one Conv2D / DepthwiseConv2D / Dense layer for one image; 0 for any other layer."""
    if isinstance(layer, keras.Model):
        return model_flops(layer)
    output_shape = layer.output.shape
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return 2 * output_shape[1] * output_shape[2] * kh * kw * output_shape[3]
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        channels_in = layer.input.shape[-1] // layer.groups
        return 2 * output_shape[1] * output_shape[2] * kh * kw * channels_in * output_shape[3]
    if isinstance(layer, keras.layers.Dense):
        return 2 * layer.input.shape[-1] * output_shape[-1] * math.prod(output_shape[1:-1])
    return 0


def parameters(model: keras.Model | keras.layers.Layer) -> int:
    """Element count of every weight but BatchNorm's running statistics, frozen or not: what PyTorch reports as a
    model's parameters (running statistics are buffers there; Keras' `count_params` counts them too). Frozen
    weights count: a fine-tuned detector saved with its backbone's BatchNorm frozen has the parameters it had."""
    statistics = {id(variable) for layer in nested_layers(model) if isinstance(layer, keras.layers.BatchNormalization)
                  for variable in (layer.moving_mean, layer.moving_variance)}
    return sum(int(np.prod(weight.shape)) for weight in model.weights if id(weight) not in statistics)


def nested_layers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """`layer` and every layer inside it, at any depth (a nested backbone's layers included)."""
    return [layer] + [inner for child in getattr(layer, "layers", []) for inner in nested_layers(child)]


def model_flops(model: keras.Model) -> int:
    """FLOPs of one forward pass of one image (nested models included); needs static spatial shapes."""
    return sum(layer_flops(layer) for layer in model.layers)


@dataclass(frozen=True)
class PartStats:
    name: str
    parameters: int
    flops: int


def detector_parts(model: keras.Model) -> list[PartStats]:
    """Backbone (the nested `backbone` model), neck (`neck_*` layers), head (`head_*` and outputs), and total."""
    backbone = model.get_layer("backbone")
    neck = [layer for layer in model.layers if layer.name.startswith("neck_")]
    head = [layer for layer in model.layers if layer is not backbone and layer not in neck]
    parts = [
        PartStats("backbone", backbone.count_params(), model_flops(backbone)),
        PartStats("neck", sum(layer.count_params() for layer in neck), sum(layer_flops(layer) for layer in neck)),
        PartStats("head", sum(layer.count_params() for layer in head), sum(layer_flops(layer) for layer in head)),
    ]
    return parts + [PartStats("total", model.count_params(), model_flops(model))]
