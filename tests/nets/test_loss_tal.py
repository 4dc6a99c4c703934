"""The decoupled head's task-aligned assignment and loss against YOLOv8's arithmetic on hand-made cases: every
expected number below is worked out by hand from the rules (TOOD's alignment s^0.5 · u^6, top-k, the highest-IoU
box for an anchor taken twice, targets normalised per box; BCE, weighted CIoU and DFL over the target-score sum),
not by running the code under test."""

import math

import numpy as np
import pytest
import tensorflow as tf

from nets.loss_tal import TaskAlignedLoss, assign_task_aligned, distribution_focal_loss, points_in_boxes

GT = [0.0, 0.0, 16.0, 16.0]  # centre (8, 8)


def concentric(side: float) -> list[float]:
    """A square box of `side` centred on GT's centre: its CIoU with GT equals its IoU (no centre distance, same
    aspect), (side / 16)²."""
    return [8 - side / 2, 8 - side / 2, 8 + side / 2, 8 + side / 2]


FAR = [100.0, 100.0, 110.0, 110.0]


def test_points_strictly_inside_boxes():
    points = tf.constant([[4.0, 4.0], [16.0, 8.0], [8.0, 0.0], [20.0, 20.0]])
    inside = points_in_boxes(points, tf.constant([[GT]]))
    assert inside.numpy().tolist() == [[[True, False, False, False]]]  # on the border is not inside


