"""The annotation-line format: `<image path> x1,y1,x2,y2,c x1,y1,x2,y2,c ...` (DESIGN.md).

Everything before the first box token is the path, so paths may contain spaces. A line with no box is a valid
negative image. A token may carry a sixth field, `x1,y1,x2,y2,c,1`, marking a VOC *difficult* object: training
leaves it out, and evaluation neither counts it as a miss nor a detection of it as a false positive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from utils.io.files import read_user_text

BOX_TOKEN = re.compile(r"^-?\d+(\.\d+)?,-?\d+(\.\d+)?,-?\d+(\.\d+)?,-?\d+(\.\d+)?,\d+(,[01])?$")
# Where the boxes start: the first token (after the path's first) that begins with a number and a comma,
# well-formed or not, so a malformed box is reported as one instead of becoming part of the path.
BOX_LIKE = re.compile(r"^[-+]?\d[\d.]*,")
NO_BOXES = np.zeros((0, 5), np.float32)


@dataclass(frozen=True)
class Annotation:
    """One image and its boxes: (N, 5) float32 rows x1, y1, x2, y2, class id in original-image pixels.

    `boxes` are the objects to train on and score; `difficult_boxes` (K, 5) are VOC difficult objects, kept apart
    so that only evaluation sees them.
    """

    image_path: str
    boxes: np.ndarray
    difficult_boxes: np.ndarray = field(default_factory=lambda: NO_BOXES)
    line_index: int | None = None  # 0-based line in the file it came from (COCO results may refer to it)

    def ground_truth(self) -> np.ndarray:
        """(N + K, 6) rows x1, y1, x2, y2, class, difficult (0/1): what the mAP code consumes."""
        return np.concatenate([np.pad(self.boxes, ((0, 0), (0, 1))),
                               np.pad(self.difficult_boxes, ((0, 0), (0, 1)), constant_values=1)]).astype(np.float64)


def parse_line(line: str, source: str = "<line>") -> Annotation:
    """Parse one annotation line; `source` (e.g. `train.txt:12`) names it in errors."""
    tokens = line.strip().split(" ")
    first_box = next((i for i, token in enumerate(tokens) if i and BOX_LIKE.match(token)), len(tokens))
    path = " ".join(tokens[:first_box]).strip()
    if not path:
        raise ValueError(f"{source}: no image path before the boxes")
    rows, difficult = [], []
    for token in tokens[first_box:]:
        if not token:
            continue
        if not BOX_TOKEN.match(token):
            raise ValueError(f"{source}: unparsable box {token!r}: expected x1,y1,x2,y2,class (or x1,y1,x2,y2,class,1)")
        values = [float(v) for v in token.split(",")]
        (difficult if len(values) == 6 and values[5] == 1 else rows).append(values[:5])
    return Annotation(path, np.asarray(rows, dtype=np.float32).reshape(-1, 5),
                      np.asarray(difficult, dtype=np.float32).reshape(-1, 5))


def format_line(image_path: str | Path, boxes: np.ndarray, difficult_boxes: np.ndarray | None = None) -> str:
    """Inverse of `parse_line`; coordinates are written as integers (rounded), difficult boxes marked `,1`."""
    tokens = [str(image_path)]
    marked = [(row, "") for row in np.asarray(boxes).reshape(-1, 5)]
    if difficult_boxes is not None:
        marked += [(row, ",1") for row in np.asarray(difficult_boxes).reshape(-1, 5)]
    for (x1, y1, x2, y2, class_id), mark in marked:
        tokens.append(f"{round(x1)},{round(y1)},{round(x2)},{round(y2)},{int(class_id)}{mark}")
    return " ".join(tokens)


def read_annotations(path: str | Path, strict: bool = True) -> tuple[list[Annotation], list[str]]:
    """Read an annotation file.

    Returns:
        the parsed annotations and a list of problems (`file:line: reason`) for lines that did not parse; with
        `strict` the first problem raises ValueError instead.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file not found")
    annotations, problems = [], []
    for number, line in enumerate(read_user_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            annotations.append(replace(parse_line(line, source=f"{path}:{number}"), line_index=number - 1))
        except ValueError as error:
            if strict:
                raise
            problems.append(str(error))
    if not annotations and not problems:
        raise ValueError(f"{path}: annotation file is empty")
    return annotations, problems


def check_class_ids(annotations: list[Annotation], num_classes: int, source: str | Path, shown: int = 5) -> None:
    """Raise ValueError naming the file, line and id of every box whose class id is not in 0..num_classes−1."""
    bad = []
    for annotation in annotations:
        ids = np.concatenate([annotation.boxes[:, 4], annotation.difficult_boxes[:, 4]]).astype(int)
        line = "?" if annotation.line_index is None else annotation.line_index + 1
        bad += [f"{source}:{line}: class id {class_id}" for class_id in ids[(ids < 0) | (ids >= num_classes)]]
    if bad:
        more = f"\n  … and {len(bad) - shown} more" if len(bad) > shown else ""
        raise ValueError(f"{len(bad)} boxes have a class id outside the class list of {num_classes} classes "
                         f"(ids 0–{num_classes - 1}):\n  " + "\n  ".join(bad[:shown]) + more)


def read_class_names(path: str | Path) -> list[str]:
    """One class name a line (UTF-8, a byte-order mark ignored); blank lines ignored."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: class list not found")
    names = [line.strip() for line in read_user_text(path).splitlines() if line.strip()]
    if not names:
        raise ValueError(f"{path}: class list is empty")
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: class list has duplicate names")
    return names


def read_anchors(path: str | Path) -> np.ndarray:
    """`w,h` pairs (one a line or all on one line) → (N, 2) float32, sorted small to large by area."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: anchors file not found")
    values = [float(v) for v in re.split(r"[,\s]+", read_user_text(path).strip()) if v]
    if len(values) % 2 or not values:
        raise ValueError(f"{path}: expected w,h pairs, got {len(values)} numbers")
    anchors = np.asarray(values, dtype=np.float32).reshape(-1, 2)
    return anchors[np.argsort(anchors[:, 0] * anchors[:, 1], kind="stable")]
