"""Training augmentations as TensorFlow graph ops: mosaic, random affine, mixup, HSV jitter and flip.

Every function is pure and takes an explicit stateless seed, so a seed fixes every result. Boxes are (N, 5) rows
x1, y1, x2, y2, class in continuous pixels (pixel i spans [i, i + 1]); whatever moves the pixels moves the boxes
by the same matrix, and boxes that end up tiny or mostly outside the canvas are dropped.
"""

from __future__ import annotations

import math

import tensorflow as tf

from utils.config.run_config import AugmentConfig

FILL_VALUE = 128.0


def uniform(seed: tf.Tensor, low: float | tf.Tensor, high: float | tf.Tensor) -> tf.Tensor:
    return tf.random.stateless_uniform([], seed, low, high)


def affine_matrix(seed: tf.Tensor, config: AugmentConfig, source_hw: tf.Tensor, out_hw: tuple[int, int]
                  ) -> tf.Tensor:
    """A random 3×3 matrix from source to output pixels: centre the source, rotate, zoom with aspect jitter,
    shear, then move to the output centre plus a random shift."""
    seeds = tf.random.split(seed, 7)
    source_hw = tf.cast(source_hw, tf.float32)
    height, width = float(out_hw[0]), float(out_hw[1])
    jitter = config.aspect_jitter
    aspect = uniform(seeds[0], 1 - jitter, 1 + jitter) / uniform(seeds[1], 1 - jitter, 1 + jitter)
    scale = uniform(seeds[2], config.scale_min, config.scale_max)
    angle = uniform(seeds[3], -config.degrees, config.degrees) * (math.pi / 180)
    shear_x = tf.tan(uniform(seeds[4], -config.shear, config.shear) * (math.pi / 180))
    shear_y = tf.tan(uniform(seeds[5], -config.shear, config.shear) * (math.pi / 180))
    shift = tf.random.stateless_uniform([2], seeds[6], -config.translate, config.translate) * [width, height]

    def matrix(rows: list[list]) -> tf.Tensor:
        return tf.stack([tf.stack([tf.cast(v, tf.float32) for v in row]) for row in rows])

    centre = matrix([[1, 0, -source_hw[1] / 2], [0, 1, -source_hw[0] / 2], [0, 0, 1]])
    cos, sin = tf.cos(angle), tf.sin(angle)
    rotate = matrix([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])
    zoom = matrix([[scale * tf.sqrt(aspect), 0, 0], [0, scale / tf.sqrt(aspect), 0], [0, 0, 1]])
    shear = matrix([[1, shear_x, 0], [shear_y, 1, 0], [0, 0, 1]])
    place = matrix([[1, 0, width / 2 + shift[0]], [0, 1, height / 2 + shift[1]], [0, 0, 1]])
    return place @ shear @ zoom @ rotate @ centre


def warp_image(image: tf.Tensor, matrix: tf.Tensor, out_hw: tuple[int, int], axis_aligned: bool = False
               ) -> tf.Tensor:
    """Resample (H, W, 3) through `matrix` (source → output, continuous pixels) into out_hw, bilinear, grey fill.

    `axis_aligned` (no rotation or shear in the matrix) takes `crop_and_resize`, three times faster on CPU than
    the general projective transform and the same mapping.
    """
    if axis_aligned:
        source_hw = tf.cast(tf.shape(image)[:2], tf.float32)
        scale, shift = tf.stack([matrix[1, 1], matrix[0, 0]]), tf.stack([matrix[1, 2], matrix[0, 2]])  # (y, x)
        last = tf.constant([out_hw[0] - 1, out_hw[1] - 1], tf.float32)
        first_source = (0.5 - shift) / scale - 0.5  # source pixel index sampled by output index 0
        last_source = (last + 0.5 - shift) / scale - 0.5
        box = tf.concat([first_source, last_source], axis=0) / tf.tile(tf.maximum(source_hw - 1, 1), [2])
        return tf.image.crop_and_resize(image[None], box[None], [0], out_hw, extrapolation_value=FILL_VALUE)[0]
    half = tf.constant([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]], tf.float32)
    back = tf.constant([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]], tf.float32)
    inverse = back @ tf.linalg.inv(matrix) @ half  # output pixel index → source pixel index
    transform = tf.reshape(inverse / inverse[2, 2], [9])[:8]
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(image, tf.float32)[None], transforms=transform[None], output_shape=tf.constant(out_hw),
        fill_value=FILL_VALUE, interpolation="BILINEAR", fill_mode="CONSTANT")
    return warped[0]