def test_alignment_top_k_and_normalised_targets_by_hand():
    # Five anchor points inside GT, one outside; two classes, GT of class 1.
    points = tf.constant([[4.0, 4.0], [12.0, 4.0], [4.0, 12.0], [12.0, 12.0], [8.0, 8.0], [40.0, 40.0]])
    predicted = tf.constant([[GT, concentric(12), concentric(8), FAR, concentric(16), GT]])
    class_one = [0.64, 0.81, 1.0, 0.9, 0.0, 1.0]  # anchor 4 overlaps perfectly but scores 0: alignment 0
    scores = tf.constant([[[0.5, s] for s in class_one]])
    boxes, targets, positive = assign_task_aligned(scores, predicted, points, tf.constant([[GT + [1.0]]]), topk=2)
    # alignment = s^0.5 · u^6: anchor 0: 0.8 · 1 = 0.8; anchor 1: 0.9 · (144/256)^6 = 0.9 · 0.0316764 = 0.0285088;
    # anchor 2: 1 · (64/256)^6 = 0.000244; anchor 3: u = 0 (CIoU < 0 clamps to 0); anchor 5 is outside GT.
    assert positive.numpy().tolist() == [[True, True, False, False, False, False]]
    # Targets: alignment · (best CIoU among the box's positives = 1) / (best alignment = 0.8), class 1 only.
    expected = np.zeros((1, 6, 2), np.float32)
    expected[0, 0, 1] = 1.0
    expected[0, 1, 1] = 0.9 * (144 / 256) ** 6 / 0.8
    np.testing.assert_allclose(targets.numpy(), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(boxes.numpy()[0, :2], [GT, GT])


def test_an_anchor_taken_by_two_boxes_keeps_the_one_it_overlaps_most():
    other = [4.0, 4.0, 12.0, 12.0]  # inside GT, around the same anchor point (8, 8)
    points = tf.constant([[8.0, 8.0]])
    predicted = tf.constant([[[4.5, 4.5, 12.0, 12.0]]])  # overlaps `other` far more than GT
    boxes = tf.constant([[GT + [0.0], other + [1.0], [-1.0] * 5]])  # the padding row takes nothing
    target_boxes, targets, positive = assign_task_aligned(tf.constant([[[0.5, 0.5]]]), predicted, points, boxes,
                                                          topk=1)
    assert positive.numpy().tolist() == [[True]]
    np.testing.assert_allclose(target_boxes.numpy()[0, 0], other)
    assert targets.numpy()[0, 0, 0] == 0 and targets.numpy()[0, 0, 1] > 0  # the class of the box it kept


def test_dfl_of_a_target_between_two_bins_by_hand():
    logits = np.zeros((1, 4, 16), np.float32)
    logits[0, :, 2], logits[0, :, 3] = 2.0, 1.0
    target = np.array([[2.25, 2.25, 2.25, 2.25]], np.float32)
    # softmax: z = 13 + e² + e; CE(bin 2) = log z − 2, CE(bin 3) = log z − 1; weights 0.75 and 0.25.
    z = 14 + math.e ** 2 + math.e
    expected = 0.75 * (math.log(z) - 2) + 0.25 * (math.log(z) - 1)
    np.testing.assert_allclose(distribution_focal_loss(tf.constant(logits), tf.constant(target)).numpy(), [expected],
                               rtol=1e-5)


def test_the_loss_parts_by_hand():
    """A 32×32 input: 16 + 4 + 1 anchors. Every anchor's bin logits peak at bin 1 (logit 20), so every anchor predicts
    one stride on each side of its point; class logits 0 (probability 0.5). The box (4, 4, 20, 20), class 0, holds
    three anchor points strictly inside: p3's (12, 12), p4's (8, 8), p5's (16, 16)."""
    reg_max, num_classes = 16, 2
    outputs = []
    for grid in (4, 2, 1):
        raw = np.zeros((1, grid, grid, 4 * reg_max + num_classes), np.float32)
        raw[..., 1:4 * reg_max:reg_max] = 20.0  # bin 1 of each side
        outputs.append(tf.constant(raw))
    loss = TaskAlignedLoss(num_classes, reg_max, topk=10, batch_scale=1)
    parts = {k: float(v) for k, v in loss.parts(tf.constant([[[4.0, 4.0, 20.0, 20.0, 0.0]]]), outputs).items()}
    # The expected distance is d = (e^20 · 1 + Σ_{i≠1} i) / (e^20 + 15) bins, a hair over 1: each prediction is a
    # square of side 2 · d strides about its point. p3: the box scaled by d, CIoU 1/d²; p4 (−8, −8, 24, 24) · d:
    # IoU 256 / (32d)², centres 4√2 apart in an enclosing (32d)², CIoU (0.25 − 32/2048) / d²; p5 likewise
    # (0.0625 − 32/8192) / d².
    d = (math.exp(20) + 119) / (math.exp(20) + 15)
    u3, u4, u5 = 1 / d ** 2, (0.25 - 32 / 2048) / d ** 2, (0.0625 - 32 / 8192) / d ** 2
    a3, a4, a5 = (0.5 ** 0.5 * u ** 6 for u in (u3, u4, u5))
    t3, t4, t5 = (a * u3 / a3 for a in (a3, a4, a5))  # normalised by the box's best alignment and best CIoU
    total = t3 + t4 + t5
    # Every class logit is 0: each of 21 × 2 BCE terms is log 2, whatever its target.
    assert parts["class"] == pytest.approx(0.5 * 42 * math.log(2) / total, rel=1e-4)
    assert parts["box"] == pytest.approx(7.5 * ((1 - u3) * t3 + (1 - u4) * t4 + (1 - u5) * t5) / total, rel=1e-3)
    # DFL: with L = log(e^20 + 15), CE(bin 0) = L and CE(bin 1) = L − 20. p3's targets are 1 bin on each side
    # (loss ≈ 0); p4's (4, 4, 12, 12) px / 16 = 0.25, 0.25, 0.75, 0.75 bins: mean L − 10; p5's (12, 12, 4, 4) / 32 =
    # 0.375, 0.375, 0.125, 0.125 bins: mean L − 5.
    big = math.log(math.exp(20) + 15)
    expected_dfl = ((big - 20) * t3 + (big - 10) * t4 + (big - 5) * t5) / total
    assert parts["dfl"] == pytest.approx(1.5 * expected_dfl, rel=1e-4)
