"""Per-image detections and their COCO results-format file (what `get_map.py --detections` reads).

A results file is a JSON list of `{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`, boxes in
original-image pixels. `image_id` is the image's 0-based line index in the annotation file, or its path exactly
as written there; `category_id` is the class index.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.io.files import atomic_write_text, read_json


@dataclass(frozen=True)
class Detections:
    """One image's detections: boxes (N, 4) x1, y1, x2, y2 in original pixels, scores (N,), classes (N,)."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray


def results_to_json(detections: list[Detections], image_ids: list[int | str] | None = None) -> list[dict]:
    """COCO results entries; `image_id` is taken from `image_ids`, else the list position."""
    entries = []
    for position, found in enumerate(detections):
        image_id = position if image_ids is None else image_ids[position]
        for (x1, y1, x2, y2), score, class_id in zip(found.boxes.tolist(), found.scores.tolist(),
                                                     found.classes.tolist(), strict=True):
            entries.append({"image_id": image_id, "category_id": int(class_id),
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score})
    return entries


def write_results_json(path: str | Path, detections: list[Detections], image_ids: list[int | str]) -> None:
    """Write detections (one list per image) as a COCO results file, atomically."""
    atomic_write_text(path, json.dumps(results_to_json(detections, image_ids)) + "\n")


def _entry_fields(entry: object, position: int, path: Path) -> tuple:
    problem = None
    if not isinstance(entry, dict):
        problem = "is not an object"
    elif missing := [k for k in ("image_id", "category_id", "bbox", "score") if k not in entry]:
        problem = f"lacks {', '.join(missing)}"
    elif not isinstance(entry["bbox"], list) or len(entry["bbox"]) != 4:
        problem = f"bbox {entry['bbox']!r} is not [x, y, w, h]"
    if problem:
        raise ValueError(f"{path}: entry {position} {problem}")
    return entry["image_id"], entry["category_id"], entry["bbox"], entry["score"]


def read_results_json(path: str | Path, image_paths: list[str], num_classes: int,
                      line_indices: list[int] | None = None) -> list[Detections]:
    """Read a COCO results file into one `Detections` per annotated image.

    Args:
        image_paths: the annotated images, in file order.
        line_indices: their 0-based line numbers in the annotation file (default: 0, 1, 2, ...).

    Raises:
        ValueError naming the file and the entry for anything that does not fit: not a JSON list, a missing field,
        an image id that is neither a line index nor an annotated path, a class outside 0..num_classes−1, a box
        with negative width or height, a non-finite number.
    """
    path = Path(path)
    entries = read_json(path, "detections file")
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of detections, got {type(entries).__name__}")
    # Paths match as typed or resolved (an annotation file may list them relative to where it is run from).
    index_of_path = {os.path.realpath(image_path): index for index, image_path in enumerate(image_paths)}
    index_of_path.update({image_path: index for index, image_path in enumerate(image_paths)})
    index_of_line = {line: index for index, line in enumerate(line_indices or range(len(image_paths)))}
    fields = [_entry_fields(entry, position, path) for position, entry in enumerate(entries)]
    images = np.empty(len(fields), np.int64)
    for position, (image_id, *_) in enumerate(fields):
        if isinstance(image_id, str):
            typed, image_id = image_id, image_id if image_id in index_of_path else os.path.realpath(image_id)
            if image_id not in index_of_path:
                raise ValueError(f"{path}: entry {position} has image_id {typed!r}, which is not an image path "
                                 "of the annotation file")
            images[position] = index_of_path[image_id]
        elif isinstance(image_id, int) and not isinstance(image_id, bool) and image_id in index_of_line:
            images[position] = index_of_line[image_id]
        else:
            raise ValueError(f"{path}: entry {position} has image_id {image_id!r}, which is neither the 0-based "
                             "index of an annotated line nor an image path of the annotation file")
    try:
        classes = np.array([f[1] for f in fields], np.float64)
        xywh = np.array([f[2] for f in fields], np.float64).reshape(-1, 4)
        scores = np.array([f[3] for f in fields], np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: category_id, bbox and score must be numbers") from None
    checks = (
        ((classes != np.round(classes)) | (classes < 0) | (classes >= num_classes),
         f"category_id outside the {num_classes} class indices 0..{num_classes - 1}"),
        (~np.isfinite(xywh).all(axis=1) | ~np.isfinite(scores), "a number that is not finite"),
        ((xywh[:, 2] < 0) | (xywh[:, 3] < 0), "a bbox with negative width or height"),
    )
    for bad, reason in checks:
        if bad.any():
            position = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{path}: entry {position} has {reason}: {entries[position]}")
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    order = np.argsort(images, kind="stable")
    splits = np.cumsum(np.bincount(images, minlength=len(image_paths)))[:-1]
    return [Detections(b, s, c) for b, s, c in zip(np.split(boxes[order], splits), np.split(scores[order], splits),
                                                   np.split(classes[order].astype(np.int64), splits), strict=True)]
