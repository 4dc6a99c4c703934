"""What `predict.py` can write besides drawn images: per-class counts, crops of each detection, and the
detections as annotation lines (the COCO results file is `utils.ops.detections.write_results_json`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from utils.data.annotations import format_line
from utils.inference.draw import save_image
from utils.io.files import atomic_write_json, atomic_write_text
from utils.ops.detections import Detections


def count_text(found: Detections, class_names: list[str]) -> str:
    """`dog 2, cat 1` (most frequent first), or `none`."""
    counts = np.bincount(found.classes.astype(int), minlength=len(class_names))
    order = np.argsort(-counts, kind="stable")
    return ", ".join(f"{class_names[c]} {counts[c]}" for c in order if counts[c]) or "none"


class ClassCounts:
    """Per-class detection counts of each image or frame, and their totals."""

    def __init__(self, class_names: list[str] | tuple[str, ...], unit: str) -> None:
        self.class_names, self.unit = list(class_names), unit
        self.each: dict[str, dict[str, int]] = {}
        self.total = dict.fromkeys(self.class_names, 0)

    def add(self, key: str, found: Detections) -> None:
        counts = np.bincount(found.classes.astype(int), minlength=len(self.class_names))
        self.each[key] = {name: int(n) for name, n in zip(self.class_names, counts, strict=True) if n}
        for name, n in zip(self.class_names, counts, strict=True):
            self.total[name] += int(n)

    def total_text(self) -> str:
        return ", ".join(f"{name} {n}" for name, n in self.total.items() if n) or "none"

    def write(self, path: str | Path) -> None:
        """`{"total": {class: n}, "per_<unit>": {key: {class: n}}}` (classes with none left out per key)."""
        atomic_write_json(path, {"total": self.total, f"per_{self.unit}": self.each})


def save_crops(image_bgr: np.ndarray, found: Detections, class_names: list[str], folder: Path, stem: str
               ) -> list[Path]:
    """Each detection's pixels as `folder/<class>/<stem>_<k>.jpg`; boxes are rounded outwards."""
    written = []
    height, width = image_bgr.shape[:2]
    for k, ((x1, y1, x2, y2), class_id) in enumerate(zip(found.boxes, found.classes, strict=True)):
        left, top = max(int(np.floor(x1)), 0), max(int(np.floor(y1)), 0)
        right, bottom = min(int(np.ceil(x2)), width), min(int(np.ceil(y2)), height)
        if right <= left or bottom <= top:
            continue
        path = folder / class_names[int(class_id)] / f"{stem}_{k}.jpg"
        save_image(path, image_bgr[top:bottom, left:right])
        written.append(path)
    return written


def write_annotation_lines(path: str | Path, images: list[str], detections: list[Detections]) -> None:
    """The detections in the annotation-line format (`<image> x1,y1,x2,y2,class ...`), one line per image."""
    lines = [format_line(image, np.column_stack([found.boxes, found.classes]).reshape(-1, 5))
             for image, found in zip(images, detections, strict=True)]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