def box_area(corners: tf.Tensor) -> tf.Tensor:
    return tf.maximum(corners[:, 2] - corners[:, 0], 0.0) * tf.maximum(corners[:, 3] - corners[:, 1], 0.0)


def warp_boxes(boxes: tf.Tensor, matrix: tf.Tensor, out_hw: tuple[int, int], min_size: float,
               min_visible: float) -> tf.Tensor:
    """Move (N, 5) boxes through `matrix`: the four corners' enclosing box, clipped to the output; boxes narrower
    or shorter than `min_size` or with less than `min_visible` of their area left inside are dropped."""
    x1, y1, x2, y2 = tf.unstack(boxes[:, :4], axis=1)
    corners = tf.stack([tf.stack([x1, y1], 1), tf.stack([x2, y1], 1), tf.stack([x1, y2], 1),
                        tf.stack([x2, y2], 1)], axis=1)  # (N, 4, 2)
    moved = tf.einsum("ij,nkj->nki", matrix[:2, :2], corners) + matrix[:2, 2]
    enclosing = tf.concat([tf.reduce_min(moved, axis=1), tf.reduce_max(moved, axis=1)], axis=1)
    limits = tf.constant([out_hw[1], out_hw[0], out_hw[1], out_hw[0]], tf.float32)
    clipped = tf.clip_by_value(enclosing, 0.0, limits)
    keep = ((clipped[:, 2] - clipped[:, 0] >= min_size) & (clipped[:, 3] - clipped[:, 1] >= min_size)
            & (box_area(clipped) >= min_visible * box_area(enclosing)))
    return tf.boolean_mask(tf.concat([clipped, boxes[:, 4:]], axis=1), keep)


def paste_in_region(image: tf.Tensor, image_hw: tf.Tensor, x1: tf.Tensor, y1: tf.Tensor,
                    region: tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]) -> tf.Tensor:
    """The part of `image` (its valid top-left `image_hw`) placed with its corner at (x1, y1) that falls inside
    `region` (rx1, ry1, rx2, ry2), as a region-sized tile padded with the fill value."""
    rx1, ry1, rx2, ry2 = region
    h, w = image_hw[0], image_hw[1]
    ix1, iy1 = tf.maximum(rx1 - x1, 0), tf.maximum(ry1 - y1, 0)
    ix2, iy2 = tf.maximum(tf.minimum(rx2 - x1, w), ix1), tf.maximum(tf.minimum(ry2 - y1, h), iy1)
    crop = image[iy1:iy2, ix1:ix2]
    top, left = y1 + iy1 - ry1, x1 + ix1 - rx1
    bottom, right = (ry2 - ry1) - top - (iy2 - iy1), (rx2 - rx1) - left - (ix2 - ix1)
    return tf.pad(crop, [[top, bottom], [left, right], [0, 0]], constant_values=tf.cast(FILL_VALUE, image.dtype))


