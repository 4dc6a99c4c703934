"""tf.data input pipeline: annotation lines → (images (B, H, W, 3) 0–255 float32, boxes (B, max_boxes, 5)).

One readable chain: list → shuffle → per-element seeds → parallel read/decode/augment → batch → prefetch.
Randomness is stateless and seeded per element, so `seed` fixes every batch and augmentation.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from utils.annotations import Annotation
from utils.bbox import boxes_to_letterbox, letterbox_image, letterbox_params

AUTOTUNE = tf.data.AUTOTUNE
FILL_VALUE = 128.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time geometric augmentation; validation uses a plain letterbox."""

    scale_min: float = 0.5
    scale_max: float = 1.5
    aspect_jitter: float = 0.3
    flip_probability: float = 0.5
    min_box_size: float = 2.0


def existing_annotations(annotations: list[Annotation]) -> tuple[list[Annotation], list[str]]:
    """Split off annotations whose image file is missing (a cheap `stat`, done once before the pipeline)."""
    kept, missing = [], []
    for annotation in annotations:
        (kept if os.path.isfile(annotation.image_path) else missing).append(annotation)
    return kept, [a.image_path for a in missing]


def annotations_to_tensors(annotations: list[Annotation]) -> tuple[tf.Tensor, tf.RaggedTensor]:
    """Paths (N,) and ragged boxes (N, None, 5)."""
    paths = tf.constant([a.image_path for a in annotations])
    lengths = [len(a.boxes) for a in annotations]
    flat = np.concatenate([a.boxes for a in annotations], axis=0) if annotations else np.zeros((0, 5), np.float32)
    boxes = tf.RaggedTensor.from_row_lengths(tf.constant(flat.reshape(-1, 5), tf.float32), lengths)
    return paths, boxes


def decode_image(path: tf.Tensor) -> tf.Tensor:
    """Read and decode a JPEG/PNG/BMP/GIF file to (H, W, 3) uint8."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def pad_boxes(boxes: tf.Tensor, max_boxes: int) -> tf.Tensor:
    """(N, 5) → (max_boxes, 5), padding rows −1 (extra boxes beyond `max_boxes` are cut)."""
    boxes = boxes[:max_boxes]
    padded = tf.pad(boxes, [[0, max_boxes - tf.shape(boxes)[0]], [0, 0]], constant_values=-1.0)
    padded.set_shape([max_boxes, 5])
    return padded


def clip_and_filter_boxes(boxes: tf.Tensor, input_hw: tuple[int, int], min_size: float) -> tf.Tensor:
    """Clip (N, 5) boxes to the canvas and drop those narrower or shorter than `min_size` pixels."""
    limits = tf.constant([input_hw[1], input_hw[0], input_hw[1], input_hw[0]], tf.float32)
    corners = tf.clip_by_value(boxes[:, :4], 0.0, limits)
    boxes = tf.concat([corners, boxes[:, 4:]], axis=-1)
    keep = (corners[:, 2] - corners[:, 0] >= min_size) & (corners[:, 3] - corners[:, 1] >= min_size)
    return tf.boolean_mask(boxes, keep)


def letterbox_sample(image: tf.Tensor, boxes: tf.Tensor, input_hw: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """Validation transform: fit the image centred on the canvas, boxes moved with it."""
    scale, offset = letterbox_params(tf.shape(image)[:2], input_hw)
    moved = boxes_to_letterbox(boxes[:, :4], scale, offset)
    return letterbox_image(image, input_hw, FILL_VALUE), tf.concat([moved, boxes[:, 4:]], axis=-1)


def jitter_sample(
    image: tf.Tensor, boxes: tf.Tensor, input_hw: tuple[int, int], config: AugmentConfig, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Training transform: random scale and aspect ratio, random placement (cropping if larger), random flip."""
    seeds = tf.random.split(seed, 6)
    height, width = input_hw
    image_hw = tf.cast(tf.shape(image)[:2], tf.float32)
    jitter = config.aspect_jitter
    stretch = tf.random.stateless_uniform([], seeds[0], 1 - jitter, 1 + jitter) / tf.random.stateless_uniform(
        [], seeds[1], 1 - jitter, 1 + jitter)
    aspect = image_hw[1] / image_hw[0] * stretch
    scale = tf.random.stateless_uniform([], seeds[2], config.scale_min, config.scale_max)
    # Scale the longer side to `scale` × the canvas, the other side by the jittered aspect ratio.
    fit = tf.minimum(width / aspect, float(height))
    new_h = tf.maximum(tf.cast(tf.round(fit * scale), tf.int32), 1)
    new_w = tf.maximum(tf.cast(tf.round(fit * scale * aspect), tf.int32), 1)
    resized = tf.image.resize(tf.cast(image, tf.float32), tf.stack([new_h, new_w]))

    def random_offset(new: tf.Tensor, size: int, stream: tf.Tensor) -> tf.Tensor:
        span = size - new
        low, high = tf.minimum(span, 0), tf.maximum(span, 0)
        return tf.random.stateless_uniform([], stream, low, high + 1, dtype=tf.int32)

    dx, dy = random_offset(new_w, width, seeds[3]), random_offset(new_h, height, seeds[4])
    src_x, src_y = tf.maximum(-dx, 0), tf.maximum(-dy, 0)
    dst_x, dst_y = tf.maximum(dx, 0), tf.maximum(dy, 0)
    copy_w = tf.minimum(new_w - src_x, width - dst_x)
    copy_h = tf.minimum(new_h - src_y, height - dst_y)
    patch = resized[src_y:src_y + copy_h, src_x:src_x + copy_w]
    canvas = tf.image.pad_to_bounding_box(patch - FILL_VALUE, dst_y, dst_x, height, width) + FILL_VALUE

    factors = tf.stack([tf.cast(new_w, tf.float32) / image_hw[1], tf.cast(new_h, tf.float32) / image_hw[0]])
    offsets = tf.cast(tf.stack([dx, dy]), tf.float32)
    corners = boxes[:, :4] * tf.tile(factors, [2]) + tf.tile(offsets, [2])

    flip = tf.random.stateless_uniform([], seeds[5]) < config.flip_probability
    canvas = tf.cond(flip, lambda: tf.reverse(canvas, axis=[1]), lambda: canvas)
    corners = tf.cond(
        flip,
        lambda: tf.stack([width - corners[:, 2], corners[:, 1], width - corners[:, 0], corners[:, 3]], axis=-1),
        lambda: corners,
    )
    return canvas, tf.concat([corners, boxes[:, 4:]], axis=-1)


