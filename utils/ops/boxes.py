"""Box geometry as tensor ops (continuous pixels, x1, y1, x2, y2; width = x2 − x1, no +1 anywhere)."""

from __future__ import annotations

import math

import tensorflow as tf

EPS = 1e-9


def xyxy_to_cxcywh(boxes: tf.Tensor) -> tf.Tensor:
    """(…, 4) corners → (…, 4) centre x, centre y, width, height."""
    x1, y1, x2, y2 = tf.unstack(boxes, 4, axis=-1)
    return tf.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1)


def cxcywh_to_xyxy(boxes: tf.Tensor) -> tf.Tensor:
    """(…, 4) centre x, centre y, width, height → (…, 4) corners."""
    # Slices, not unstack: LiteRT's selective quantisation cannot keep a multi-output op in float.
    centre, size = boxes[..., 0:2], boxes[..., 2:4]
    return tf.concat([centre - size / 2, centre + size / 2], axis=-1)


def box_area(boxes: tf.Tensor) -> tf.Tensor:
    return tf.maximum(boxes[..., 2] - boxes[..., 0], 0.0) * tf.maximum(boxes[..., 3] - boxes[..., 1], 0.0)


def pairwise_iou(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """IoU of every box in a (…, N, 4) with every box in b (…, M, 4) → (…, N, M)."""
    a = a[..., :, None, :]
    b = b[..., None, :, :]
    inter_wh = tf.maximum(tf.minimum(a[..., 2:], b[..., 2:]) - tf.maximum(a[..., :2], b[..., :2]), 0.0)
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    return inter / (box_area(a) + box_area(b) - inter + EPS)


def ciou(pred: tf.Tensor, true: tf.Tensor) -> tf.Tensor:
    """Complete IoU of matching boxes (…, 4) → (…): IoU − centre distance² / enclosing diagonal² − αv."""
    inter_wh = tf.maximum(tf.minimum(pred[..., 2:], true[..., 2:]) - tf.maximum(pred[..., :2], true[..., :2]), 0.0)
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    union = box_area(pred) + box_area(true) - inter
    iou = inter / (union + EPS)
    enclose_wh = tf.maximum(pred[..., 2:], true[..., 2:]) - tf.minimum(pred[..., :2], true[..., :2])
    diagonal2 = tf.reduce_sum(tf.square(enclose_wh), axis=-1) + EPS
    centre2 = tf.reduce_sum(tf.square((pred[..., :2] + pred[..., 2:] - true[..., :2] - true[..., 2:]) / 2), axis=-1)
    pw, ph = pred[..., 2] - pred[..., 0], pred[..., 3] - pred[..., 1]
    tw, th = true[..., 2] - true[..., 0], true[..., 3] - true[..., 1]
    v = (4 / math.pi**2) * tf.square(tf.atan(tw / (th + EPS)) - tf.atan(pw / (ph + EPS)))
    alpha = tf.stop_gradient(v / (1 - iou + v + EPS))
    return iou - centre2 / diagonal2 - alpha * v


def wh_iou(wh_a: tf.Tensor, wh_b: tf.Tensor) -> tf.Tensor:
    """IoU of boxes sharing a centre, from sizes (…, N, 2) and (M, 2) → (…, N, M); used to match anchors."""
    wh_a = wh_a[..., :, None, :]
    inter = tf.minimum(wh_a[..., 0], wh_b[:, 0]) * tf.minimum(wh_a[..., 1], wh_b[:, 1])
    return inter / (wh_a[..., 0] * wh_a[..., 1] + wh_b[:, 0] * wh_b[:, 1] - inter + EPS)
