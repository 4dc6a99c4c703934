"""Anchors from data: IoU-distance k-means over box shapes, and how well anchors fit the boxes (best-possible recall).

Box shapes are taken as the model sees them: each image letterboxed into the square input (scale = input size /
the image's longer side). Anchor files hold `w,h` in pixels of a 416 input (`model_data/yolo_anchors.txt`);
`train.py` scales them to `--input-size`.

Example:
    >>> shapes = letterboxed_box_shapes(read_annotations("data/bccd/trainval.txt")[0], 416)
    >>> anchors = kmeans_anchors(shapes, 9, seed=0)
    >>> fit = anchor_fit(shapes, anchors)  # fit.best_possible_recall, fit.anchors_above_threshold
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from utils.data.annotations import Annotation
from utils.data.images import viewed_size

log = logging.getLogger(__name__)

ANCHOR_FILE_SIZE = 416  # anchor files are in pixels of this input size
MIN_BOX_SIDE = 2.0  # boxes smaller than this (in input pixels) say nothing about shapes


def image_size(path: str) -> tuple[int, int]:
    """(width, height) as viewed (EXIF orientation applied), from the image header, without decoding the pixels."""
    try:
        return viewed_size(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image not found") from None
    except OSError as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None


def letterboxed_box_shapes(annotations: list[Annotation], input_size: int) -> np.ndarray:
    """(N, 2) widths and heights of every box once its image is letterboxed to `input_size`; images that cannot be
    read are skipped with a warning naming them, and boxes under 2 px are left out with a warning counting them."""
    shapes = []
    for annotation in annotations:
        if len(annotation.boxes) == 0:
            continue
        try:
            width, height = image_size(annotation.image_path)
        except (FileNotFoundError, ValueError) as error:
            log.warning("skipping %s", error)
            continue
        wh = annotation.boxes[:, 2:4] - annotation.boxes[:, 0:2]
        shapes.append(wh * input_size / max(width, height))
    if not shapes:
        return np.zeros((0, 2), np.float32)
    shapes = np.concatenate(shapes).astype(np.float32)
    kept = (shapes >= MIN_BOX_SIDE).all(axis=1)
    if not kept.all():
        log.warning("%d of %d boxes are narrower or shorter than %g px at input size %d and are left out of the "
                    "anchor fit", int((~kept).sum()), len(shapes), MIN_BOX_SIDE, input_size)
    return shapes[kept]


def shape_iou(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU of (N, 2) and (K, 2) width-height pairs aligned at a common corner → (N, K)."""
    inter = np.minimum(boxes[:, None, 0], anchors[None, :, 0]) * np.minimum(boxes[:, None, 1], anchors[None, :, 1])
    union = boxes[:, 0:1] * boxes[:, 1:2] + (anchors[:, 0] * anchors[:, 1])[None, :] - inter
    return inter / union


def kmeans_anchors(shapes: np.ndarray, n: int = 9, seed: int = 0, iterations: int = 300) -> np.ndarray:
    """`n` anchors by k-means with distance 1 − IoU and median centres, seeded; sorted small to large by area."""
    if len(shapes) < n:
        raise ValueError(f"k-means needs at least {n} boxes, got {len(shapes)}")
    rng = np.random.default_rng(seed)
    centres = shapes[rng.choice(len(shapes), n, replace=False)].astype(np.float64)
    assignment = np.full(len(shapes), -1)
    for _ in range(iterations):
        new_assignment = shape_iou(shapes, centres).argmax(axis=1)
        if np.array_equal(new_assignment, assignment):
            break
        assignment = new_assignment
        for k in range(n):
            members = shapes[assignment == k]
            if len(members):  # an emptied cluster keeps its centre
                centres[k] = np.median(members, axis=0)
    return centres[np.argsort(centres.prod(axis=1), kind="stable")].astype(np.float32)


@dataclass(frozen=True)
class AnchorFit:
    """How well anchors cover box shapes under the YOLOv5 ratio rule (side ratio below `threshold`)."""

    best_possible_recall: float  # share of boxes that at least one anchor can match
    anchors_above_threshold: float  # mean number of anchors that match a box
    mean_best_iou: float  # mean over boxes of the best shape IoU with an anchor

    def __str__(self) -> str:
        return (f"best possible recall {self.best_possible_recall:.4f}, anchors above threshold "
                f"{self.anchors_above_threshold:.2f} per box, mean best IoU {self.mean_best_iou:.4f}")


def anchor_fit(shapes: np.ndarray, anchors: np.ndarray, threshold: float = 4.0) -> AnchorFit:
    """Best-possible recall, anchors above threshold and mean best IoU of `anchors` on box `shapes`."""
    if len(shapes) == 0:
        return AnchorFit(0.0, 0.0, 0.0)
    ratio = shapes[:, None, :] / anchors[None, :, :]
    worst_side = np.minimum(ratio, 1.0 / ratio).min(axis=2)  # (N, K): 1 = same shape, 1/threshold = the limit
    matches = worst_side > 1.0 / threshold
    return AnchorFit(float(matches.any(axis=1).mean()), float(matches.sum(axis=1).mean()),
                     float(shape_iou(shapes, anchors).max(axis=1).mean()))


AUTOANCHOR_MIN_RECALL = 0.98


def check_anchors(
    annotations: list[Annotation], anchors: np.ndarray, input_size: int, threshold: float = 4.0,
    recompute: bool = False, seed: int = 0,
) -> np.ndarray:
    """Warn when `anchors` (input pixels) reach fewer than 98% of the training boxes; with `recompute`, return
    k-means anchors instead when they fit better. Returns the anchors to train with."""
    shapes = letterboxed_box_shapes(annotations, input_size)
    fit = anchor_fit(shapes, anchors, threshold)
    log.info("anchors: %s", fit)
    if fit.best_possible_recall >= AUTOANCHOR_MIN_RECALL or len(shapes) < len(anchors):
        return anchors
    if not recompute:
        log.warning("anchors reach only %.1f%% of the training boxes (%s); run kmeans_for_anchors.py or pass "
                    "--autoanchor", 100 * fit.best_possible_recall, fit)
        return anchors
    candidate = kmeans_anchors(shapes, len(anchors), seed=seed)
    new_fit = anchor_fit(shapes, candidate, threshold)
    if new_fit.best_possible_recall <= fit.best_possible_recall:
        log.warning("k-means anchors do not fit better (%s); keeping the given ones", new_fit)
        return anchors
    log.warning("autoanchor: replaced the anchors (%s) by k-means ones (%s)", fit, new_fit)
    return candidate
