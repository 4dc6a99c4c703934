"""From raw head outputs to detections, in the graph: decode, score filter, class-aware NMS, undo letterbox."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from utils.ops.boxes import cxcywh_to_xyxy
from utils.ops.nms import class_aware_nms

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
    outputs: list[tf.Tensor], anchors: tf.Tensor, strides: tuple[int, ...] = (8, 16, 32), box_coding: str = "v3",
) -> tuple[tf.Tensor, tf.Tensor]:
    """All levels → boxes (B, N, 4) in input pixels and class scores (B, N, C) = objectness × class probability.

    Inference only (`decode_level` is the differentiable form the loss uses). σ and exp are taken of each whole raw
    output before any slicing: when slices read a tensor directly, LiteRT's int8 conversion gives that tensor the
    range of one of its slices, which clipped the class logits to a few units and the scores to a constant."""
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
    shape = tf.TensorShape(image.shape)
    canvas.set_shape(shape[:-3].concatenate([input_hw[0], input_hw[1], shape[-1]]))
    return canvas


def boxes_to_letterbox(boxes: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor) -> tf.Tensor:
    """Original-image boxes (…, 4) → letterboxed input pixels (`scale` and `offset` (…, 2) x, y)."""
    return boxes * tf.concat([scale, scale], axis=-1) + tf.concat([offset, offset], axis=-1)


def boxes_from_letterbox(boxes: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor) -> tf.Tensor:
    """Letterboxed input-pixel boxes (…, 4) → original-image pixels (inverse of `boxes_to_letterbox`)."""
    return (boxes - tf.concat([offset, offset], axis=-1)) / tf.concat([scale, scale], axis=-1)


def postprocess(
    outputs: list[tf.Tensor],
    anchors: tf.Tensor,
    image_hw: tf.Tensor,
    input_hw: tuple[int, int],
    score_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_detections: int = 100,
    box_coding: str = "v3",
    letterbox: bool = True,
) -> dict[str, tf.Tensor]:
    """Raw outputs of a batch → detections in original-image pixels, padded to `max_detections`.

    Args:
        outputs: raw head outputs [p3, p4, p5].
        anchors: (9, 2) anchors in input pixels, small to large.
        image_hw: (B, 2) original image heights and widths.
        input_hw: the model's input height and width.
        box_coding: the head's box parameterisation, "v3" or "v5" (the run's `assigner`).
        letterbox: whether the images were letterboxed or stretched into the input (see `letterbox_image`).

    Returns:
        dict with boxes (B, K, 4) x1, y1, x2, y2, scores (B, K), classes (B, K) int32, count (B,) valid rows.
    """
    boxes, scores = decode_outputs(outputs, anchors, box_coding=box_coding)
    return select_detections(boxes, scores, image_hw, input_hw, score_threshold, iou_threshold, max_detections,
                             letterbox)


def select_detections(
    boxes: tf.Tensor,
    scores: tf.Tensor,
    image_hw: tf.Tensor,
    input_hw: tuple[int, int],
    score_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_detections: int = 100,
    letterbox: bool = True,
) -> dict[str, tf.Tensor]:
    """Decoded boxes (B, N, 4) in input pixels and class scores (B, N, C) → score filter, class-aware NMS, back to
    original-image pixels, clipped. The dynamic-shape half of `postprocess` (XLA compiles only the half before)."""
    nms_boxes, nms_scores, nms_classes, count = class_aware_nms(boxes, scores, max_detections, iou_threshold,
                                                               score_threshold, input_hw)
    scale, offset = letterbox_params(image_hw, input_hw, letterbox)
    boxes = boxes_from_letterbox(nms_boxes, scale[:, None, :], offset[:, None, :])
    hw = tf.cast(image_hw, tf.float32)
    limits = tf.stack([hw[:, 1], hw[:, 0], hw[:, 1], hw[:, 0]], axis=-1)[:, None, :]
    boxes = tf.clip_by_value(boxes, 0.0, limits)
    valid = tf.range(max_detections)[None, :] < count[:, None]
    return {
        "boxes": tf.where(valid[..., None], boxes, 0.0),
        "scores": nms_scores,
        "classes": nms_classes,
        "count": count,
    }
