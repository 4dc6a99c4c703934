"""tf.data input pipeline: annotation lines → (images (B, H, W, 3) 0–255 float32, boxes (B, max_boxes, 5)).

Training is one readable chain over sample *indices*: shuffle → per-element seeds → parallel map (load one image
or four for a mosaic, a second view for mixup, random affine, HSV, flip; all graph ops, `utils/data/augment.py`) →
batch → prefetch. Images come from their files, or from a RAM cache filled once (`cache="ram"`). Randomness is
stateless and seeded per element, so `seed` fixes every batch and augmentation. Validation is a plain letterbox.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import tensorflow as tf

from utils.data.annotations import Annotation
from utils.data.augment import (
    FILL_VALUE,
    AugmentConfig,
    affine_matrix,
    hsv_jitter,
    mixup,
    mosaic,
    random_flip,
    warp_boxes,
    warp_image,
)
from utils.ops.letterbox import boxes_to_letterbox, letterbox_image, letterbox_params
from utils.data.images import decode_image, orientation_tensor

AUTOTUNE = tf.data.AUTOTUNE
# The transforms are graph ops already (tf.cond, tf.where; no Python control flow on tensors): AutoGraph's source
# conversion would only add seconds of tracing to every pipeline built.
graph_only = tf.autograph.experimental.do_not_convert
CACHE_MODES = ("none", "ram")
log = logging.getLogger(__name__)



def existing_annotations(annotations: list[Annotation]) -> tuple[list[Annotation], list[str]]:
    """Split off annotations whose image file is missing (a cheap `stat`, done once before the pipeline)."""
    kept, missing = [], []
    for annotation in annotations:
        (kept if os.path.isfile(annotation.image_path) else missing).append(annotation)
    return kept, [a.image_path for a in missing]


def annotations_to_tensors(annotations: list[Annotation]) -> tuple[tf.Tensor, tf.Tensor, tf.RaggedTensor]:
    """Paths (N,), EXIF orientations (N,) (read once here, from the file headers) and ragged boxes (N, None, 5)."""
    paths = [a.image_path for a in annotations]
    lengths = [len(a.boxes) for a in annotations]
    flat = np.concatenate([a.boxes for a in annotations], axis=0) if annotations else np.zeros((0, 5), np.float32)
    boxes = tf.RaggedTensor.from_row_lengths(tf.constant(flat.reshape(-1, 5), tf.float32), lengths)
    return tf.constant(paths, tf.string, shape=[len(paths)]), orientation_tensor(paths), boxes


def pad_boxes(boxes: tf.Tensor, max_boxes: int) -> tf.Tensor:
    """(N, 5) → (max_boxes, 5), padding rows −1 (extra boxes beyond `max_boxes` are cut)."""
    boxes = boxes[:max_boxes]
    padded = tf.pad(boxes, [[0, max_boxes - tf.shape(boxes)[0]], [0, 0]], constant_values=-1.0)
    padded.set_shape([max_boxes, 5])
    return padded


def valid_boxes(boxes: tf.Tensor) -> tf.Tensor:
    return tf.boolean_mask(boxes, boxes[:, 4] >= 0)


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


def fit_sample(image: tf.Tensor, boxes: tf.Tensor, input_hw: tuple[int, int], max_boxes: int
               ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Scale an image to fit inside input_hw (aspect kept), padded at the bottom/right to exactly input_hw.

    Returns:
        uint8 (H, W, 3), its valid (h, w), and the boxes moved with it, padded to (max_boxes, 5) with −1.
    """
    image_hw = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.minimum(input_hw[0] / image_hw[0], input_hw[1] / image_hw[1])
    new_hw = tf.maximum(tf.cast(tf.round(image_hw * scale), tf.int32), 1)
    resized = tf.image.resize(tf.cast(image, tf.float32), new_hw)
    resized = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    padded = tf.pad(resized, [[0, input_hw[0] - new_hw[0]], [0, input_hw[1] - new_hw[1]], [0, 0]],
                    constant_values=int(FILL_VALUE))
    factors = tf.cast(new_hw[::-1], tf.float32) / image_hw[::-1]  # (x, y)
    moved = tf.concat([boxes[:, :4] * tf.tile(factors, [2]), boxes[:, 4:]], axis=1)
    return tf.ensure_shape(padded, [*input_hw, 3]), new_hw, pad_boxes(moved, max_boxes)


