"""Training at more than one input size: EfficientNetV2's progressive learning and YOLOv5's multi-scale batches.

Progressive learning splits a run into stages of equal length. Stage i of n (t = i / (n − 1)) trains at an input
size from the smallest (`--progressive-min-size`) up to `--input-size` in steps of 32, with regularisation grown
with it from weak to the configured strength: mosaic and mixup probabilities from 0, the random zoom range from
half its width, drop connect (EfficientNet backbones) from half its rate. Stages are fractions of the run's
planned epochs; under a time budget the plan moves, and the stage reached only ever moves forward.

Multi-scale training resizes each batch to a random size between half and 1.5 × `--input-size`, a multiple of 32,
drawn from the seed and the batch's position, with the boxes scaled along.

The network takes any input size; the losses read the grid from each batch. Evaluation is always at
`--input-size`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import keras
import tensorflow as tf

from utils.config.run_config import AugmentConfig, TrainConfig
from utils.ops import levels

MULTI_SCALE_RANGE = (0.5, 1.5)  # YOLOv5's --multi-scale
WEAKEST = 0.5  # the first stage's share of the zoom range and the drop-connect rate


@dataclass(frozen=True)
class Stage:
    index: int
    input_size: int
    augment: AugmentConfig
    drop_connect_scale: float  # of each drop-connect layer's own rate


def round_to_stride(size: float) -> int:
    """The nearest multiple of the coarsest stride (halves up), at least one stride."""
    stride = levels.max_stride()
    return max(stride, math.floor(size / stride + 0.5) * stride)


def smallest_size(config: TrainConfig) -> int:
    """The first stage's input size: `progressive_min_size`, else half the input size (a multiple of 32)."""
    return config.progressive_min_size or round_to_stride(config.model.input_size / 2)


def weakened(augment: AugmentConfig, t: float) -> AugmentConfig:
    """The augmentation at strength t (0 weakest, 1 as configured)."""
    share = WEAKEST + (1 - WEAKEST) * t
    return dataclasses.replace(augment, mosaic=augment.mosaic * t, mixup=augment.mixup * t,
                               scale_min=1 - (1 - augment.scale_min) * share,
                               scale_max=1 + (augment.scale_max - 1) * share)


def training_stages(config: TrainConfig) -> list[Stage]:
    """The run's stages: one at `--input-size` with the configured augmentation, or the progressive stages."""
    size = config.model.input_size
    if not config.progressive:
        return [Stage(0, size, config.augment, 1.0)]
    count = config.progressive_stages
    low = smallest_size(config)
    stages = []
    for index in range(count):
        t = index / (count - 1)
        stages.append(Stage(index, round_to_stride(low + t * (size - low)), weakened(config.augment, t),
                            WEAKEST + (1 - WEAKEST) * t))
    return stages


def stage_for(stages: list[Stage], epoch: int, end_epoch: int, reached: int = 0) -> int:
    """The stage epoch `epoch` trains in when the run ends at `end_epoch`: equal fractions of the run, never before
    `reached`."""
    by_progress = min(len(stages) - 1, math.floor(epoch * len(stages) / max(end_epoch, 1)))
    return max(reached, by_progress)


def stage_end(stages: list[Stage], index: int, end_epoch: int) -> int:
    """The first epoch after stage `index` in a run ending at `end_epoch` (at least one epoch a stage)."""
    if index == len(stages) - 1:
        return end_epoch
    return max(1, math.ceil((index + 1) * end_epoch / len(stages)))


def multi_scale_sizes(input_size: int) -> list[int]:
    """Every batch size multi-scale training draws from: multiples of 32 from half to 1.5 × the input size."""
    low, high = (round_to_stride(input_size * f) for f in MULTI_SCALE_RANGE)
    return list(range(low, high + 1, levels.max_stride()))


def multi_scale_batches(dataset: tf.data.Dataset, input_size: int, seed: int, first_batch: int = 0
                        ) -> tf.data.Dataset:
    """Each (images, boxes) batch resized to a size of `multi_scale_sizes`, drawn from (`seed`, batch number):
    images bilinearly, boxes scaled by the same factor (padding rows stay −1)."""
    sizes = tf.constant(multi_scale_sizes(input_size), tf.int32)

    def resize(number: tf.Tensor, batch: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        images, boxes = batch
        pick = tf.random.stateless_uniform([], tf.stack([tf.constant(seed, tf.int64), number]), 0,
                                           tf.shape(sizes)[0], dtype=tf.int32)
        size = sizes[pick]
        factor = tf.cast(size, tf.float32) / input_size
        resized = tf.image.resize(images, tf.stack([size, size]), method="bilinear")
        valid = boxes[..., 4:5] >= 0
        scaled = tf.concat([tf.where(valid, boxes[..., :4] * factor, boxes[..., :4]), boxes[..., 4:]], axis=-1)
        return resized, scaled

    numbered = dataset.enumerate(start=first_batch)
    return numbered.map(tf.autograph.experimental.do_not_convert(resize), num_parallel_calls=tf.data.AUTOTUNE)


def set_drop_connect(model: keras.Model, scale: float) -> int:
    """Scale every drop-connect layer's rate (EfficientNet's stochastic depth: the backbone's `*_drop` Dropout
    layers) to `scale` × its built rate; takes effect at the next compile. Returns how many layers it set."""
    changed = 0
    for layer in _nested_layers(model):
        if isinstance(layer, keras.layers.Dropout) and layer.name.endswith("drop"):
            if not hasattr(layer, "built_rate"):
                layer.built_rate = layer.rate
            layer.rate = layer.built_rate * scale
            changed += 1
    return changed


def _nested_layers(model: keras.Model) -> list[keras.layers.Layer]:
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found += _nested_layers(layer)
    return found
