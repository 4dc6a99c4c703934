import contextlib
import io

import numpy as np
import pytest

from utils.evaluation.errors import analyse_errors, worst_images
from utils.evaluation.matching import Matching
from utils.evaluation.metrics import (
    Detections,
    average_precision,
    coco_metrics,
    evaluate_detections,
    precision_recall_at,
    voc_ap_per_class,
)


def dets(boxes, scores, classes) -> Detections:
    return Detections(np.asarray(boxes, float).reshape(-1, 4), np.asarray(scores, float), np.asarray(classes, int))


# Two images, two classes. Ground truth rows: x1, y1, x2, y2, class, difficult.
HAND_TRUTH = [
    np.array([[0, 0, 10, 10, 0, 0], [20, 20, 30, 30, 0, 1], [40, 40, 50, 50, 0, 0]], float),  # image A
    np.array([[0, 0, 20, 20, 0, 0]], float),  # image B
]
HAND_DETECTIONS = [
    dets([[0, 0, 10, 10],    # 0.95 class 0: takes box 1 → TP
          [20, 20, 30, 30],  # 0.90 class 0: on the difficult box → ignored
          [1, 0, 10, 10],    # 0.85 class 0: best box 1 (IoU 0.9) already taken → duplicate
          [60, 60, 70, 70],  # 0.70 class 0: overlaps nothing → background
          [40, 40, 50, 50]], # 0.60 class 0: takes box 3 → TP
         [0.95, 0.9, 0.85, 0.7, 0.6], [0, 0, 0, 0, 0]),
    dets([[0, 0, 20, 20],    # 0.80 class 0: takes box 4 → TP
          [0, 0, 20, 19],    # 0.75 class 1: IoU 0.95 with a class-0 box → class confusion
          [10, 0, 30, 20]],  # 0.65 class 0: IoU 1/3 with box 4 → localisation
         [0.8, 0.75, 0.65], [0, 1, 0]),
]


def test_voc_aps_by_hand_with_a_difficult_box_and_a_duplicate():
    # Class 0 in score order without the ignored detection: T F T F F T over 3 counted boxes.
    # precision 1, 1/2, 2/3, 1/2, 2/5, 1/2 at recall 1/3, 1/3, 2/3, 2/3, 2/3, 1.
    # All-point: 1/3·1 + 1/3·2/3 + 1/3·1/2 = 13/18.
    # 11-point: t ≤ 0.3 → 1 (4 points), 0.4–0.6 → 2/3 (3 points), ≥ 0.7 → 1/2 (4 points) → 8/11.
    aps = voc_ap_per_class(HAND_DETECTIONS, HAND_TRUTH, 2)
    assert aps[0] == pytest.approx(13 / 18, abs=1e-15) and np.isnan(aps[1])
    assert voc_ap_per_class(HAND_DETECTIONS, HAND_TRUTH, 2, use_07_metric=True)[0] == pytest.approx(8 / 11, abs=1e-15)
    # Without the difficult rule the same detections give T T F T F F T over 4 boxes: a different AP.
    plain = [g[:, :5] for g in HAND_TRUTH]
    assert voc_ap_per_class(HAND_DETECTIONS, plain, 2)[0] == pytest.approx(0.25 + 0.25 + 0.25 * 3 / 4 + 0.25 * 4 / 7)


def test_difficult_box_is_never_a_miss():
    only_easy_hits = [dets([[0, 0, 10, 10], [40, 40, 50, 50]], [0.9, 0.8], [0, 0]), dets([[0, 0, 20, 20]], [0.7], [0])]
    assert voc_ap_per_class(only_easy_hits, HAND_TRUTH, 1)[0] == 1.0


