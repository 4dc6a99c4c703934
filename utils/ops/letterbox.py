"""Letterbox: fit an image into the square input keeping its aspect ratio (or stretch it), and map boxes both
ways between the image's pixels and the input's."""

from __future__ import annotations

import tensorflow as tf


def letterbox_params(image_hw: tf.Tensor, input_hw: tuple[int, int],
                     letterbox: bool = True) -> tuple[tf.Tensor, tf.Tensor]:
    """Scale (x, y) and offset (x, y), each (…, 2), that map an image of `image_hw` into `input_hw`: centred with its
    aspect ratio kept (letterbox), or stretched to fill it (`letterbox=False`, offset 0)."""
    image_hw = tf.cast(image_hw, tf.float32)
    target = tf.constant(input_hw, tf.float32)
    if not letterbox:
        scale_yx = target / image_hw
        return tf.reverse(scale_yx, axis=[-1]), tf.zeros_like(scale_yx)
    scale = tf.reduce_min(target / image_hw, axis=-1, keepdims=True)
    new_hw = tf.round(image_hw * scale)
    offset_yx = tf.floor((target - new_hw) / 2)
    return tf.concat([scale, scale], axis=-1), tf.reverse(offset_yx, axis=[-1])


def letterbox_image(image: tf.Tensor, input_hw: tuple[int, int], fill: float = 128.0,
                    letterbox: bool = True) -> tf.Tensor:
    """Resize (H, W, 3) — or a batch (B, H, W, 3) of one size — to fit `input_hw` keeping the aspect ratio,
    centred on a `fill` canvas (or stretched to `input_hw` with `letterbox=False`); float32 0–255."""
    if not letterbox:
        return tf.image.resize(tf.cast(image, tf.float32), input_hw, method="bilinear")
    image_hw = tf.shape(image)[-3:-1]
    scale, offset = letterbox_params(image_hw, input_hw)
    new_hw = tf.cast(tf.round(tf.cast(image_hw, tf.float32) * scale[0]), tf.int32)
    resized = tf.image.resize(tf.cast(image, tf.float32), new_hw, method="bilinear")
    offset = tf.cast(offset, tf.int32)
    canvas = tf.image.pad_to_bounding_box(resized - fill, offset[1], offset[0], input_hw[0], input_hw[1])
    canvas = canvas + fill
    # A reshape, not set_shape: the static size must reach TensorFlow's converters, whose shape inference cannot
    # see through the computed padding (LiteRT cannot lower a convolution on a canvas of unknown channels).
    channels = image.shape[-1] if image.shape[-1] is not None else tf.shape(canvas)[-1]
    return tf.reshape(canvas, tf.concat([tf.shape(canvas)[:-3], tf.stack([input_hw[0], input_hw[1], channels])], 0))


def boxes_to_letterbox(boxes: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor) -> tf.Tensor:
    """Original-image boxes (…, 4) → letterboxed input pixels (`scale` and `offset` (…, 2) x, y)."""
    return boxes * tf.concat([scale, scale], axis=-1) + tf.concat([offset, offset], axis=-1)


def boxes_from_letterbox(boxes: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor) -> tf.Tensor:
    """Letterboxed input-pixel boxes (…, 4) → original-image pixels (inverse of `boxes_to_letterbox`)."""
    return (boxes - tf.concat([offset, offset], axis=-1)) / tf.concat([scale, scale], axis=-1)
