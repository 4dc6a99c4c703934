"""The anchor-free decoupled head's target assignment and loss (TOOD's task-aligned assignment, as in YOLOv8), in
the graph, batched over images and their padded boxes.

Assignment, per image: an anchor point (a cell centre of any level) is a candidate for a box when it lies strictly
inside it. Each candidate's alignment with the box is `s^α · u^β`, s its predicted probability of the box's class,
u the CIoU of its predicted box with the box (α 0.5, β 6). Each box takes its top-k (10) anchors by alignment among
all levels; an anchor taken by several boxes keeps the one it overlaps most. A positive anchor's class target is
its alignment normalised per box — `t · max_u / max_t` over the box's positives — so the best-aligned anchor of a
box aims at that box's best CIoU and the others at less.

Loss: BCE of every class logit against those targets; for positives, CIoU box loss and DFL (the cross-entropy of
the two bins around the target distance, weighted by closeness) of each side's distance distribution, both
weighted by the positive's target score; all three divided by the sum of target scores. Gains box 7.5, class 0.5,
DFL 1.5, and the sum multiplied by a batch size as in YOLOv5 (see `nets.loss_v5` on `batch_scale`).
"""

from __future__ import annotations

import tensorflow as tf

from nets.loss import valid_box_mask
from utils.ops import levels
from utils.ops.boxes import ciou
from utils.ops.coding import anchor_points, boxes_from_distances, dfl_distances, distances_from_boxes

EPS = 1e-9


def points_in_boxes(points: tf.Tensor, boxes: tf.Tensor) -> tf.Tensor:
    """(A, 2) points and (B, M, 4) boxes → (B, M, A): the point lies strictly inside the box."""
    points = points[None, None]  # (1, 1, A, 2)
    corners = boxes[:, :, None, :]  # (B, M, 1, 4)
    gaps = tf.concat([points - corners[..., :2], corners[..., 2:] - points], axis=-1)
    return tf.reduce_min(gaps, axis=-1) > EPS


