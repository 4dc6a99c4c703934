"""Detection metrics: VOC AP (all-point or 11-point) at an IoU threshold, and COCO AP through pycocotools.

Both consume detections in original-image pixels and the annotation lines' boxes (DESIGN.md); neither re-reads XML.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detections:
    """One image's detections: boxes (N, 4) x1, y1, x2, y2 in original pixels, scores (N,), classes (N,)."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) with every box in b (M, 4) → (N, M); continuous pixels, no +1."""
    a, b = a[:, None, :], b[None, :, :]
    inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-12)


def average_precision(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool = False) -> float:
    """Area under the precision-recall curve: VOC2010+ all-point interpolation, or VOC2007's 11 points."""
    if use_07_metric:
        return float(np.mean([precision[recall >= t].max(initial=0.0) for t in np.linspace(0, 1, 11)]))
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the precision envelope
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def match_image(det_boxes: np.ndarray, gt_boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy VOC matching in one image for one class; detections must be sorted by descending score.

    Returns:
        (N,) bool, true where the detection is a true positive.
    """
    true_positive = np.zeros(len(det_boxes), dtype=bool)
    if len(gt_boxes) == 0 or len(det_boxes) == 0:
        return true_positive
    overlaps = iou_matrix(det_boxes, gt_boxes)
    best_gt = overlaps.argmax(axis=1)
    best_iou = overlaps[np.arange(len(det_boxes)), best_gt]
    taken = np.zeros(len(gt_boxes), dtype=bool)
    for index in np.flatnonzero(best_iou >= iou_threshold):  # each detection needs the previous ones' claims
        if not taken[best_gt[index]]:
            taken[best_gt[index]] = True
            true_positive[index] = True
    return true_positive


def class_matches(
    detections: list[Detections], ground_truth: list[np.ndarray], class_id: int, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """One class's detections over all images: scores and true-positive flags, sorted by descending score, and
    the number of ground-truth boxes. Greedy matching goes by score, so any score cut keeps its flags."""
    scores, flags, num_gt = [], [], 0
    for det, gt in zip(detections, ground_truth, strict=True):
        gt_boxes = gt[gt[:, 4] == class_id, :4]
        num_gt += len(gt_boxes)
        mine = np.flatnonzero(det.classes == class_id)
        if len(mine) == 0:
            continue
        order = mine[np.argsort(-det.scores[mine], kind="stable")]
        scores.append(det.scores[order])
        flags.append(match_image(det.boxes[order], gt_boxes, iou_threshold))
    if not scores:
        return np.zeros(0), np.zeros(0, dtype=bool), num_gt
    scores_all, flags_all = np.concatenate(scores), np.concatenate(flags)
    order = np.argsort(-scores_all, kind="stable")
    return scores_all[order], flags_all[order], num_gt


def voc_ap_per_class(
    detections: list[Detections],
    ground_truth: list[np.ndarray],
    num_classes: int,
    iou_threshold: float = 0.5,
    use_07_metric: bool = False,
) -> np.ndarray:
    """AP of each class (NaN for a class with no ground truth), over images given in the same order in both lists.

    Args:
        detections: per image.
        ground_truth: per image, (M, 5) rows x1, y1, x2, y2, class.
    """
    if len(detections) != len(ground_truth):
        raise ValueError(f"{len(detections)} detection lists for {len(ground_truth)} images")
    aps = np.full(num_classes, np.nan)
    for class_id in range(num_classes):
        _, flags, num_gt = class_matches(detections, ground_truth, class_id, iou_threshold)
        if num_gt == 0:
            continue
        true_positives = np.cumsum(flags)
        false_positives = np.cumsum(~flags)
        recall = true_positives / num_gt
        precision = true_positives / np.maximum(true_positives + false_positives, np.finfo(np.float64).eps)
        aps[class_id] = average_precision(recall, precision, use_07_metric) if len(flags) else 0.0
    return aps


def precision_recall_at(
    detections: list[Detections], ground_truth: list[np.ndarray], num_classes: int, score_threshold: float,
    iou_threshold: float = 0.5,
) -> np.ndarray:
    """(C, 3) precision, recall and F1 of each class counting only detections scoring at least `score_threshold`
    (NaN rows for classes without ground truth; precision 0 when nothing is detected)."""
    table = np.full((num_classes, 3), np.nan)
    for class_id in range(num_classes):
        scores, flags, num_gt = class_matches(detections, ground_truth, class_id, iou_threshold)
        if num_gt == 0:
            continue
        kept = flags[scores >= score_threshold]
        precision = kept.sum() / len(kept) if len(kept) else 0.0
        recall = kept.sum() / num_gt
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        table[class_id] = precision, recall, f1
    return table


def coco_metrics(
    detections: list[Detections], ground_truth: list[np.ndarray], image_sizes: list[tuple[int, int]],
    num_classes: int,
) -> dict[str, float]:
    """COCO mAP@[.5:.95], AP50 and AP75 from pycocotools, with images numbered by their list position.

    Args:
        image_sizes: (height, width) per image.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for image_id, (gt, (height, width)) in enumerate(zip(ground_truth, image_sizes, strict=True)):
        images.append({"id": image_id, "height": int(height), "width": int(width)})
        for x1, y1, x2, y2, class_id in gt:
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": int(class_id),
                "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                "area": float((x2 - x1) * (y2 - y1)), "iscrowd": 0,
            })
    for image_id, det in enumerate(detections):
        for (x1, y1, x2, y2), score, class_id in zip(det.boxes, det.scores, det.classes, strict=True):
            results.append({"image_id": image_id, "category_id": int(class_id),
                            "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], "score": float(score)})
    if not annotations or not results:
        return {"map50_95": 0.0, "ap50": 0.0, "ap75": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {"images": images, "annotations": annotations,
                           "categories": [{"id": c, "name": str(c)} for c in range(num_classes)]}
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {"map50_95": float(evaluator.stats[0]), "ap50": float(evaluator.stats[1]), "ap75": float(evaluator.stats[2])}


def evaluate_detections(
    detections: list[Detections], ground_truth: list[np.ndarray], image_sizes: list[tuple[int, int]],
    class_names: list[str], pr_score_threshold: float = 0.5,
) -> dict:
    """Every figure `get_map.py` reports: VOC mAP@0.5 (all-point), VOC07 mAP@0.5, COCO figures, per-class AP, and
    precision/recall/F1 at IoU 0.5 counting detections that score at least `pr_score_threshold`."""
    num_classes = len(class_names)
    ap50 = voc_ap_per_class(detections, ground_truth, num_classes, 0.5)
    ap50_07 = voc_ap_per_class(detections, ground_truth, num_classes, 0.5, use_07_metric=True)
    coco = coco_metrics(detections, ground_truth, image_sizes, num_classes)
    pr = precision_recall_at(detections, ground_truth, num_classes, pr_score_threshold)
    with_gt = ~np.isnan(pr[:, 0])
    gt_counts = np.bincount(np.concatenate([g[:, 4] for g in ground_truth]).astype(int) if ground_truth else
                            np.zeros(0, int), minlength=num_classes)
    return {
        "map50": float(np.nanmean(ap50)) if np.any(~np.isnan(ap50)) else 0.0,
        "map50_95": coco["map50_95"],
        "voc07_map50": float(np.nanmean(ap50_07)) if np.any(~np.isnan(ap50_07)) else 0.0,
        "coco_ap50": coco["ap50"],
        "coco_ap75": coco["ap75"],
        "pr_score_threshold": pr_score_threshold,
        "precision": float(pr[with_gt, 0].mean()) if with_gt.any() else 0.0,
        "recall": float(pr[with_gt, 1].mean()) if with_gt.any() else 0.0,
        "images": len(ground_truth),
        "per_class": {
            name: {"ap50": None if np.isnan(ap50[c]) else float(ap50[c]), "ground_truth": int(gt_counts[c]),
                   **{key: None if np.isnan(pr[c, i]) else float(pr[c, i])
                      for i, key in enumerate(("precision", "recall", "f1"))}}
            for c, name in enumerate(class_names)
        },
    }


def format_metrics_table(metrics: dict) -> str:
    """Markdown table of per-class AP@0.5 and the headline figures."""
    def cell(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    threshold = metrics["pr_score_threshold"]
    rows = [f"| class | ground truth | AP@0.5 | P@{threshold:g} | R@{threshold:g} | F1@{threshold:g} |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, entry in metrics["per_class"].items():
        rows.append(f"| {name} | {entry['ground_truth']} | {cell(entry['ap50'])} | {cell(entry['precision'])} "
                    f"| {cell(entry['recall'])} | {cell(entry['f1'])} |")
    rows += [
        "",
        f"mAP@0.5 (VOC all-point): {metrics['map50']:.4f}",
        f"mAP@0.5 (VOC07 11-point): {metrics['voc07_map50']:.4f}",
        f"mAP@[.5:.95] (COCO):      {metrics['map50_95']:.4f}",
        f"precision / recall at score ≥ {threshold:g} (mean over classes): {metrics['precision']:.4f} / "
        f"{metrics['recall']:.4f}",
    ]
    return "\n".join(rows)
