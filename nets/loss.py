"""YOLOv3 loss with in-graph target assignment from padded ground-truth boxes.

Each level's loss is a `keras.losses.Loss`, so training is plain `model.fit` with one loss per output and the
same padded boxes (B, max_boxes, 5) as every output's target.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from utils.ops import levels
from utils.ops.boxes import ciou, pairwise_iou, wh_iou
from utils.ops.coding import decode_level


def valid_box_mask(boxes: tf.Tensor) -> tf.Tensor:
    """(B, M) true for real boxes; padding rows are −1 and degenerate boxes carry no target."""
    return (boxes[..., 4] >= 0) & (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])


def assign_v3_targets(
    boxes: tf.Tensor,
    anchors: tf.Tensor,
    level: int,
    grid_hw: tf.Tensor,
    stride: int,
    num_classes: int,
    match_threshold: float = 1.0,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """YOLOv3 assignment: each box goes to its best-shape anchor among all levels, in the cell of its centre.

    With `match_threshold` < 1 a box is also assigned to every other anchor whose shape IoU with it exceeds the
    threshold (Ultralytics YOLOv3's `iou_t`), which gives more positives and faster training.

    Args:
        boxes: (B, M, 5) x1, y1, x2, y2, class in input pixels; padding rows −1.
        anchors: (L·A, 2) all anchors, level-major.
        level: the level whose targets to build.
        grid_hw: (2,) the level's grid height and width.

    Returns:
        target boxes (B, H, W, A, 4), objectness (B, H, W, A), one-hot classes (B, H, W, A, C).
    """
    per_level = levels.ANCHORS_PER_LEVEL
    wh = boxes[..., 2:4] - boxes[..., 0:2]
    shape_iou = wh_iou(wh, anchors)  # (B, M, L·A)
    best = tf.argmax(shape_iou, axis=-1, output_type=tf.int32)  # (B, M)
    is_best = tf.one_hot(best - level * per_level, per_level, on_value=True, off_value=False)  # (B, M, A)
    close = shape_iou[..., level * per_level:(level + 1) * per_level] > match_threshold
    matched = (is_best | close) & valid_box_mask(boxes)[..., None]
    index = tf.where(matched)  # (K, 3) = batch, box, anchor
    chosen = tf.gather_nd(boxes, index[:, :2])  # (K, 5)
    centre = (chosen[:, 0:2] + chosen[:, 2:4]) / 2
    cell_x = tf.clip_by_value(tf.cast(centre[:, 0] // stride, tf.int32), 0, grid_hw[1] - 1)
    cell_y = tf.clip_by_value(tf.cast(centre[:, 1] // stride, tf.int32), 0, grid_hw[0] - 1)
    scatter_at = tf.stack([tf.cast(index[:, 0], tf.int32), cell_y, cell_x, tf.cast(index[:, 2], tf.int32)], axis=-1)
    shape = tf.concat([[tf.shape(boxes)[0]], grid_hw, [per_level]], axis=0)
    counts = tf.scatter_nd(scatter_at, tf.ones_like(chosen[:, 0]), shape)
    objectness = tf.minimum(counts, 1.0)
    # Boxes sharing a (cell, anchor) slot add up in scatter_nd; averaging keeps the slot's target finite (rare).
    target_boxes = tf.scatter_nd(scatter_at, chosen[:, :4], tf.concat([shape, [4]], axis=0))
    target_boxes = target_boxes / tf.maximum(counts, 1.0)[..., None]
    one_hot = tf.one_hot(tf.cast(chosen[:, 4], tf.int32), num_classes)
    classes = tf.minimum(tf.scatter_nd(scatter_at, one_hot, tf.concat([shape, [num_classes]], axis=0)), 1.0)
    return target_boxes, objectness, classes


class YoloLevelLoss(keras.losses.Loss):
    """Base of the per-level losses: shared settings, the parts summed as the loss, and the config round trip.

    Args:
        anchors: (9, 2) anchors in input pixels, small to large.
        level: 0, 1, 2 for strides 8, 16, 32.
        num_classes: number of classes.
        input_size: (H, W) of the model input.
        box_gain, objectness_gain, class_gain: weights of the three parts.
    """

    def __init__(
        self,
        anchors: list[list[float]],
        level: int,
        num_classes: int,
        input_size: tuple[int, int],
        box_gain: float,
        objectness_gain: float,
        class_gain: float,
        name: str,
        **kwargs,
    ) -> None:
        super().__init__(name=name, reduction="sum", **kwargs)
        self.anchors = [[float(v) for v in pair] for pair in np.asarray(anchors).reshape(-1, 2)]
        self.level = level
        self.num_classes = num_classes
        self.input_size = tuple(int(v) for v in input_size)
        self.box_gain = box_gain
        self.objectness_gain = objectness_gain
        self.class_gain = class_gain
        self.stride = levels.LEVELS[level].stride

    def level_anchors(self) -> tf.Tensor:
        """(A, 2) this level's anchors."""
        per_level = levels.ANCHORS_PER_LEVEL
        return tf.constant(self.anchors[self.level * per_level:(self.level + 1) * per_level], tf.float32)

    def parts(self, boxes: tf.Tensor, raw: tf.Tensor) -> dict[str, tf.Tensor]:
        """The box, objectness and class parts of this level's loss, each already weighted."""
        raise NotImplementedError

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        return tf.add_n(list(self.parts(y_true, y_pred).values()))

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("reduction", None)
        config.update(
            anchors=self.anchors, level=self.level, num_classes=self.num_classes, input_size=list(self.input_size),
            box_gain=self.box_gain, objectness_gain=self.objectness_gain, class_gain=self.class_gain,
        )
        return config


@keras.saving.register_keras_serializable(package="effyolo")
class YoloV3Loss(YoloLevelLoss):
    """Loss of one output level: CIoU box + BCE objectness (with ignore mask) + BCE class.

    Every part is summed and divided by the number of ground-truth boxes in the batch, so levels share one scale.

    Args (besides `YoloLevelLoss`'s):
        ignore_threshold: a negative whose prediction overlaps any box above this IoU adds no objectness loss.
        match_threshold: shape IoU above which a box is matched to an anchor besides its best one (1 = best only).
        iou_objectness: a positive's objectness target is the (detached, non-negative) CIoU of its predicted box
            with its target, as YOLOv5's, instead of 1: scores then rank boxes by how well they fit.
    """

    def __init__(
        self,
        anchors: list[list[float]],
        level: int,
        num_classes: int,
        input_size: tuple[int, int],
        ignore_threshold: float = 0.5,
        match_threshold: float = 0.2,
        iou_objectness: bool = False,
        box_gain: float = 0.05,
        objectness_gain: float = 1.0,
        class_gain: float = 0.5,
        name: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(anchors, level, num_classes, input_size, box_gain, objectness_gain, class_gain,
                         name=name or f"yolo_loss_{levels.LEVELS[level].name}", **kwargs)
        self.ignore_threshold = ignore_threshold
        self.match_threshold = match_threshold
        self.iou_objectness = iou_objectness

    def parts(self, boxes: tf.Tensor, raw: tf.Tensor) -> dict[str, tf.Tensor]:
        """The box, objectness and class parts of this level's loss, each already weighted."""
        boxes = tf.cast(boxes, tf.float32)
        raw = tf.cast(raw, tf.float32)
        anchors = tf.constant(self.anchors, tf.float32)
        pred_boxes, objectness_logits, class_logits = decode_level(raw, self.level_anchors(), self.stride)
        target_boxes, objectness, classes = assign_v3_targets(
            boxes, anchors, self.level, tf.shape(raw)[1:3], self.stride, self.num_classes, self.match_threshold)

        valid = tf.cast(valid_box_mask(boxes), tf.float32)
        num_boxes = tf.maximum(tf.reduce_sum(valid), 1.0)

        batch = tf.shape(raw)[0]
        flat_pred = tf.reshape(pred_boxes, (batch, -1, 4))
        best_iou = tf.reduce_max(pairwise_iou(flat_pred, boxes[..., :4]) * valid[:, None, :], axis=-1)
        keep_negative = tf.reshape(tf.cast(best_iou < self.ignore_threshold, tf.float32), tf.shape(objectness))
        weight = objectness + (1.0 - objectness) * keep_negative

        # The input's area from this batch's grid, so a batch at another size (multi-scale) weighs its boxes right.
        area = tf.cast(tf.reduce_prod(tf.shape(raw)[1:3]) * self.stride ** 2, tf.float32)
        target_wh = target_boxes[..., 2:4] - target_boxes[..., 0:2]
        small_box_weight = 2.0 - target_wh[..., 0] * target_wh[..., 1] / area
        overlap = ciou(pred_boxes, target_boxes)
        box = tf.reduce_sum((1.0 - overlap) * small_box_weight * objectness)
        target = objectness * tf.maximum(tf.stop_gradient(overlap), 0.0) if self.iou_objectness else objectness
        obj = tf.reduce_sum(
            tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=objectness_logits) * weight)
        cls = tf.reduce_sum(
            tf.nn.sigmoid_cross_entropy_with_logits(labels=classes, logits=class_logits) * objectness[..., None])
        return {
            "box": self.box_gain * box / num_boxes,
            "objectness": self.objectness_gain * levels.LEVELS[self.level].objectness_balance * obj / num_boxes,
            "class": self.class_gain * cls / num_boxes,
        }

    def get_config(self) -> dict:
        return {**super().get_config(), "ignore_threshold": self.ignore_threshold,
                "match_threshold": self.match_threshold, "iou_objectness": self.iou_objectness}
