"""Box coding of the head: raw per-level outputs ↔ boxes in input pixels (the loss and decoding share it)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from utils.ops import levels
from utils.ops.boxes import cxcywh_to_xyxy

# exp(tw) is capped so an untrained head cannot overflow to inf.
MAX_LOG_SCALE = 8.0
MAX_SCALE = float(np.exp(MAX_LOG_SCALE))


def cell_grid(height: int, width: int) -> tf.Tensor:
    """(H, W, 1, 2) integer cell coordinates (x, y) as float32."""
    ys, xs = tf.meshgrid(tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32), indexing="ij")
    return tf.stack([xs, ys], axis=-1)[:, :, None, :]


BOX_CODINGS = ("v3", "v5")


def decode_xywh(raw_xywh: tf.Tensor, cell_xy: tf.Tensor, anchors: tf.Tensor, stride: int,
                box_coding: str = "v3") -> tf.Tensor:
    """Raw (…, 4) box logits at cells (…, 2) with anchors (…, 2) → centre x, y, width, height in input pixels.

    v3: centre = (σ(t) + cell) · stride, size = exp(t) · anchor.
    v5: centre = (2σ(t) − 0.5 + cell) · stride, size = (2σ(t))² · anchor (bounded: at most 4 × the anchor).
    """
    scales = tf.exp(tf.minimum(raw_xywh, MAX_LOG_SCALE)) if box_coding == "v3" else None
    return xywh_from_activations(tf.sigmoid(raw_xywh), scales, cell_xy, anchors, stride, box_coding)


def xywh_from_activations(sigmoid_xywh: tf.Tensor, exp_xywh: tf.Tensor | None, cell_xy: tf.Tensor,
                          anchors: tf.Tensor, stride: int, box_coding: str = "v3") -> tf.Tensor:
    """`decode_xywh` from σ(t) and capped exp(t) of the box logits (exp only for v3), computed by the caller."""
    if box_coding == "v3":
        centre = (sigmoid_xywh[..., 0:2] + cell_xy) * stride
        size = exp_xywh[..., 2:4] * anchors
    elif box_coding == "v5":
        centre = (2.0 * sigmoid_xywh[..., 0:2] - 0.5 + cell_xy) * stride
        size = tf.square(2.0 * sigmoid_xywh[..., 2:4]) * anchors
    else:
        raise ValueError(f"unknown box coding {box_coding!r}; expected one of {BOX_CODINGS}")
    return tf.concat([centre, size], axis=-1)


def encode_xywh(xywh: tf.Tensor, cell_xy: tf.Tensor, anchors: tf.Tensor, stride: int,
                box_coding: str = "v3") -> tf.Tensor:
    """Inverse of `decode_xywh`: centre x, y, width, height in input pixels → the raw logits that decode to them."""
    xywh = tf.cast(xywh, tf.float32)
    offset = xywh[..., 0:2] / stride - cell_xy
    ratio = xywh[..., 2:4] / anchors
    if box_coding == "v3":
        return tf.concat([tf.math.log(offset / (1.0 - offset)), tf.math.log(ratio)], axis=-1)
    if box_coding == "v5":
        sig_xy, sig_wh = (offset + 0.5) / 2.0, tf.sqrt(ratio) / 2.0
        return tf.concat([tf.math.log(sig_xy / (1.0 - sig_xy)), tf.math.log(sig_wh / (1.0 - sig_wh))], axis=-1)
    raise ValueError(f"unknown box coding {box_coding!r}; expected one of {BOX_CODINGS}")


def decode_level(raw: tf.Tensor, anchors: tf.Tensor, stride: int,
                 box_coding: str = "v3") -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Decode one level's raw output.

    Args:
        raw: (B, H, W, A, 5 + C) head output.
        anchors: (A, 2) anchor widths and heights in input pixels.
        stride: the level's stride.
        box_coding: "v3" or "v5" parameterisation (see `decode_xywh`).

    Returns:
        boxes (B, H, W, A, 4) x1, y1, x2, y2 in input pixels; objectness logits (B, H, W, A);
        class logits (B, H, W, A, C).
    """
    raw = tf.cast(raw, tf.float32)
    shape = tf.shape(raw)
    grid = cell_grid(shape[1], shape[2])
    xywh = decode_xywh(raw[..., 0:4], grid, tf.cast(anchors, tf.float32), stride, box_coding)
    return cxcywh_to_xyxy(xywh), raw[..., 4], raw[..., 5:]