class SampleSource:
    """Sample index → fitted image, valid size and padded boxes, read from the files or from a RAM cache."""

    def __init__(self, annotations: list[Annotation], input_hw: tuple[int, int], max_boxes: int,
                 cache: str = "none") -> None:
        if cache not in CACHE_MODES:
            raise ValueError(f"cache must be one of {CACHE_MODES}, got {cache!r}")
        self.size = len(annotations)
        self.input_hw, self.max_boxes = input_hw, max_boxes
        self.paths, self.orientations, ragged = annotations_to_tensors(annotations)
        self.box_values, self.row_splits = ragged.values, tf.cast(ragged.row_splits, tf.int32)
        self.cached = None
        if cache == "ram":
            self.cached = self._fill_cache()

    def _decode_fitted(self, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        image = decode_image(self.paths[index], self.orientations[index])
        boxes = self.box_values[self.row_splits[index]:self.row_splits[index + 1]]
        return fit_sample(image, boxes, self.input_hw, self.max_boxes)

    def _fill_cache(self) -> tuple[tf.Variable, tf.Variable, tf.Variable]:
        """Decode every image once, in parallel, into uint8 variables (no 2 GB graph-constant limit)."""
        height, width = self.input_hw
        megabytes = self.size * height * width * 3 / 2**20
        log.info("caching %d images in RAM (%.0f MB)", self.size, megabytes)
        images = np.zeros((self.size, height, width, 3), np.uint8)
        sizes = np.zeros((self.size, 2), np.int32)
        boxes = np.zeros((self.size, self.max_boxes, 5), np.float32)
        dataset = tf.data.Dataset.range(self.size).map(
            lambda i: (i, *self._decode_fitted(i)), num_parallel_calls=AUTOTUNE).batch(64)
        for index, image, size, box in dataset:
            images[index.numpy()], sizes[index.numpy()], boxes[index.numpy()] = image, size, box
        return (tf.Variable(images, trainable=False), tf.Variable(sizes, trainable=False),
                tf.Variable(boxes, trainable=False))

    def load(self, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        if self.cached is None:
            return self._decode_fitted(index)
        images, sizes, boxes = self.cached
        return images[index], sizes[index], boxes[index]


class TrainingTransform:
    """Index + seed → one augmented training sample (image (H, W, 3) float32, boxes (max_boxes, 5)).

    `mosaic_enabled` (a variable, 1 or 0) scales the mosaic and mixup probabilities, so `--close-mosaic` can turn
    them off for the last epochs without rebuilding the pipeline. A mosaic holds the boxes of four images and mixup
    those of two samples, so a sample can have more boxes than `max_boxes`; those beyond it are cut, and counted in
    `dropped_boxes` (an int64 variable) when one is given, for the trainer to report.
    """

    def __init__(self, source: SampleSource, config: AugmentConfig, mosaic_enabled: tf.Variable | None = None,
                 dropped_boxes: tf.Variable | None = None) -> None:
        self.source, self.config = source, config
        self.mosaic_enabled = mosaic_enabled if mosaic_enabled is not None else tf.constant(1.0)
        self.dropped_boxes = dropped_boxes
        self.out_hw = source.input_hw
        self.axis_aligned = config.degrees == 0 and config.shear == 0

    def random_index(self, seed: tf.Tensor, count: int) -> tf.Tensor:
        return tf.random.stateless_uniform([count], seed, 0, self.source.size, dtype=tf.int32)

    def mosaic_view(self, index: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        seeds = tf.random.split(seed, 3)
        indices = tf.concat([[index], self.random_index(seeds[0], 3)], axis=0)
        images, sizes, boxes = zip(*(self.source.load(indices[k]) for k in range(4)), strict=True)
        canvas, placed = mosaic(tf.stack(images), tf.stack(sizes), tf.stack(boxes), seeds[1])
        matrix = affine_matrix(seeds[2], self.config, tf.shape(canvas)[:2], self.out_hw)
        return self.warp(canvas, placed, matrix)

    def single_view(self, index: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image, size, boxes = self.source.load(index)
        matrix = affine_matrix(seed, self.config, size, self.out_hw)
        return self.warp(image, valid_boxes(boxes), matrix)

    def warp(self, image: tf.Tensor, boxes: tf.Tensor, matrix: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        warped = warp_image(image, matrix, self.out_hw, self.axis_aligned)
        moved = warp_boxes(boxes, matrix, self.out_hw, self.config.min_box_size, self.config.min_box_visible)
        return tf.ensure_shape(warped, [*self.out_hw, 3]), moved

    def view(self, index: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """A mosaic (with probability `mosaic`) or a single image, through the random affine."""
        seeds = tf.random.split(seed, 2)
        use_mosaic = tf.random.stateless_uniform([], seeds[0]) < self.config.mosaic * self.mosaic_enabled
        if self.config.mosaic == 0:
            return self.single_view(index, seeds[1])
        return tf.cond(use_mosaic, lambda: self.mosaic_view(index, seeds[1]),
                       lambda: self.single_view(index, seeds[1]))

    def __call__(self, index: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        seeds = tf.random.split(seed, 7)
        image, boxes = self.view(tf.cast(index, tf.int32), seeds[0])
        if self.config.mixup > 0:
            use_mixup = tf.random.stateless_uniform([], seeds[1]) < self.config.mixup * self.mosaic_enabled
            image, boxes = tf.cond(
                use_mixup,
                lambda: mixup(image, boxes, *self.view(self.random_index(seeds[2], 1)[0], seeds[3]), seeds[4]),
                lambda: (image, boxes))
        config = self.config
        image = hsv_jitter(image, seeds[5], config.hsv_h, config.hsv_s, config.hsv_v)
        image, boxes = random_flip(image, boxes, seeds[6], config.flip_probability)
        if self.dropped_boxes is not None:
            beyond = tf.maximum(tf.shape(boxes, out_type=tf.int64)[0] - self.source.max_boxes, 0)
            with tf.control_dependencies([self.dropped_boxes.assign_add(beyond)]):
                boxes = tf.identity(boxes)
        return tf.ensure_shape(image, [*self.out_hw, 3]), pad_boxes(boxes, self.source.max_boxes)


def dataset_options() -> tf.data.Options:
    """Deterministic order; under a `tf.distribute` strategy each worker takes its share of the elements."""
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.threading.max_intra_op_parallelism = 1  # parallelism comes from map; measured faster on 2 cores
    return options


def epoch_samples(count: int, per_epoch: int, seed: int, start_epoch: int = 0) -> tf.data.Dataset:
    """(sample index, augmentation seed pair) for epoch after epoch from `start_epoch`: each epoch a permutation of
    `count` samples cut to `per_epoch`, drawn from (`seed`, epoch) alone."""

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        order_key, seeds_key = tf.unstack(tf.random.experimental.stateless_split(
            tf.stack([tf.constant(seed, tf.int64), epoch]), 2))
        order = tf.argsort(tf.random.stateless_uniform([count], order_key))[:per_epoch]
        seeds = tf.random.stateless_uniform([per_epoch, 2], seeds_key, minval=None, maxval=None, dtype=tf.int64)
        return tf.data.Dataset.from_tensor_slices((tf.cast(order, tf.int64), seeds))

    return tf.data.Dataset.range(start_epoch, 2**62).flat_map(one_epoch)


def build_dataset(
    annotations: list[Annotation],
    input_hw: tuple[int, int],
    batch_size: int,
    training: bool,
    augment: AugmentConfig | None = None,
    seed: int = 0,
    max_boxes: int = 100,
    cache: str = "none",
    mosaic_enabled: tf.Variable | None = None,
    start_epoch: int = 0,
    dropped_boxes: tf.Variable | None = None,
) -> tf.data.Dataset:
    """Training or validation dataset of (images, boxes) batches; `batch_size` is the global batch.

    Training data never ends: epoch after epoch from `start_epoch`, each `len(annotations) // batch_size` batches
    whose order and augmentation depend only on (`seed`, epoch), so a resumed run sees what it would have seen.

    Missing image files are skipped with a warning naming them (training checks every image up front, see
    `utils.data.sample_check`); an image that still fails to decode is dropped by `ignore_errors`, so one bad sample
    never stops training.
    """
    annotations, missing = existing_annotations(annotations)
    for path in missing:
        log.warning("skipping %s: image file not found", path)
    if not annotations:
        raise ValueError("no usable images in the annotation list")
    if not training:
        paths, orientations, boxes = annotations_to_tensors(annotations)

        def load(path: tf.Tensor, orientation: tf.Tensor, sample_boxes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            image, moved = letterbox_sample(decode_image(path, orientation), valid_boxes(sample_boxes), input_hw)
            moved = clip_and_filter_boxes(moved, input_hw, (augment or AugmentConfig()).min_box_size)
            return tf.ensure_shape(image, [*input_hw, 3]), pad_boxes(moved, max_boxes)

        dataset = tf.data.Dataset.from_tensor_slices((paths, orientations, boxes.to_tensor(default_value=-1.0)))
        dataset = dataset.map(graph_only(load), num_parallel_calls=AUTOTUNE).ignore_errors(log_warning=True)
        return dataset.batch(batch_size).prefetch(AUTOTUNE).with_options(dataset_options())

    transform = TrainingTransform(SampleSource(annotations, input_hw, max_boxes, cache), augment or AugmentConfig(),
                                  mosaic_enabled, dropped_boxes)
    samples = epoch_samples(len(annotations), len(annotations) // batch_size * batch_size, seed, start_epoch)
    dataset = samples.map(graph_only(transform), num_parallel_calls=AUTOTUNE)
    dataset = dataset.ignore_errors(log_warning=True).batch(batch_size, drop_remainder=True)
    return dataset.prefetch(AUTOTUNE).with_options(dataset_options())


def build_inference_dataset(image_paths: list[str], input_hw: tuple[int, int], batch_size: int,
                            letterbox: bool = True) -> tf.data.Dataset:
    """Letterboxed (or stretched) images for batched inference: (images, original (H, W) as viewed, index in
    `image_paths`)."""

    def load(path: tf.Tensor, orientation: tf.Tensor, index: tf.Tensor):
        image = decode_image(path, orientation)
        return letterbox_image(image, input_hw, FILL_VALUE, letterbox), tf.shape(image)[:2], index

    dataset = tf.data.Dataset.from_tensor_slices((tf.constant(image_paths), orientation_tensor(image_paths),
                                                  tf.range(len(image_paths))))
    return dataset.map(graph_only(load), num_parallel_calls=AUTOTUNE).batch(batch_size).prefetch(AUTOTUNE)

