import math

import numpy as np
import pytest
import tensorflow as tf

from utils.ops.boxes import ciou, cxcywh_to_xyxy, pairwise_iou, wh_iou, xyxy_to_cxcywh
from utils.ops.letterbox import boxes_from_letterbox, boxes_to_letterbox, letterbox_image, letterbox_params


def test_pairwise_iou_hand_computed():
    a = tf.constant([[0.0, 0.0, 10.0, 10.0]])
    b = tf.constant([[5.0, 5.0, 15.0, 15.0], [0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    # overlap 5×5 = 25; union 100 + 100 − 25 = 175 (no +1 anywhere).
    np.testing.assert_allclose(pairwise_iou(a, b).numpy(), [[25 / 175, 1.0, 0.0]], rtol=1e-6)


def test_ciou_identical_boxes_is_one():
    box = tf.constant([[3.0, 4.0, 20.0, 40.0]])
    assert ciou(box, box).numpy()[0] == pytest.approx(1.0, abs=1e-6)


def test_ciou_worked_pair():
    pred = tf.constant([0.0, 0.0, 4.0, 2.0])
    true = tf.constant([1.0, 0.0, 3.0, 2.0])
    iou = 4 / 8  # intersection 2×2, union 8 + 4 − 4
    centre = 0.0  # same centre (2, 1)
    v = 4 / math.pi**2 * (math.atan(2 / 2) - math.atan(4 / 2)) ** 2
    alpha = v / (1 - iou + v)
    expected = iou - centre - alpha * v
    assert ciou(pred, true).numpy() == pytest.approx(expected, rel=1e-5)
    shifted = tf.constant([2.0, 0.0, 6.0, 2.0])  # centre distance² 4; enclosing box 5×2 → diagonal² 29
    v2 = 4 / math.pi**2 * (math.atan(2) - math.atan(1)) ** 2
    iou2 = 2 / 10  # intersection [2, 3]×[0, 2] = 2, union 4 + 8 − 2 = 10
    expected2 = iou2 - 4 / 29 - v2 / (1 - iou2 + v2) * v2
    assert ciou(true, shifted).numpy() == pytest.approx(expected2, rel=1e-5)


def test_corner_centre_round_trip():
    boxes = tf.constant([[1.0, 2.0, 11.0, 7.0], [0.0, 0.0, 3.0, 9.0]])
    np.testing.assert_allclose(xyxy_to_cxcywh(boxes).numpy()[0], [6.0, 4.5, 10.0, 5.0])
    np.testing.assert_allclose(cxcywh_to_xyxy(xyxy_to_cxcywh(boxes)).numpy(), boxes.numpy())


def test_wh_iou_matches_anchor_shapes():
    anchors = tf.constant([[10.0, 10.0], [20.0, 40.0]])
    result = wh_iou(tf.constant([[10.0, 20.0]]), anchors).numpy()
    np.testing.assert_allclose(result, [[100 / 200, 200 / 800]], rtol=1e-6)


def test_letterbox_round_trip_and_placement():
    # 100 high × 200 wide into 64×64: scale 0.32, resized 32×64, centred with y offset 16.
    scale, offset = letterbox_params(tf.constant([100, 200]), (64, 64))
    assert scale.numpy() == pytest.approx(0.32)
    np.testing.assert_allclose(offset.numpy(), [0.0, 16.0])
    boxes = tf.constant([[10.0, 20.0, 110.0, 70.0]])
    moved = boxes_to_letterbox(boxes, scale, offset)
    np.testing.assert_allclose(moved.numpy(), [[3.2, 22.4, 35.2, 38.4]], rtol=1e-5)
    np.testing.assert_allclose(boxes_from_letterbox(moved, scale, offset).numpy(), boxes.numpy(), rtol=1e-5)


def test_letterbox_image_fills_margins_grey():
    image = tf.fill([100, 200, 3], tf.constant(255, tf.uint8))
    boxed = letterbox_image(image, (64, 64)).numpy()
    assert boxed.shape == (64, 64, 3)
    assert np.all(boxed[:16] == 128) and np.all(boxed[48:] == 128)
    assert np.allclose(boxed[16:48], 255)