def assign_task_aligned(scores: tf.Tensor, predicted: tf.Tensor, points: tf.Tensor, boxes: tf.Tensor,
                        topk: int = 10, alpha: float = 0.5, beta: float = 6.0
                        ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Task-aligned targets for every anchor (see the module docstring).

    Args:
        scores: (B, A, C) predicted class probabilities.
        predicted: (B, A, 4) predicted boxes x1, y1, x2, y2 in input pixels.
        points: (A, 2) anchor points (cell centres) in input pixels.
        boxes: (B, M, 5) x1, y1, x2, y2, class; padding rows −1.

    Returns:
        target boxes (B, A, 4), target scores (B, A, C), positive mask (B, A).
    """
    scores, predicted = tf.stop_gradient(scores), tf.stop_gradient(predicted)
    batch, anchors, num_classes = tf.shape(scores)[0], tf.shape(scores)[1], tf.shape(scores)[2]
    count = tf.shape(boxes)[1]
    labels = tf.cast(tf.maximum(boxes[..., 4], 0.0), tf.int32)  # (B, M)
    candidate = points_in_boxes(points, boxes[..., :4]) & valid_box_mask(boxes)[..., None]  # (B, M, A)
    class_scores = tf.gather(tf.transpose(scores, [0, 2, 1]), labels, batch_dims=1)  # (B, M, A)
    overlaps = ciou(boxes[:, :, None, :4], predicted[:, None, :, :])  # (B, M, A)
    overlaps = tf.where(candidate, tf.maximum(overlaps, 0.0), 0.0)
    alignment = tf.where(candidate, tf.pow(class_scores, alpha) * tf.pow(overlaps, beta), 0.0)

    k = tf.minimum(topk, anchors)
    top = tf.math.top_k(alignment, k).indices  # (B, M, k)
    grid = tf.meshgrid(tf.range(batch), tf.range(count), tf.range(k), indexing="ij")
    at = tf.reshape(tf.stack([grid[0], grid[1], top], axis=-1), (-1, 3))
    in_top = tf.scatter_nd(at, tf.ones(tf.shape(at)[0]), tf.stack([batch, count, anchors])) > 0
    positive = in_top & candidate  # (B, M, A)

    # An anchor taken by several boxes keeps the box it overlaps most.
    taken = tf.reduce_sum(tf.cast(positive, tf.int32), axis=1)  # (B, A)
    best = tf.one_hot(tf.argmax(overlaps, axis=1), count, axis=1, on_value=True, off_value=False)  # (B, M, A)
    positive = tf.where((taken > 1)[:, None, :], best, positive)
    foreground = tf.reduce_any(positive, axis=1)  # (B, A)
    target_index = tf.argmax(tf.cast(positive, tf.float32), axis=1, output_type=tf.int32)  # (B, A)
    target_boxes = tf.gather(boxes[..., :4], target_index, batch_dims=1)  # (B, A, 4)
    target_labels = tf.gather(labels, target_index, batch_dims=1)  # (B, A)

    positive_alignment = tf.where(positive, alignment, 0.0)
    best_alignment = tf.reduce_max(positive_alignment, axis=-1, keepdims=True)  # (B, M, 1)
    best_overlap = tf.reduce_max(tf.where(positive, overlaps, 0.0), axis=-1, keepdims=True)
    normalised = tf.reduce_max(positive_alignment * best_overlap / (best_alignment + EPS), axis=1)  # (B, A)
    target_scores = tf.one_hot(target_labels, num_classes) * (normalised * tf.cast(foreground, tf.float32))[..., None]
    return target_boxes, target_scores, foreground


def flat_outputs(outputs: list[tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Level outputs (B, H, W, D) → all anchors (B, A, D), their points (A, 2) and strides (A, 1), level by level."""
    flat, points, strides = [], [], []
    for raw, stride in zip(outputs, levels.strides(), strict=True):
        raw = tf.cast(raw, tf.float32)
        shape = tf.shape(raw)
        flat.append(tf.reshape(raw, tf.stack([shape[0], shape[1] * shape[2], shape[3]])))
        level_points = anchor_points(shape[1], shape[2], stride)
        points.append(level_points)
        strides.append(tf.fill([tf.shape(level_points)[0], 1], float(stride)))
    return tf.concat(flat, axis=1), tf.concat(points, axis=0), tf.concat(strides, axis=0)


def distribution_focal_loss(bin_logits: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """(…, 4, R) bin logits and (…, 4) target distances in bins (within [0, R − 1)) → (…,) the mean over the four
    sides of the cross-entropies of the two bins around the target, weighted by closeness."""
    left = tf.floor(target)
    weight_left = left + 1.0 - target
    left_bin = tf.cast(left, tf.int32)
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits
    loss = (cross_entropy(labels=left_bin, logits=bin_logits) * weight_left
            + cross_entropy(labels=left_bin + 1, logits=bin_logits) * (1.0 - weight_left))
    return tf.reduce_mean(loss, axis=-1)


class TaskAlignedLoss:
    """The decoupled head's loss over all levels at once (see the module docstring); `parts` as the anchor heads'
    losses give theirs."""

    part_names = ("box", "class", "dfl")

    def __init__(self, num_classes: int, reg_max: int, topk: int = 10, alpha: float = 0.5, beta: float = 6.0,
                 box_gain: float = 7.5, class_gain: float = 0.5, dfl_gain: float = 1.5,
                 batch_scale: int | None = None) -> None:
        self.num_classes, self.reg_max = num_classes, reg_max
        self.topk, self.alpha, self.beta = topk, alpha, beta
        self.box_gain, self.class_gain, self.dfl_gain = box_gain, class_gain, dfl_gain
        self.batch_scale = batch_scale

    def parts(self, boxes: tf.Tensor, outputs: list[tf.Tensor]) -> dict[str, tf.Tensor]:
        boxes = tf.cast(boxes, tf.float32)
        raw, points, strides = flat_outputs(outputs)  # (B, A, 4R + C), (A, 2), (A, 1)
        reg_max = self.reg_max
        bin_logits = tf.reshape(raw[..., :4 * reg_max], tf.concat([tf.shape(raw)[:2], [4, reg_max]], axis=0))
        class_logits = raw[..., 4 * reg_max:]
        distances = dfl_distances(tf.reshape(tf.nn.softmax(bin_logits, axis=-1), tf.shape(raw[..., :4 * reg_max])),
                                  reg_max)  # (B, A, 4) in strides
        predicted = boxes_from_distances(points, distances * strides)  # (B, A, 4) pixels
        target_boxes, target_scores, foreground = assign_task_aligned(
            tf.sigmoid(class_logits), predicted, points, boxes, self.topk, self.alpha, self.beta)
        score_sum = tf.maximum(tf.reduce_sum(target_scores), 1.0)
        weight = tf.reduce_sum(target_scores, axis=-1) * tf.cast(foreground, tf.float32)  # (B, A)

        cls = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=target_scores, logits=class_logits))
        box = tf.reduce_sum((1.0 - ciou(predicted, target_boxes)) * weight)
        target_distances = tf.clip_by_value(distances_from_boxes(points, target_boxes) / strides, 0.0,
                                            reg_max - 1 - 0.01)
        dfl = tf.reduce_sum(distribution_focal_loss(bin_logits, target_distances) * weight)
        batch = tf.cast(self.batch_scale or tf.shape(raw)[0], tf.float32)
        return {"box": self.box_gain * box / score_sum * batch, "class": self.class_gain * cls / score_sum * batch,
                "dfl": self.dfl_gain * dfl / score_sum * batch}
