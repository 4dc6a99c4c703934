"""Dataset doctor: what is in a set of annotation lines and what is wrong with it, before anyone trains."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from utils.data.anchors import anchor_fit, image_size
from utils.data.annotations import Annotation
from utils.data.images import UPRIGHT, exif_orientation
from utils.data.sample_check import find_unreadable

TINY_SIDE = 4.0  # pixels of the input image: a box this small at the training size is hard to learn
SIZE_BINS = ((0, 32), (32, 96), (96, float("inf")))  # COCO's small / medium / large, by sqrt(area) in input px


@dataclass
class DatasetReport:
    """Counts and problems of one annotation set; every problem entry names the image."""

    images: int = 0
    boxes: int = 0
    per_class: Counter = field(default_factory=Counter)
    difficult_per_class: Counter = field(default_factory=Counter)
    without_boxes: int = 0
    size_bins: Counter = field(default_factory=Counter)
    problems: dict[str, list[str]] = field(default_factory=dict)
    anchor_recall: float | None = None

    def add(self, kind: str, entry: str) -> None:
        self.problems.setdefault(kind, []).append(entry)

    @property
    def errors(self) -> int:
        """Problems that make boxes wrong (not merely unusual)."""
        serious = ("missing or unreadable images", "unknown class ids", "boxes outside the image",
                   "zero-area boxes")
        return sum(len(self.problems.get(kind, [])) for kind in serious)


def diagnose(annotations: list[Annotation], class_names: list[str], input_size: int = 416,
             anchors: np.ndarray | None = None, anchor_t: float = 4.0) -> DatasetReport:
    """Per-class counts, images without boxes, duplicates, tiny / zero-area / out-of-image boxes, unknown classes,
    images that are missing or fail to decode (every image is decoded, in parallel, as training would), images
    with an EXIF orientation (read rotated, as viewers show them), the box-size distribution at `input_size` and
    (with `anchors`, input pixels) the anchors' best-possible recall."""
    report = DatasetReport(images=len(annotations))
    present = sorted({a.image_path for a in annotations if os.path.isfile(a.image_path)})
    undecodable = set(find_unreadable(present)) if present else set()
    seen_paths: Counter = Counter(a.image_path for a in annotations)
    for path, count in seen_paths.items():
        if count > 1:
            report.add("images listed more than once", f"{path} ({count} lines)")
    shapes = []
    for annotation in annotations:
        boxes, hard = annotation.boxes, annotation.difficult_boxes
        report.boxes += len(boxes) + len(hard)
        report.without_boxes += len(boxes) == 0 and len(hard) == 0
        path = annotation.image_path
        try:
            width, height = image_size(path) if os.path.isfile(path) and path not in undecodable else (None, None)
        except (OSError, ValueError):
            width = height = None
        if width is None:
            report.add("missing or unreadable images", path)
        elif (orientation := exif_orientation(path)) != UPRIGHT:
            report.add("images with an EXIF orientation (used as viewers show them)",
                       f"{path}: orientation {orientation}, {width}×{height} as viewed")
        everything = np.concatenate([boxes, hard]) if len(hard) else boxes
        classes = everything[:, 4].astype(int)
        for class_id in classes[(classes < 0) | (classes >= len(class_names))]:
            report.add("unknown class ids", f"{path}: class {class_id} (the list has {len(class_names)})")
        known = (classes >= 0) & (classes < len(class_names))
        report.per_class.update(class_names[c] for c in boxes[:, 4].astype(int) if 0 <= c < len(class_names))
        report.difficult_per_class.update(class_names[c] for c in hard[:, 4].astype(int)
                                          if 0 <= c < len(class_names))
        wh = everything[:, 2:4] - everything[:, :2]
        for row in everything[(wh <= 0).any(axis=1)]:
            report.add("zero-area boxes", f"{path}: {row[:4].tolist()}")
        if len(np.unique(everything, axis=0)) < len(everything):
            report.add("duplicate boxes", f"{path}: {len(everything) - len(np.unique(everything, axis=0))} repeated")
        if width is None or len(everything) == 0:
            continue
        outside = (everything[:, 0] < 0) | (everything[:, 1] < 0) | (everything[:, 2] > width) | \
            (everything[:, 3] > height)
        for row in everything[outside]:
            report.add("boxes outside the image", f"{path}: {row[:4].tolist()} in {width}×{height}")
        scaled = wh[known & (wh > 0).all(axis=1)] * (input_size / max(width, height))
        for row in scaled[(scaled < TINY_SIDE).any(axis=1)]:
            report.add(f"tiny boxes (< {TINY_SIDE:g} px at {input_size})", f"{path}: {row.round(1).tolist()}")
        side = np.sqrt(scaled.prod(axis=1))
        for low, high in SIZE_BINS:
            report.size_bins[f"{low}-{high:g}"] += int(((side >= low) & (side < high)).sum())
        shapes.append(scaled)
    if anchors is not None and shapes:
        report.anchor_recall = anchor_fit(np.concatenate(shapes), anchors, anchor_t).best_possible_recall
    return report


def format_report(report: DatasetReport, class_names: list[str], input_size: int, shown: int = 5) -> str:
    """Readable text: counts per class, the size distribution, the anchor recall, then each problem kind with its
    first `shown` entries."""
    lines = [f"{report.images} images, {report.boxes} boxes, {report.without_boxes} images without boxes", "",
             f"{'class':<20}{'boxes':>8}{'difficult':>11}"]
    lines += [f"{name[:19]:<20}{report.per_class[name]:>8}{report.difficult_per_class[name]:>11}"
              for name in class_names]
    empty = [name for name in class_names if not report.per_class[name]]
    if empty:
        lines.append(f"classes with no boxes: {', '.join(empty)}")
    total = sum(report.size_bins.values()) or 1
    labels = {"0-32": "small (< 32 px)", "32-96": "medium (32–96 px)", "96-inf": "large (≥ 96 px)"}
    lines += ["", f"box sizes at input {input_size} (sqrt of area): " + ", ".join(
        f"{labels[key]} {report.size_bins[key]} ({report.size_bins[key] / total:.0%})" for key in labels)]
    if report.anchor_recall is not None:
        verdict = "ok" if report.anchor_recall >= 0.98 else "low: try kmeans_for_anchors.py or --autoanchor"
        lines.append(f"anchors: best possible recall {report.anchor_recall:.4f} ({verdict})")
    lines.append("")
    if not report.problems:
        lines.append("no problems found")
    for kind, entries in report.problems.items():
        lines.append(f"{len(entries)} {kind}:")
        lines += [f"  {entry}" for entry in entries[:shown]]
        if len(entries) > shown:
            lines.append(f"  … and {len(entries) - shown} more")
    return "\n".join(lines)