def mosaic(images: tf.Tensor, images_hw: tf.Tensor, boxes: tf.Tensor, seed: tf.Tensor
           ) -> tuple[tf.Tensor, tf.Tensor]:
    """Four images around a random centre on a canvas twice the size of one (YOLOv5's mosaic).

    Args:
        images: (4, H, W, 3), each valid in its top-left `images_hw[k]`.
        boxes: (4, M, 5), padding rows −1.

    Returns:
        the (2H, 2W, 3) canvas and the four images' boxes on it (K, 5), clipped to the canvas (filter after the
        affine step).
    """
    height, width = images.shape[1], images.shape[2]
    seeds = tf.random.split(seed, 2)
    xc = tf.random.stateless_uniform([], seeds[0], width // 2, width * 3 // 2 + 1, dtype=tf.int32)
    yc = tf.random.stateless_uniform([], seeds[1], height // 2, height * 3 // 2 + 1, dtype=tf.int32)
    full_w, full_h = tf.constant(2 * width), tf.constant(2 * height)
    zero = tf.constant(0)
    tiles, placed = [], []
    for k, (left_of_centre, above_centre) in enumerate(((True, True), (False, True), (True, False), (False, False))):
        h, w = images_hw[k, 0], images_hw[k, 1]
        x1 = xc - w if left_of_centre else xc
        y1 = yc - h if above_centre else yc
        region = (zero if left_of_centre else xc, zero if above_centre else yc,
                  xc if left_of_centre else full_w, yc if above_centre else full_h)
        tiles.append(paste_in_region(images[k], images_hw[k], x1, y1, region))
        valid = tf.boolean_mask(boxes[k], boxes[k][:, 4] >= 0)
        offset = tf.cast(tf.stack([x1, y1, x1, y1]), tf.float32)
        # Clip to the canvas (YOLOv5's load_mosaic): the part of a box beyond it lies on no pixel of this image.
        corners = tf.clip_by_value(valid[:, :4] + offset, 0.0, tf.cast(tf.stack([full_w, full_h] * 2), tf.float32))
        placed.append(tf.concat([corners, valid[:, 4:]], axis=1))
    canvas = tf.concat([tf.concat(tiles[:2], axis=1), tf.concat(tiles[2:], axis=1)], axis=0)
    canvas = tf.ensure_shape(canvas, [2 * height, 2 * width, 3])
    return canvas, tf.concat(placed, axis=0)


def mixup(first: tf.Tensor, first_boxes: tf.Tensor, second: tf.Tensor, second_boxes: tf.Tensor, seed: tf.Tensor
          ) -> tuple[tf.Tensor, tf.Tensor]:
    """Blend two samples with a Beta(32, 32) ratio (about one half) and keep both sets of boxes (YOLOv5's mixup)."""
    seeds = tf.random.split(seed, 2)
    a = tf.random.stateless_gamma([], seeds[0], alpha=32.0)
    b = tf.random.stateless_gamma([], seeds[1], alpha=32.0)
    ratio = a / (a + b)
    return first * ratio + second * (1 - ratio), tf.concat([first_boxes, second_boxes], axis=0)


def hsv_jitter(image: tf.Tensor, seed: tf.Tensor, hue: float, saturation: float, value: float) -> tf.Tensor:
    """Random hue shift and saturation / value gains of a 0–255 float RGB image (HSV kept in range: a pixel's
    value gain stops where its brightest channel reaches 255, so its hue does not change)."""
    if hue == 0 and saturation == 0 and value == 0:
        return image
    gains = tf.random.stateless_uniform([3], seed, -1.0, 1.0) * [hue, saturation, value]
    image = tf.image.adjust_hue(tf.clip_by_value(image, 0.0, 255.0) / 255.0, gains[0])  # fused kernels
    image = tf.image.adjust_saturation(image, 1 + gains[1])
    brightest = tf.reduce_max(image, axis=-1, keepdims=True)
    return image * tf.minimum(1 + gains[2], 1.0 / tf.maximum(brightest, 1e-6)) * 255.0


def horizontal_flip(image: tf.Tensor, boxes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mirror left-right; its own inverse."""
    width = tf.cast(tf.shape(image)[1], tf.float32)
    flipped = tf.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)
    return tf.reverse(image, axis=[1]), tf.concat([flipped, boxes[:, 4:]], axis=1)


def random_flip(image: tf.Tensor, boxes: tf.Tensor, seed: tf.Tensor, probability: float
                ) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cond(tf.random.stateless_uniform([], seed) < probability,
                   lambda: horizontal_flip(image, boxes), lambda: (image, boxes))
