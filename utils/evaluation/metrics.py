"""Detection metrics: VOC AP (all-point or 11-point) at any IoU threshold, precision / recall / F1 at a score
threshold, and COCO AP through pycocotools' evaluation.

All consume detections in original-image pixels and the annotation lines' boxes (DESIGN.md); none re-reads XML.
Ground truth per image is (M, 5) x1, y1, x2, y2, class, or (M, 6) with a difficult flag (VOC's rule applies).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from utils.config.report_config import COCO_ENGINES, ReportConfig
from utils.config.settings import field_default
from utils.evaluation.matching import FlatGroundTruth, Matches, Matching
from utils.ops.detections import Detections, results_to_json

PR_SCORE = field_default(ReportConfig, "pr_score")


def average_precision(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool = False) -> float:
    """Area under the precision-recall curve: VOC2010+ all-point interpolation, or VOC2007's 11 points."""
    if use_07_metric:
        return float(np.mean([precision[recall >= t].max(initial=0.0) for t in np.linspace(0, 1, 11)]))
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the precision envelope
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def class_curve(matching: Matching, matches: Matches, class_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One class's scores, recall and precision in descending score order (ignored detections left out)."""
    ranked = matching.order
    keep = (matching.detections.classes[ranked] == class_id) & ~matches.ignored[ranked]
    ranked = ranked[keep]
    num_gt = int(matching.ground_truth.counts(class_id + 1)[class_id])
    true_positives = np.cumsum(matches.true_positive[ranked])
    recall = true_positives / max(num_gt, 1)
    precision = true_positives / np.arange(1, len(ranked) + 1)
    return matching.detections.scores[ranked], recall, precision


def ap_per_class(matching: Matching, matches: Matches, num_classes: int, use_07_metric: bool = False) -> np.ndarray:
    """AP of each class from one matching; NaN for a class without (non-difficult) ground truth."""
    counts = matching.ground_truth.counts(num_classes)
    aps = np.full(num_classes, np.nan)
    for class_id in np.flatnonzero(counts):
        _, recall, precision = class_curve(matching, matches, int(class_id))
        aps[class_id] = average_precision(recall, precision, use_07_metric) if len(recall) else 0.0
    return aps


def voc_ap_per_class(
    detections: list[Detections],
    ground_truth: list[np.ndarray],
    num_classes: int,
    iou_threshold: float = 0.5,
    use_07_metric: bool = False,
) -> np.ndarray:
    """AP of each class (NaN for a class with no ground truth), over images given in the same order in both lists."""
    matching = Matching.build(detections, ground_truth)
    return ap_per_class(matching, matching.match(iou_threshold), num_classes, use_07_metric)


def precision_recall_table(matching: Matching, num_classes: int, score_threshold: float,
                           iou_threshold: float = 0.5) -> np.ndarray:
    """(C, 3) precision, recall and F1 of each class counting only detections scoring at least `score_threshold`
    (NaN rows for classes without ground truth; precision 0 when nothing is detected)."""
    matches = matching.match(iou_threshold, min_score=score_threshold)
    dets = matching.detections
    counted = (dets.scores >= score_threshold) & ~matches.ignored
    kept = np.bincount(dets.classes[counted], minlength=num_classes)[:num_classes]
    hits = np.bincount(dets.classes[matches.true_positive], minlength=num_classes)[:num_classes]
    num_gt = matching.ground_truth.counts(num_classes)
    precision = np.divide(hits, kept, out=np.zeros(num_classes), where=kept > 0)
    recall = np.divide(hits, num_gt, out=np.zeros(num_classes), where=num_gt > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(num_classes),
                   where=precision + recall > 0)
    table = np.stack([precision, recall, f1], axis=1)
    table[num_gt == 0] = np.nan
    return table


F1_SCORES = np.round(np.arange(0.05, 0.951, 0.05), 2)  # the score thresholds the F1 curve is read at


def mean_f1_by_score(matching: Matching, num_classes: int, thresholds: np.ndarray = F1_SCORES,
                     iou_threshold: float = 0.5) -> np.ndarray:
    """The mean over classes (with ground truth) of F1 at each score threshold."""
    curve = []
    for threshold in thresholds:
        f1 = precision_recall_table(matching, num_classes, float(threshold), iou_threshold)[:, 2]
        curve.append(float(np.nanmean(f1)) if not np.isnan(f1).all() else 0.0)
    return np.asarray(curve)


def best_f1_score(matching: Matching, num_classes: int, thresholds: np.ndarray = F1_SCORES) -> tuple[float, float]:
    """(score threshold, mean F1) where the mean F1 over classes peaks on `thresholds` (the lowest of ties): a
    prediction threshold that balances precision and recall on these images."""
    curve = np.round(mean_f1_by_score(matching, num_classes, thresholds), 9)
    best = int(np.argmax(curve))
    return float(thresholds[best]), float(curve[best])


def precision_recall_at(
    detections: list[Detections], ground_truth: list[np.ndarray], num_classes: int, score_threshold: float,
    iou_threshold: float = 0.5,
) -> np.ndarray:
    """`precision_recall_table` from per-image lists."""
    return precision_recall_table(Matching.build(detections, ground_truth), num_classes, score_threshold,
                                  iou_threshold)


def coco_dataset(ground_truth: list[np.ndarray], num_classes: int) -> dict:
    """COCO ground truth, images numbered by list position; difficult boxes become `iscrowd` regions, COCO's way
    of ignoring an object (a detection on it is neither a hit nor a false positive)."""
    flat = FlatGroundTruth.from_list(ground_truth)
    wh = flat.boxes[:, 2:] - flat.boxes[:, :2]
    annotations = [
        {"id": index + 1, "image_id": int(image), "category_id": int(class_id), "bbox": [x, y, w, h],
         "area": w * h, "iscrowd": int(difficult)}
        for index, (image, class_id, difficult, (x, y), (w, h)) in enumerate(zip(
            flat.image.tolist(), flat.classes.tolist(), flat.difficult.tolist(), flat.boxes[:, :2].tolist(),
            wh.tolist(), strict=True))
    ]
    return {"images": [{"id": i} for i in range(len(ground_truth))], "annotations": annotations,
            "categories": [{"id": c, "name": str(c)} for c in range(num_classes)]}


def coco_metrics(
    detections: list[Detections], ground_truth: list[np.ndarray], num_classes: int,
    engine: str = "faster-coco-eval",
) -> dict[str, float | None | list]:
    """COCO AP@[.5:.95], AP50, AP75, AP small/medium/large (None where COCO has nothing to measure) and per-class
    AP@[.5:.95] from COCO's evaluator.

    `engine` "pycocotools" is the reference implementation; "faster-coco-eval" runs the same algorithm in C++
    (7× faster on 5,000 images; the tests check both give the same figures).
    """
    if engine == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    elif engine == "faster-coco-eval":
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
    else:
        raise ValueError(f"COCO engine must be one of {COCO_ENGINES}, got {engine!r}")
    names = ("map50_95", "ap50", "ap75", "ap_small", "ap_medium", "ap_large")
    dataset, results = coco_dataset(ground_truth, num_classes), results_to_json(detections)
    if not dataset["annotations"] or not results:
        return {**dict.fromkeys(names, 0.0), "per_class": [float("nan")] * num_classes}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(results), iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # (IoU, recall, class) at area "all", 100 detections
    per_class = [float(np.mean(p[p > -1])) if np.any(p > -1) else float("nan")
                 for p in np.moveaxis(precision, 2, 0)]
    # COCO reports −1 where nothing is there to measure (e.g. no small objects): None in our figures.
    return {**{name: float(value) if value >= 0 else None for name, value in zip(names, evaluator.stats[:6],
                                                                                   strict=True)},
            "per_class": per_class}


def nan_mean(values: np.ndarray) -> float:
    """Mean over classes that have ground truth (NaN entries are those without); 0 when none has."""
    return float(np.nanmean(values)) if np.any(~np.isnan(values)) else 0.0


def optional(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def evaluate_detections(
    detections: list[Detections],
    ground_truth: list[np.ndarray],
    class_names: list[str],
    pr_score: float = PR_SCORE,
    voc_iou_thresholds: tuple[float, ...] = (),
    coco_engine: str = COCO_ENGINES[0],
    matching: Matching | None = None,
) -> dict:
    """Every figure `get_map.py` reports.

    Returns:
        `map50` (VOC all-point at IoU 0.5), `voc07_map50` (11-point), `map50_95` and the other COCO figures,
        `voc_map` at each extra IoU threshold, precision / recall / F1 at IoU 0.5 counting detections scoring at
        least `pr_score` (mean over classes), and `per_class` entries of all of these.
    """
    num_classes = len(class_names)
    matching = matching or Matching.build(detections, ground_truth)
    at_50 = matching.match(0.5)
    ap50 = ap_per_class(matching, at_50, num_classes)
    ap50_07 = ap_per_class(matching, at_50, num_classes, use_07_metric=True)
    extra = {f"{t:g}": nan_mean(ap_per_class(matching, matching.match(t), num_classes)) for t in voc_iou_thresholds}
    coco = coco_metrics(detections, ground_truth, num_classes, coco_engine)
    pr = precision_recall_table(matching, num_classes, pr_score)
    best_score, best_f1 = best_f1_score(matching, num_classes)
    with_gt = ~np.isnan(pr[:, 0])
    gt_counts = matching.ground_truth.counts(num_classes)
    difficult_counts = np.bincount(matching.ground_truth.classes[matching.ground_truth.difficult],
                                   minlength=num_classes)[:num_classes]
    return {
        "map50": nan_mean(ap50),
        "map50_95": coco["map50_95"] or 0.0,
        "voc07_map50": nan_mean(ap50_07),
        **{f"coco_{name}": coco[name] for name in ("ap50", "ap75", "ap_small", "ap_medium", "ap_large")},
        "voc_map": extra,
        "pr_score": pr_score,
        "precision": float(pr[with_gt, 0].mean()) if with_gt.any() else 0.0,
        "recall": float(pr[with_gt, 1].mean()) if with_gt.any() else 0.0,
        "f1": float(pr[with_gt, 2].mean()) if with_gt.any() else 0.0,
        "best_f1": {"score": best_score, "f1": best_f1},
        "images": matching.num_images,
        "detections": len(matching.detections.scores),
        "per_class": {
            name: {"ap50": optional(ap50[c]), "voc07_ap50": optional(ap50_07[c]),
                   "ap50_95": optional(coco["per_class"][c]), "ground_truth": int(gt_counts[c]),
                   "difficult": int(difficult_counts[c]),
                   **{key: optional(pr[c, i]) for i, key in enumerate(("precision", "recall", "f1"))}}
            for c, name in enumerate(class_names)
        },
    }


def format_metrics_table(metrics: dict) -> str:
    """Markdown table of per-class AP@0.5 and the headline figures."""
    def cell(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    threshold = metrics["pr_score"]
    rows = [f"| class | ground truth | AP@0.5 | AP@0.5 (VOC07) | AP@[.5:.95] | P@{threshold:g} | R@{threshold:g} "
            f"| F1@{threshold:g} |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, entry in metrics["per_class"].items():
        rows.append(f"| {name} | {entry['ground_truth']} | {cell(entry['ap50'])} | {cell(entry['voc07_ap50'])} "
                    f"| {cell(entry['ap50_95'])} | {cell(entry['precision'])} | {cell(entry['recall'])} "
                    f"| {cell(entry['f1'])} |")
    rows += [
        "",
        f"mAP@0.5 (VOC all-point): {metrics['map50']:.4f}",
        f"mAP@0.5 (VOC07 11-point): {metrics['voc07_map50']:.4f}",
        f"mAP@[.5:.95] (COCO):      {metrics['map50_95']:.4f}",
        "COCO AP50 / AP75 / small / medium / large: " + " / ".join(
            cell(metrics[f"coco_{name}"]) for name in ("ap50", "ap75", "ap_small", "ap_medium", "ap_large")),
        *(f"mAP@{threshold} (VOC all-point): {value:.4f}" for threshold, value in metrics["voc_map"].items()),
        f"precision / recall at score ≥ {threshold:g} (mean over classes): {metrics['precision']:.4f} / "
        f"{metrics['recall']:.4f}",
        f"best mean F1 {metrics['best_f1']['f1']:.4f} at score ≥ {metrics['best_f1']['score']:g} (a prediction "
        f"threshold to consider: --score-threshold)",
    ]
    return "\n".join(rows)
