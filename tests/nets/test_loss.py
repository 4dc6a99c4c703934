import numpy as np
import pytest
import tensorflow as tf

from nets.loss import YoloV3Loss, assign_v3_targets

ANCHORS = np.array([[10, 13], [16, 30], [33, 23], [30, 61], [62, 45], [59, 119], [116, 90], [156, 198],
                    [373, 326]], np.float32)


def padded(rows: list[list[float]], max_boxes: int = 4) -> tf.Tensor:
    boxes = np.full((1, max_boxes, 5), -1.0, np.float32)
    boxes[0, :len(rows)] = rows
    return tf.constant(boxes)


def test_box_goes_to_best_anchor_level_and_cell():
    # 100×80 box: wh-IoU with (116, 90) is 8000/10440 = 0.766, the best of the nine → level 2 (stride 32), anchor 0.
    boxes = padded([[100, 100, 200, 180, 1]])
    target, objectness, classes = assign_v3_targets(boxes, tf.constant(ANCHORS), 2, tf.constant([8, 8]), 32, 2)
    assert objectness.numpy().sum() == 1.0
    assert objectness[0, 4, 4, 0] == 1.0  # centre (150, 140) // 32 = cell (4, 4)
    np.testing.assert_array_equal(target[0, 4, 4, 0].numpy(), [100, 100, 200, 180])
    np.testing.assert_array_equal(classes[0, 4, 4, 0].numpy(), [0, 1])
    for level, grid, stride in ((0, 32, 8), (1, 16, 16)):
        _, other, _ = assign_v3_targets(boxes, tf.constant(ANCHORS), level, tf.constant([grid, grid]), stride, 2)
        assert other.numpy().sum() == 0.0


def test_multi_anchor_matching_adds_every_anchor_above_the_threshold():
    # Shape IoUs of a 100×80 box: (30, 61) 0.229, (62, 45) 0.349, (59, 119) 0.458 at level 1;
    # (116, 90) 0.766, (156, 198) 0.259 at level 2; everything at level 0 is below 0.2.
    boxes = padded([[100, 100, 200, 180, 1]])
    expected = {0: [], 1: [0, 1, 2], 2: [0, 1]}
    for level, grid, stride in ((0, 32, 8), (1, 16, 16), (2, 8, 32)):
        _, objectness, _ = assign_v3_targets(boxes, tf.constant(ANCHORS), level, tf.constant([grid, grid]), stride,
                                             2, match_threshold=0.2)
        cells = np.argwhere(objectness.numpy()[0] > 0)
        assert cells[:, 2].tolist() == expected[level]
        assert all((y, x) == (140 // stride, 150 // stride) for y, x, _ in cells)


def test_small_box_goes_to_stride_8_and_padding_is_ignored():
    boxes = padded([[0, 0, 10, 13, 0], [-1, -1, -1, -1, -1], [5, 5, 5, 9, 0]])  # exact anchor 0; degenerate box
    _, objectness, _ = assign_v3_targets(boxes, tf.constant(ANCHORS), 0, tf.constant([32, 32]), 8, 1)
    assert objectness.numpy().sum() == 1.0 and objectness[0, 0, 0, 0] == 1.0


def raw_for_box(box: list[float], level: int, anchor: int, grid: int, num_classes: int) -> np.ndarray:
    """Raw head output that decodes exactly to `box` in its cell, confident objectness and class 0."""
    stride = 8 * 2**level
    raw = np.zeros((1, grid, grid, 3, 5 + num_classes), np.float32)
    raw[..., 4] = -12.0
    raw[..., 5:] = -12.0
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    cell_x, cell_y = int(cx // stride), int(cy // stride)
    fraction = np.array([cx / stride - cell_x, cy / stride - cell_y])
    raw[0, cell_y, cell_x, anchor, 0:2] = np.log(fraction / (1 - fraction))
    width, height = box[2] - box[0], box[3] - box[1]
    raw[0, cell_y, cell_x, anchor, 2:4] = np.log([width / ANCHORS[3 * level + anchor][0],
                                                  height / ANCHORS[3 * level + anchor][1]])
    raw[0, cell_y, cell_x, anchor, 4] = 12.0
    raw[0, cell_y, cell_x, anchor, 5] = 12.0
    return raw


def test_perfect_prediction_has_near_zero_loss_and_errors_cost_more():
    box = [100.0, 100.0, 200.0, 180.0, 0.0]
    loss = YoloV3Loss(ANCHORS, level=2, num_classes=2, input_size=(256, 256), match_threshold=1.0)
    perfect = raw_for_box(box, level=2, anchor=0, grid=8, num_classes=2)
    parts = {k: float(v) for k, v in loss.parts(padded([box]), tf.constant(perfect)).items()}
    assert parts["box"] == pytest.approx(0.0, abs=1e-5)
    assert parts["objectness"] < 1e-3 and parts["class"] < 1e-3
    shifted = perfect.copy()
    shifted[0, 4, 4, 0, 0] += 1.0
    shifted_parts = loss.parts(padded([box]), tf.constant(shifted))
    assert float(shifted_parts["box"]) > 0.005  # the centre moved ~0.3 cells
    assert float(loss(padded([box]), tf.constant(shifted))) > float(loss(padded([box]), tf.constant(perfect)))


def test_loss_config_round_trip():
    loss = YoloV3Loss(ANCHORS, level=1, num_classes=3, input_size=(320, 320), ignore_threshold=0.6)
    clone = YoloV3Loss.from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()
    assert clone.stride == 16


def test_iou_objectness_aims_a_positive_at_its_boxs_ciou():
    """With `iou_objectness` a positive's objectness target is its prediction's CIoU with the box (here a box
    predicted at 80% of the true width and height, centred: CIoU = IoU = 0.64), not 1: the objectness part is then
    BCE(12 logit, 0.64) instead of BCE(12 logit, 1), computed by hand."""
    box = [100.0, 100.0, 200.0, 180.0, 0.0]
    raw = raw_for_box([110.0, 108.0, 190.0, 172.0, 0.0], level=2, anchor=0, grid=8, num_classes=2)
    raw[0, 4, 4, 0, :2] = raw_for_box(box, level=2, anchor=0, grid=8, num_classes=2)[0, 4, 4, 0, :2]  # same centre
    plain = YoloV3Loss(ANCHORS, 2, 2, (256, 256), match_threshold=1.0, ignore_threshold=1.0)
    aware = YoloV3Loss(ANCHORS, 2, 2, (256, 256), match_threshold=1.0, ignore_threshold=1.0, iou_objectness=True)
    difference = float(aware.parts(padded([box]), tf.constant(raw))["objectness"]
                       - plain.parts(padded([box]), tf.constant(raw))["objectness"])
    # BCE(z, t) = log(1 + e^z) − t·z: the two targets differ by (1 − 0.64)·z at the one positive, z = 12; the
    # objectness part is gain 1 × balance 0.4 × sum / 1 box.
    assert difference == pytest.approx(0.4 * (1 - 0.64) * 12.0, rel=1e-4)
    assert YoloV3Loss.from_config(aware.get_config()).iou_objectness
