"""YOLOv5 target assignment and loss, in the graph, from padded ground-truth boxes.

Assignment: within each level, a box matches every anchor whose width and height ratios to the box are both within
`anchor_t` (4.0), in the cell of its centre and in the two neighbouring cells nearest the centre (left or right,
above or below), which triples the positives. Boxes use the v5 parameterisation (`xy = 2σ − 0.5`,
`wh = (2σ)² · anchor`, see `utils.ops.coding.decode_xywh`), whose offsets reach those neighbours.

Loss per level (Ultralytics' recipe): mean CIoU box loss over positives; BCE objectness over every cell against the
detached CIoU of the positive there (0 elsewhere), weighted by the level balance; mean BCE class loss over positives
with optional label smoothing. Gains scale with the number of classes (/80) and input size (/640)², and the sum is
multiplied by a batch size, as in YOLOv5: there the loss is multiplied by each batch's size and gradients are
accumulated to a nominal batch of 64 before a step at a learning rate that is not scaled, so every step sees the
mean loss × 64. Here the learning rate is scaled by batch / 64 instead of accumulating, so the loss is multiplied by
the nominal 64 (`batch_scale`), not by the batch: the step per image and the weight decay relative to the loss are
then YOLOv5's at any batch size.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from nets.loss import YoloLevelLoss, valid_box_mask
from utils.ops import levels
from utils.ops.boxes import ciou, cxcywh_to_xyxy
from utils.ops.coding import decode_xywh

# (dx, dy) of the centre cell and its left, upper, right and lower neighbours.
NEIGHBOUR_OFFSETS = ((0, 0), (-1, 0), (0, -1), (1, 0), (0, 1))


def assign_v5_targets(
    boxes: tf.Tensor, level_anchors: tf.Tensor, grid_hw: tf.Tensor, stride: int, anchor_t: float = 4.0
) -> tuple[tf.Tensor, tf.Tensor]:
    """Every (box, anchor, cell) match of one level under the YOLOv5 rule.

    Args:
        boxes: (B, M, 5) x1, y1, x2, y2, class in input pixels; padding rows −1.
        level_anchors: (A, 2) this level's anchors in input pixels.
        grid_hw: (2,) the level's grid height and width.
        anchor_t: largest allowed ratio between box and anchor, in width and in height.

    Returns:
        positions (K, 4) int32 = batch, cell y, cell x, anchor; targets (K, 5) = the matched box and class.
    """
    valid = valid_box_mask(boxes)  # (B, M)
    wh = boxes[..., 2:4] - boxes[..., 0:2]
    ratio = wh[:, :, None, :] / level_anchors[None, None]  # (B, M, A, 2)
    worst = tf.reduce_max(tf.maximum(ratio, 1.0 / tf.maximum(ratio, 1e-9)), axis=-1)  # (B, M, A)
    matched = (worst < anchor_t) & valid[..., None]

    centre = (boxes[..., 0:2] + boxes[..., 2:4]) / 2 / stride  # (B, M, 2) in cells, x then y
    fraction = centre - tf.floor(centre)
    grid_xy = tf.cast(tf.reverse(grid_hw, [0]), tf.float32)
    low = (fraction < 0.5) & (centre > 1.0)  # also the cell to the left / above
    high = (fraction > 0.5) & (grid_xy - centre > 1.0)  # also the cell to the right / below
    use = tf.stack([tf.ones_like(low[..., 0]), low[..., 0], low[..., 1], high[..., 0], high[..., 1]], axis=-1)
    selected = matched[..., None] & use[:, :, None, :]  # (B, M, A, 5)

    index = tf.cast(tf.where(selected), tf.int32)  # (K, 4) = batch, box, anchor, neighbour
    targets = tf.gather_nd(boxes, index[:, :2])
    offsets = tf.gather(tf.constant(NEIGHBOUR_OFFSETS, tf.int32), index[:, 3])
    cell = tf.cast(tf.floor(tf.gather_nd(centre, index[:, :2])), tf.int32) + offsets
    cell_x = tf.clip_by_value(cell[:, 0], 0, grid_hw[1] - 1)
    cell_y = tf.clip_by_value(cell[:, 1], 0, grid_hw[0] - 1)
    positions = tf.stack([index[:, 0], cell_y, cell_x, index[:, 2]], axis=-1)
    return positions, targets


@keras.saving.register_keras_serializable(package="effyolo")
class YoloV5Loss(YoloLevelLoss):
    """Loss of one output level with YOLOv5 assignment (see the module docstring).

    Args (besides `YoloLevelLoss`'s):
        anchor_t: largest box/anchor side ratio that still matches.
        label_smoothing: class targets become 1 − ε/2 and ε/2.
        batch_scale: the batch size the loss is multiplied by (None: the batch's own size; see the module docstring).
    """

    def __init__(
        self,
        anchors: list[list[float]],
        level: int,
        num_classes: int,
        input_size: tuple[int, int],
        anchor_t: float = 4.0,
        label_smoothing: float = 0.0,
        batch_scale: int | None = None,
        box_gain: float = 0.05,
        objectness_gain: float = 1.0,
        class_gain: float = 0.5,
        name: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(anchors, level, num_classes, input_size, box_gain, objectness_gain, class_gain,
                         name=name or f"yolo_v5_loss_{levels.LEVELS[level].name}", **kwargs)
        self.anchor_t = anchor_t
        self.label_smoothing = label_smoothing
        self.batch_scale = batch_scale

    def scaled_gains(self) -> tuple[float, float, float]:
        """Box, objectness and class gains scaled by classes (/80) and input size (/640)² (YOLOv5 also scales by
        3 / level count, which is 1 for the three levels here)."""
        size = max(self.input_size)
        return (self.box_gain, self.objectness_gain * (size / 640) ** 2, self.class_gain * self.num_classes / 80)

    def parts(self, boxes: tf.Tensor, raw: tf.Tensor) -> dict[str, tf.Tensor]:
        """The box, objectness and class parts of this level's loss, each already weighted."""
        boxes = tf.cast(boxes, tf.float32)
        raw = tf.cast(raw, tf.float32)
        level_anchors = self.level_anchors()
        positions, targets = assign_v5_targets(boxes, level_anchors, tf.shape(raw)[1:3], self.stride, self.anchor_t)

        at_positions = tf.gather_nd(raw, positions)  # (K, 5 + C)
        cell_xy = tf.cast(tf.stack([positions[:, 2], positions[:, 1]], axis=-1), tf.float32)
        anchors = tf.gather(level_anchors, positions[:, 3])
        predicted = cxcywh_to_xyxy(decode_xywh(at_positions[:, :4], cell_xy, anchors, self.stride, "v5"))
        overlap = ciou(predicted, targets[:, :4])  # (K,)
        count = tf.cast(tf.shape(positions)[0], tf.float32)
        box = tf.math.divide_no_nan(tf.reduce_sum(1.0 - overlap), count)

        # Where several positives share a slot, the objectness target is the best of their CIoUs.
        objectness = tf.tensor_scatter_nd_max(tf.zeros(tf.shape(raw)[:4]), positions,
                                              tf.maximum(tf.stop_gradient(overlap), 0.0))
        obj = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=objectness, logits=raw[..., 4]))

        smoothing = self.label_smoothing
        one_hot = tf.one_hot(tf.cast(targets[:, 4], tf.int32), self.num_classes)
        class_targets = one_hot * (1.0 - smoothing) + 0.5 * smoothing
        cls_sum = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=class_targets,
                                                                        logits=at_positions[:, 5:]))
        cls = tf.math.divide_no_nan(cls_sum, count * self.num_classes)

        box_gain, objectness_gain, class_gain = self.scaled_gains()
        batch = tf.cast(self.batch_scale or tf.shape(raw)[0], tf.float32)
        return {
            "box": box_gain * box * batch,
            "objectness": objectness_gain * levels.LEVELS[self.level].objectness_balance * obj * batch,
            "class": class_gain * cls * batch,
        }

    def get_config(self) -> dict:
        return {**super().get_config(), "anchor_t": self.anchor_t, "label_smoothing": self.label_smoothing,
                "batch_scale": self.batch_scale}
