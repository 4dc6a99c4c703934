"""Everything `get_map.py` writes for one evaluation: metrics.json, per_class.md, the plots and the gallery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from utils.config.report_config import ReportConfig
from utils.data.annotations import Annotation
from utils.data.images import read_bgr
from utils.evaluation.errors import DETECTION_KINDS, ErrorAnalysis, analyse_errors, worst_images
from utils.evaluation.matching import Matching
from utils.evaluation.metrics import class_curve, evaluate_detections, format_metrics_table
from utils.evaluation.plots import (
    draw_outcomes,
    plot_ap_bars,
    plot_confusion_matrix,
    plot_error_breakdown,
    plot_pr_curves,
    save_gallery,
)
from utils.io.files import atomic_write_json, atomic_write_text
from utils.ops.detections import Detections

PLOT_FILES = ("pr_curves.png", "ap_per_class.png", "confusion_matrix.png", "errors.png", "worst_images.jpg")


def format_errors(counts: dict[str, int], pr_score: float) -> str:
    counted = counts["true_positive"] + counts["false_positives"]
    share = {k: f"{counts[k] / max(counts['false_positives'], 1):.0%}" for k in DETECTION_KINDS[1:]}
    return "\n".join([
        f"errors at score ≥ {pr_score:g}, IoU 0.5: {counted} detections, {counts['true_positive']} true positives, "
        f"{counts['false_positives']} false positives, {counts['missed']} missed objects",
        "false positives: " + ", ".join(f"{k.replace('_', ' ')} {counts[k]} ({share[k]})" for k in DETECTION_KINDS[1:]),
    ])


def write_report(out_dir: str | Path, annotations: list[Annotation], detections: list[Detections],
                 class_names: list[str], options: ReportConfig | None = None) -> dict:
    """Evaluate `detections` (one per annotation, in order) and write every output into `out_dir`.

    Returns:
        the metrics written to metrics.json (with `errors`, `confusion_matrix` and `outputs`).
    """
    options = options or ReportConfig()
    out_dir = Path(out_dir)
    ground_truth = [a.ground_truth() for a in annotations]
    matching = Matching.build(detections, ground_truth)
    metrics = evaluate_detections(detections, ground_truth, class_names, options.pr_score, options.voc_iou,
                                  options.coco_engine, matching=matching)
    analysis = analyse_errors(matching, len(class_names), options.pr_score)
    metrics["errors"] = analysis.counts()
    metrics["confusion_matrix"] = {"rows_true": [*class_names, "background"],
                                   "columns_predicted": [*class_names, "missed"],
                                   "counts": analysis.confusion.tolist()}
    outputs = ["metrics.json", "per_class.md"]
    if options.plots:
        outputs += draw_report(out_dir, annotations, detections, class_names, matching, metrics, analysis,
                               options.gallery)
    metrics["outputs"] = outputs
    atomic_write_json(out_dir / "metrics.json", metrics)
    atomic_write_text(out_dir / "per_class.md", format_metrics_table(metrics) + "\n\n"
                      + format_errors(metrics["errors"], options.pr_score) + "\n")
    return metrics


def draw_report(out_dir: Path, annotations: list[Annotation], detections: list[Detections],
                class_names: list[str], matching: Matching, metrics: dict, analysis: ErrorAnalysis,
                gallery_size: int) -> list[str]:
    """Write the PNGs; returns the names written (the gallery only when some image could be read)."""
    at_50 = matching.match(0.5)
    per_class = metrics["per_class"]
    curves, points = {}, {}
    for class_id, name in enumerate(class_names):
        if per_class[name]["ap50"] is None:
            continue
        _, recall, precision = class_curve(matching, at_50, class_id)
        curves[name] = (recall, precision, per_class[name]["ap50"])
        points[name] = (per_class[name]["recall"], per_class[name]["precision"])
    plot_pr_curves(curves, out_dir / "pr_curves.png", points)
    plot_ap_bars(per_class, out_dir / "ap_per_class.png")
    plot_confusion_matrix(analysis.confusion, class_names, out_dir / "confusion_matrix.png")
    plot_error_breakdown(metrics["errors"], out_dir / "errors.png")
    written = list(PLOT_FILES[:4])

    starts = np.concatenate([[0], np.cumsum([len(d.scores) for d in detections])])
    tiles = []
    for index in worst_images(analysis, len(annotations)):
        if len(tiles) == gallery_size:
            break
        path = annotations[index].image_path
        try:
            image = read_bgr(path)
        except (OSError, tf.errors.OpError):  # missing or unreadable: the gallery shows the next worst
            continue
        kinds = analysis.detection_kind[starts[index]:starts[index + 1]]
        false_positives = int(np.sum(kinds > 0))
        missed = analysis.missed[matching.ground_truth.image == index]  # same order as ground_truth()
        drawn = draw_outcomes(image, annotations[index].ground_truth(), missed, detections[index], kinds,
                              class_names)
        name = Path(annotations[index].image_path).name
        tiles.append((drawn, f"{name}: {false_positives} FP, {missed.sum()} missed"))
    if tiles:
        save_gallery(tiles, out_dir / "worst_images.jpg")
        written.append(PLOT_FILES[4])
    return written