def build_dataset(
    annotations: list[Annotation],
    input_hw: tuple[int, int],
    batch_size: int,
    training: bool,
    augment: AugmentConfig | None = None,
    seed: int = 0,
    max_boxes: int = 100,
) -> tf.data.Dataset:
    """Training or validation dataset of (images, boxes) batches.

    Missing image files are skipped with a warning naming them; an image that fails to decode is skipped by
    `ignore_errors` (tf.data logs its path), so one bad sample never stops training.
    """
    annotations, missing = existing_annotations(annotations)
    for path in missing:
        log.warning("skipping %s: image file not found", path)
    if not annotations:
        raise ValueError("no usable images in the annotation list")
    augment = augment or AugmentConfig()
    paths, boxes = annotations_to_tensors(annotations)
    dataset = tf.data.Dataset.from_tensor_slices((paths, boxes))
    if training:
        dataset = dataset.shuffle(len(annotations), seed=seed, reshuffle_each_iteration=True)
    # One independent seed pair per element, fresh every epoch but fixed by `seed`.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    dataset = tf.data.Dataset.zip(dataset, seeds)

    def load(sample: tuple[tf.Tensor, tf.RaggedTensor], element_seed: tf.Tensor):
        path, sample_boxes = sample
        image = decode_image(path)
        sample_boxes = sample_boxes.to_tensor() if isinstance(sample_boxes, tf.RaggedTensor) else sample_boxes
        if training:
            image, sample_boxes = jitter_sample(image, sample_boxes, input_hw, augment, element_seed)
        else:
            image, sample_boxes = letterbox_sample(image, sample_boxes, input_hw)
        sample_boxes = clip_and_filter_boxes(sample_boxes, input_hw, augment.min_box_size)
        image = tf.ensure_shape(image, [input_hw[0], input_hw[1], 3])
        return image, pad_boxes(sample_boxes, max_boxes)

    options = tf.data.Options()
    options.deterministic = True
    dataset = dataset.map(load, num_parallel_calls=AUTOTUNE).ignore_errors(log_warning=True)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    return dataset.prefetch(AUTOTUNE).with_options(options)


def build_inference_dataset(image_paths: list[str], input_hw: tuple[int, int], batch_size: int) -> tf.data.Dataset:
    """Letterboxed images for batched inference: (images, original (H, W), index in `image_paths`)."""

    def load(path: tf.Tensor, index: tf.Tensor):
        image = decode_image(path)
        return letterbox_image(image, input_hw, FILL_VALUE), tf.shape(image)[:2], index

    dataset = tf.data.Dataset.from_tensor_slices((tf.constant(image_paths), tf.range(len(image_paths))))
    return dataset.map(load, num_parallel_calls=AUTOTUNE).batch(batch_size).prefetch(AUTOTUNE)


def with_level_targets(dataset: tf.data.Dataset, levels: int = 3) -> tf.data.Dataset:
    """(images, boxes) → (images, (boxes,) × levels): each output's loss reads the same padded boxes."""
    return dataset.map(lambda images, boxes: (images, (boxes,) * levels))