def test_error_breakdown_and_confusion_matrix_by_hand():
    matching = Matching.build(HAND_DETECTIONS, HAND_TRUTH)
    analysis = analyse_errors(matching, 2, pr_score=0.5)
    assert analysis.counts() == {"true_positive": 3, "duplicate": 1, "class_confusion": 1, "localisation": 1,
                                 "background": 1, "false_positives": 4, "missed": 0}
    # rows: true class 0, 1, background; columns: predicted 0, 1, missed.
    np.testing.assert_array_equal(analysis.confusion, [[3, 1, 0], [0, 0, 0], [3, 0, 0]])
    np.testing.assert_array_equal(analysis.image_errors, [2, 2])
    # At 0.82 only the first three detections count: one hit, one duplicate, boxes 3 and 4 missed.
    high = analyse_errors(matching, 2, pr_score=0.82)
    assert high.counts()["true_positive"] == 1 and high.counts()["duplicate"] == 1 and high.counts()["missed"] == 2
    np.testing.assert_array_equal(high.confusion, [[1, 0, 2], [0, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(worst_images(high, 5), [0, 1])  # A: 1 FP + 1 missed; B: 1 missed


def test_precision_recall_with_difficult_and_score_threshold():
    # At 0.82: counted 0.95 (TP) and 0.85 (duplicate) → P 1/2, R 1/3, F1 2/5. At 0.5: P 3/6, R 1, F1 2/3.
    np.testing.assert_allclose(precision_recall_at(HAND_DETECTIONS, HAND_TRUTH, 2, 0.82)[0], [1 / 2, 1 / 3, 2 / 5])
    np.testing.assert_allclose(precision_recall_at(HAND_DETECTIONS, HAND_TRUTH, 2, 0.5)[0], [1 / 2, 1, 2 / 3])


def test_the_f1_curve_by_hand_and_its_peak():
    from utils.evaluation.metrics import best_f1_score, mean_f1_by_score

    # Class 0 only (class 1 has no ground truth), 3 boxes. Counted at ≥ t (the difficult hit ignored):
    # t ≤ 0.60: 3 hits of 6 → F1 2/3; 0.65: 2 of 5 → 1/2; 0.70: 2 of 4 → 4/7; 0.75–0.80: 2 of 3 → 2/3;
    # 0.85: 1 of 2 → 2/5; 0.90–0.95: 1 of 1 → 1/2.
    matching = Matching.build(HAND_DETECTIONS, HAND_TRUTH)
    thresholds = np.array([0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])
    np.testing.assert_allclose(mean_f1_by_score(matching, 2, thresholds),
                               [2 / 3, 1 / 2, 4 / 7, 2 / 3, 2 / 3, 2 / 5, 1 / 2, 1 / 2])
    assert best_f1_score(matching, 2, np.array([0.65, 0.7, 0.75, 0.85])) == (0.75, pytest.approx(2 / 3))
    assert best_f1_score(matching, 2)[0] == 0.05  # ties: the lowest threshold


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


@pytest.mark.parametrize("engine", ["faster-coco-eval", "pycocotools"])
def test_coco_perfect_and_empty(engine):
    gt = [np.array([[0, 0, 40, 40, 0], [50, 50, 90, 100, 1]], float), np.array([[5, 5, 25, 30, 1]], float)]
    perfect = [dets(g[:, :4], [0.9] * len(g), g[:, 4]) for g in gt]
    result = coco_metrics(perfect, gt, 2, engine)
    assert result["map50_95"] == pytest.approx(1.0) and result["ap50"] == pytest.approx(1.0)
    assert result["ap_large"] is None  # no object above 96² px: COCO's −1, reported as n/a
    empty = [dets([], [], []) for _ in gt]
    assert coco_metrics(empty, gt, 2, engine)["map50_95"] == 0.0


def test_evaluate_detections_keys():
    gt = [np.array([[0, 0, 10, 10, 0]], float)]
    metrics = evaluate_detections([dets([[0, 0, 10, 10]], [0.9], [0])], gt, ["a", "b"], voc_iou_thresholds=(0.75,))
    assert metrics["map50"] == pytest.approx(1.0) and metrics["voc07_map50"] == pytest.approx(1.0)
    assert metrics["voc_map"] == {"0.75": 1.0} and metrics["best_f1"] == {"score": 0.05, "f1": 1.0}
    assert metrics["per_class"] == {
        "a": {"ap50": 1.0, "voc07_ap50": 1.0, "ap50_95": 1.0, "ground_truth": 1, "difficult": 0, "precision": 1.0,
              "recall": 1.0, "f1": 1.0},
        "b": {"ap50": None, "voc07_ap50": None, "ap50_95": None, "ground_truth": 0, "difficult": 0,
              "precision": None, "recall": None, "f1": None},
    }


def random_case(seed: int, images: int = 300, classes: int = 4):
    """Hundreds of boxes: detections near true boxes (jittered, sometimes the wrong class), some pure noise,
    random scores; one box in ten difficult."""
    rng = np.random.default_rng(seed)
    truth, found = [], []
    for _ in range(images):
        count = int(rng.integers(0, 6))
        xy = rng.uniform(0, 400, (count, 2))
        wh = rng.uniform(4, 200, (count, 2))
        truth.append(np.column_stack([xy, xy + wh, rng.integers(0, classes, count), rng.random(count) < 0.1]))
        source = rng.integers(0, max(count, 1), int(rng.integers(0, 12))) if count else np.zeros(0, int)
        jitter = rng.normal(0, 0.15, (len(source), 4)) * np.tile(wh[source] if count else np.zeros((0, 2)), 2)
        boxes = truth[-1][source, :4] + jitter if count else np.zeros((0, 4))
        labels = np.where(rng.random(len(source)) < 0.8, truth[-1][source, 4] if count else 0,
                          rng.integers(0, classes, len(source)))
        noise_xy = rng.uniform(0, 400, (3, 2))
        boxes = np.vstack([boxes, np.column_stack([noise_xy, noise_xy + rng.uniform(4, 100, (3, 2))])])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        labels = np.concatenate([labels, rng.integers(0, classes, 3)])
        found.append(dets(boxes, rng.random(len(boxes)), labels))
    return found, truth


def reference_voc_ap(found, truth, class_id, iou_threshold):
    """A straightforward VOC-devkit loop: one detection at a time, in score order over all images."""
    records = [(d.scores[k], i, d.boxes[k]) for i, d in enumerate(found) for k in range(len(d.scores))
               if d.classes[k] == class_id]
    records.sort(key=lambda r: -r[0])
    taken = [np.zeros(len(t), bool) for t in truth]
    npos = sum(int(np.sum((t[:, 4] == class_id) & (t[:, 5] == 0))) for t in truth)
    tp, fp = [], []
    for _, image, box in records:
        best, best_iou = -1, -np.inf
        for j, row in enumerate(truth[image]):
            if row[4] != class_id:
                continue
            iw = max(min(box[2], row[2]) - max(box[0], row[0]), 0.0)
            ih = max(min(box[3], row[3]) - max(box[1], row[1]), 0.0)
            union = (box[2] - box[0]) * (box[3] - box[1]) + (row[2] - row[0]) * (row[3] - row[1]) - iw * ih
            if iw * ih / union > best_iou:
                best, best_iou = j, iw * ih / union
        if best >= 0 and best_iou >= iou_threshold:
            if truth[image][best, 5]:
                continue
            if not taken[image][best]:
                taken[image][best] = True
                tp.append(1)
                fp.append(0)
            else:
                tp.append(0)
                fp.append(1)
        else:
            tp.append(0)
            fp.append(1)
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    recall = tp / npos
    precision = tp / np.maximum(tp + fp, 1e-300)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


@pytest.mark.parametrize("iou_threshold", [0.5, 0.7])
def test_voc_ap_equals_a_straightforward_devkit_loop(iou_threshold):
    found, truth = random_case(seed=1)
    assert sum(len(t) for t in truth) > 500
    ours = voc_ap_per_class(found, truth, 4, iou_threshold)
    for class_id in range(4):
        assert ours[class_id] == pytest.approx(reference_voc_ap(found, truth, class_id, iou_threshold), abs=1e-9)


def pycocotools_reference(found, truth, classes):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    annotations = []
    for image, rows in enumerate(truth):
        for x1, y1, x2, y2, c, difficult in rows:
            annotations.append({"id": len(annotations) + 1, "image_id": image, "category_id": int(c),
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                "iscrowd": int(difficult)})
    results = [{"image_id": image, "category_id": int(c), "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s}
               for image, d in enumerate(found)
               for (x1, y1, x2, y2), s, c in zip(d.boxes, d.scores, d.classes, strict=True)]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": [{"id": i} for i in range(len(truth))], "annotations": annotations,
                        "categories": [{"id": c} for c in range(classes)]}
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


@pytest.mark.parametrize("engine", ["faster-coco-eval", "pycocotools"])
def test_coco_figures_equal_pycocotools(engine):
    found, truth = random_case(seed=2)
    expected = pycocotools_reference(found, truth, 4)
    ours = coco_metrics(found, truth, 4, engine)
    names = ("map50_95", "ap50", "ap75", "ap_small", "ap_medium", "ap_large")
    assert 0.05 < ours["map50_95"] < 0.95
    for name, value in zip(names, expected[:6], strict=True):
        assert ours[name] == pytest.approx(value, abs=1e-6), name
