import numpy as np
import pytest

from utils.map import (
    Detections,
    average_precision,
    coco_metrics,
    evaluate_detections,
    precision_recall_at,
    voc_ap_per_class,
)


def dets(boxes, scores, classes) -> Detections:
    return Detections(np.asarray(boxes, float).reshape(-1, 4), np.asarray(scores, float), np.asarray(classes, int))


def test_voc_ap_hand_computed():
    gt = [np.array([[0, 0, 10, 10, 0], [20, 20, 30, 30, 0]], float)]
    # 0.9 hits box 1 (TP); 0.8 hits box 1 again (duplicate → FP); 0.7 hits box 2 (TP).
    found = [dets([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], [0.9, 0.8, 0.7], [0, 0, 0])]
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 → all-point AP = 0.5·1 + 0.5·2/3.
    assert voc_ap_per_class(found, gt, 1)[0] == pytest.approx(0.5 + 0.5 * 2 / 3)
    # 11-point: recall ≥ 0 … 0.5 → 1 (six points), ≥ 0.6 … 1.0 → 2/3 (five points).
    assert voc_ap_per_class(found, gt, 1, use_07_metric=True)[0] == pytest.approx((6 + 5 * 2 / 3) / 11)


def test_iou_threshold_and_class_mismatch():
    gt = [np.array([[0, 0, 10, 10, 0]], float)]
    shifted = [dets([[5, 0, 15, 10]], [0.9], [0])]  # IoU 50/150 = 1/3
    assert voc_ap_per_class(shifted, gt, 1, iou_threshold=0.3)[0] == pytest.approx(1.0)
    assert voc_ap_per_class(shifted, gt, 1, iou_threshold=0.5)[0] == 0.0
    wrong_class = [dets([[0, 0, 10, 10]], [0.9], [1])]
    aps = voc_ap_per_class(wrong_class, gt, 2)
    assert aps[0] == 0.0 and np.isnan(aps[1])  # class 1 has no ground truth


def test_average_precision_envelope():
    recall = np.array([0.25, 0.5, 0.5, 0.75])
    precision = np.array([1.0, 0.5, 0.667, 0.75])
    # envelope: 1, .75, .75, .75 over recall steps .25 each (recall never reaches 1).
    assert average_precision(recall, precision) == pytest.approx(0.25 * 1 + 0.5 * 0.75)


def test_coco_perfect_and_empty():
    gt = [np.array([[0, 0, 40, 40, 0], [50, 50, 90, 100, 1]], float), np.array([[5, 5, 25, 30, 1]], float)]
    perfect = [dets(g[:, :4], [0.9] * len(g), g[:, 4]) for g in gt]
    result = coco_metrics(perfect, gt, [(120, 120), (60, 60)], 2)
    assert result["map50_95"] == pytest.approx(1.0) and result["ap50"] == pytest.approx(1.0)
    empty = [dets([], [], []) for _ in gt]
    assert coco_metrics(empty, gt, [(120, 120), (60, 60)], 2)["map50_95"] == 0.0


def test_evaluate_detections_keys():
    gt = [np.array([[0, 0, 10, 10, 0]], float)]
    metrics = evaluate_detections([dets([[0, 0, 10, 10]], [0.9], [0])], gt, [(20, 20)], ["a", "b"])
    assert metrics["map50"] == pytest.approx(1.0) and metrics["voc07_map50"] == pytest.approx(1.0)
    assert metrics["per_class"] == {
        "a": {"ap50": 1.0, "ground_truth": 1, "precision": 1.0, "recall": 1.0, "f1": 1.0},
        "b": {"ap50": None, "ground_truth": 0, "precision": None, "recall": None, "f1": None},
    }


def test_precision_recall_at_a_score_threshold_by_hand():
    # Class 0: 3 ground-truth boxes; detections 0.9 (hit), 0.8 (miss: IoU 0), 0.6 (duplicate of the first hit),
    # 0.3 (hit). At 0.5: 1 TP of 3 kept → P 1/3, R 1/3. At 0.2: 2 TP of 4 → P 1/2, R 2/3, F1 4/7.
    gt = [np.array([[0, 0, 10, 10, 0], [20, 20, 30, 30, 0]], float), np.array([[0, 0, 8, 8, 0]], float)]
    det = [dets([[0, 0, 10, 10], [50, 50, 60, 60], [1, 0, 10, 10]], [0.9, 0.8, 0.6], [0, 0, 0]),
           dets([[0, 0, 8, 8]], [0.3], [0])]
    np.testing.assert_allclose(precision_recall_at(det, gt, 2, 0.5)[0], [1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(precision_recall_at(det, gt, 2, 0.2)[0], [1 / 2, 2 / 3, 4 / 7])
    assert np.isnan(precision_recall_at(det, gt, 2, 0.5)[1]).all()
    nothing = precision_recall_at([dets([], [], []), dets([], [], [])], gt, 2, 0.5)
    np.testing.assert_array_equal(nothing[0], [0.0, 0.0, 0.0])