def decode_outputs(
    outputs: list[tf.Tensor], anchors: tf.Tensor, box_coding: str = "v3",
) -> tuple[tf.Tensor, tf.Tensor]:
    """All levels → boxes (B, N, 4) in input pixels and class scores (B, N, C) = objectness × class probability.

    Inference only (`decode_level` is the differentiable form the loss uses). σ and exp are taken of each whole raw
    output before any slicing: when slices read a tensor directly, LiteRT's int8 conversion gives that tensor the
    range of one of its slices, which clipped the class logits to a few units and the scores to a constant."""
    strides = levels.strides()
    anchors = tf.reshape(tf.cast(anchors, tf.float32), (len(strides), -1, 2))
    all_boxes, all_scores = [], []
    for level, (raw, stride) in enumerate(zip(outputs, strides, strict=True)):
        raw = tf.cast(raw, tf.float32)
        probabilities = tf.sigmoid(raw)
        # min after exp: the same values as exp(min(t, cap)), with no clamp op sharing the raw tensor's range.
        scales = tf.minimum(tf.exp(raw), MAX_SCALE) if box_coding == "v3" else None
        shape = tf.shape(raw)
        xywh = xywh_from_activations(probabilities, scales, cell_grid(shape[1], shape[2]), anchors[level], stride,
                                     box_coding)
        scores = probabilities[..., 4:5] * probabilities[..., 5:]
        batch = shape[0]
        all_boxes.append(tf.reshape(cxcywh_to_xyxy(xywh), (batch, -1, 4)))
        all_scores.append(tf.reshape(scores, (batch, -1, shape[-1] - 5)))
    return tf.concat(all_boxes, axis=1), tf.concat(all_scores, axis=1)


# Anchor-free heads: each cell predicts the distances from its centre to the box's four sides, each as a
# distribution over `reg_max` bins (DFL, distribution focal loss): distance = Σ p_i · i, in strides.
ANCHOR_FREE_CODINGS = ("dfl",)
DEFAULT_REG_MAX = 16  # YOLOv8's
MAX_EXP = float(np.exp(30.0))  # class and bin logits saturate here (a probability of 1 − 1e-13)


def anchor_points(height: int, width: int, stride: int) -> tf.Tensor:
    """(H · W, 2) cell centres x, y in input pixels, row-major."""
    grid = cell_grid(height, width)[:, :, 0, :]  # (H, W, 2)
    return tf.reshape((grid + 0.5) * stride, (-1, 2))


def dfl_distances(bin_probabilities: tf.Tensor, reg_max: int) -> tf.Tensor:
    """(…, 4 · reg_max) bin probabilities (each side's `reg_max` summing to 1) → (…, 4) expected distances in bins."""
    shape = tf.concat([tf.shape(bin_probabilities)[:-1], [4, reg_max]], axis=0)
    probabilities = tf.reshape(bin_probabilities, shape)
    return tf.reduce_sum(probabilities * tf.range(reg_max, dtype=probabilities.dtype), axis=-1)


def boxes_from_distances(points: tf.Tensor, distances: tf.Tensor) -> tf.Tensor:
    """Centres (…, 2) and left, top, right, bottom distances (…, 4) → x1, y1, x2, y2 (…, 4)."""
    return tf.concat([points - distances[..., :2], points + distances[..., 2:]], axis=-1)


def distances_from_boxes(points: tf.Tensor, boxes: tf.Tensor) -> tf.Tensor:
    """Inverse of `boxes_from_distances`: centres (…, 2) and boxes (…, 4) → left, top, right, bottom (…, 4)."""
    return tf.concat([points - boxes[..., :2], boxes[..., 2:] - points], axis=-1)


def decode_dfl_outputs(outputs: list[tf.Tensor], reg_max: int) -> tuple[tf.Tensor, tf.Tensor]:
    """All levels of an anchor-free head, each (B, H, W, 4 · reg_max + C) → boxes (B, N, 4) in input pixels and
    class scores (B, N, C) (σ of the class logits; there is no objectness).

    Inference only. exp is taken of each whole raw output before slicing (see `decode_outputs`): the bins' softmax
    is their exp over its sum, a class's σ is exp / (1 + exp)."""
    all_boxes, all_scores = [], []
    for raw, stride in zip(outputs, levels.strides(), strict=True):
        raw = tf.cast(raw, tf.float32)
        shape = tf.shape(raw)
        exponentials = tf.minimum(tf.exp(raw), MAX_EXP)
        bins = tf.reshape(exponentials[..., :4 * reg_max], tf.concat([shape[:3], [4, reg_max]], axis=0))
        probabilities = tf.reshape(bins / tf.reduce_sum(bins, axis=-1, keepdims=True),
                                   tf.concat([shape[:3], [4 * reg_max]], axis=0))
        distances = dfl_distances(probabilities, reg_max) * stride  # (B, H, W, 4) pixels
        points = tf.reshape(anchor_points(shape[1], shape[2], stride), tf.concat([[1], shape[1:3], [2]], axis=0))
        batch = shape[0]
        all_boxes.append(tf.reshape(boxes_from_distances(points, distances), (batch, -1, 4)))
        classes = exponentials[..., 4 * reg_max:]
        all_scores.append(tf.reshape(classes / (1.0 + classes), (batch, -1, shape[-1] - 4 * reg_max)))
    return tf.concat(all_boxes, axis=1), tf.concat(all_scores, axis=1)
