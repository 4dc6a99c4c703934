"""Class-aware NMS built from the one NMS kernel every runtime has (TensorFlow, LiteRT builtins, ONNX).

Per-class NMS is one single-class NMS over (box, class) candidates whose boxes, clipped to the input canvas, are
shifted apart by a fixed `class × (canvas side + 1)`: boxes of different classes then never overlap, and greedy NMS
in score order gives exactly each class's own survivors, merged by score — what
`tf.image.combined_non_max_suppression` returns with `max_output_size_per_class` equal to the total. That op has no
LiteRT builtin; `NonMaxSuppressionV5` does. The shift is fixed, not derived from the candidates: one wild box (v3
decoding allows huge sizes) would otherwise move every class far out, where float32 rounding changes the IoUs of
high class ids.
"""

from __future__ import annotations

import tensorflow as tf


def _image_nms(boxes: tf.Tensor, scores: tf.Tensor, max_detections: int, iou_threshold: float,
               score_threshold: float, canvas_hw: tuple[int, int]
               ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """One image: boxes (N, 4), scores (N, C) → boxes (K, 4), scores (K,), classes (K,) int32, count ()."""
    candidates = tf.where(scores > score_threshold)  # (M, 2): anchor, class
    classes = tf.cast(candidates[:, 1], tf.int32)
    candidate_scores = tf.gather_nd(scores, candidates)
    limits = tf.constant([canvas_hw[1], canvas_hw[0], canvas_hw[1], canvas_hw[0]], tf.float32)
    candidate_boxes = tf.clip_by_value(tf.gather(boxes, candidates[:, 0]), 0.0, limits)
    step = float(max(canvas_hw) + 1)  # more than any clipped coordinate: two classes' boxes cannot touch
    shifted = candidate_boxes + (tf.cast(classes, tf.float32) * step)[:, None]
    keep, _, count = tf.raw_ops.NonMaxSuppressionV5(
        boxes=shifted, scores=candidate_scores, max_output_size=max_detections, iou_threshold=iou_threshold,
        score_threshold=score_threshold, soft_nms_sigma=0.0, pad_to_max_output_size=True)
    # A zero row after the candidates makes the padded indices safe to gather when there are no candidates.
    valid = tf.range(max_detections) < count
    keep = tf.where(valid, keep, tf.shape(candidate_scores)[0])
    padded_boxes = tf.concat([candidate_boxes, tf.zeros((1, 4))], axis=0)
    padded_scores = tf.concat([candidate_scores, tf.zeros((1,))], axis=0)
    padded_classes = tf.concat([classes, tf.zeros((1,), tf.int32)], axis=0)
    return (tf.gather(padded_boxes, keep), tf.gather(padded_scores, keep), tf.gather(padded_classes, keep),
            count)


def class_aware_nms(boxes: tf.Tensor, scores: tf.Tensor, max_detections: int, iou_threshold: float,
                    score_threshold: float, canvas_hw: tuple[int, int]
                    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Per-image, per-class NMS of a batch.

    Args:
        boxes: (B, N, 4) x1, y1, x2, y2 in pixels of the input canvas `canvas_hw`; clipped to it.
        scores: (B, N, C) class scores; a candidate needs a score above `score_threshold`.

    Returns:
        boxes (B, K, 4), scores (B, K), classes (B, K) int32 and count (B,) int32, K = `max_detections`, rows in
        descending score order, rows past `count` zero.
    """
    if boxes.shape[0] == 1:
        # A static batch of one (the LiteRT export) needs no loop. A loop body is a separate LiteRT subgraph,
        # which selective int8 quantisation cannot keep in float.
        return tuple(tensor[None] for tensor in _image_nms(boxes[0], scores[0], max_detections, iou_threshold,
                                                           score_threshold, canvas_hw))

    def one(inputs: tuple[tf.Tensor, tf.Tensor]):
        return _image_nms(inputs[0], inputs[1], max_detections, iou_threshold, score_threshold, canvas_hw)

    signature = (tf.TensorSpec((max_detections, 4), tf.float32), tf.TensorSpec((max_detections,), tf.float32),
                 tf.TensorSpec((max_detections,), tf.int32), tf.TensorSpec((), tf.int32))
    return tf.map_fn(one, (boxes, scores), fn_output_signature=signature)
