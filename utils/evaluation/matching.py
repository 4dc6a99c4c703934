"""VOC's greedy matching of detections to ground truth, vectorised over every detection of every image.

The rule (VOC devkit), per class: detections in descending score order each look at the same-class ground-truth
box they overlap most. If that IoU reaches the threshold the detection is ignored when the box is difficult, a
true positive when the box is still free, and a duplicate (false positive) when a higher-scoring detection took
it. A detection never falls back to its second-best box. IoU uses continuous pixels (no VOC `+1`) and `≥`.

Because each detection's best box does not depend on the others, the sequential rule reduces to "the first
eligible detection, in score order, of each box wins": one `np.unique` instead of a loop over detections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from utils.ops.detections import Detections

CHUNK_ELEMENTS = 4_000_000  # detection × box pairs held at once (bounds memory on crowded images)


@dataclass(frozen=True)
class FlatDetections:
    """All images' detections in one set of arrays: image index (D,), boxes (D, 4), scores (D,), classes (D,)."""

    image: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    @classmethod
    def from_list(cls, detections: list[Detections]) -> FlatDetections:
        counts = [len(d.scores) for d in detections]
        if sum(counts) == 0:
            return cls(np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))
        return cls(
            np.repeat(np.arange(len(detections)), counts),
            np.concatenate([np.asarray(d.boxes, np.float64).reshape(-1, 4) for d in detections]),
            np.concatenate([np.asarray(d.scores, np.float64).reshape(-1) for d in detections]),
            np.concatenate([np.asarray(d.classes).reshape(-1) for d in detections]).astype(np.int64),
        )


@dataclass(frozen=True)
class FlatGroundTruth:
    """All images' ground truth, grouped by image: image (G,), boxes (G, 4), classes (G,), difficult (G,) bool."""

    image: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    difficult: np.ndarray

    @classmethod
    def from_list(cls, ground_truth: list[np.ndarray]) -> FlatGroundTruth:
        """Per image, (M, 5) rows x1, y1, x2, y2, class, or (M, 6) with a sixth column 1 for difficult boxes."""
        arrays = [np.asarray(g, np.float64) for g in ground_truth]
        arrays = [a.reshape(0, 5) if a.size == 0 else a.reshape(len(a), -1) for a in arrays]
        for index, array in enumerate(arrays):
            if array.shape[1] not in (5, 6):
                raise ValueError(f"ground truth of image {index} has {array.shape[1]} columns, expected 5 or 6")
        if not arrays:
            return cls(np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0, bool))
        rows = np.concatenate([a[:, :5] for a in arrays])
        difficult = np.concatenate([a[:, 5] == 1 if a.shape[1] == 6 else np.zeros(len(a), bool) for a in arrays])
        return cls(np.repeat(np.arange(len(arrays)), [len(a) for a in arrays]), rows[:, :4],
                   rows[:, 4].astype(np.int64), difficult)

    def counts(self, num_classes: int) -> np.ndarray:
        """Ground-truth boxes per class that count (difficult ones do not)."""
        return np.bincount(self.classes[~self.difficult], minlength=num_classes)[:num_classes]


@dataclass(frozen=True)
class Overlaps:
    """Each detection's most-overlapping box in its image, among its own class and among the other classes.

    Indices point into `FlatGroundTruth`; −1 (and IoU 0) where the image has no such box.
    """

    same_gt: np.ndarray
    same_iou: np.ndarray
    other_gt: np.ndarray
    other_iou: np.ndarray


@dataclass(frozen=True)
class Matches:
    """Outcome at one IoU threshold: per detection (D,) true positive / duplicate / ignored, and per box (G,)
    whether a true positive took it. Detections that are none of the three did not reach the threshold."""

    true_positive: np.ndarray
    duplicate: np.ndarray
    ignored: np.ndarray
    matched_gt: np.ndarray


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) with every box in b (M, 4) → (N, M); continuous pixels, no +1."""
    return paired_iou(a[:, None, :], b[None, :, :])


def paired_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes (..., 4) against boxes (..., 4), broadcasting."""
    inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-12)


def best_overlaps(detections: FlatDetections, ground_truth: FlatGroundTruth, num_images: int) -> Overlaps:
    """For every detection, the IoU-best box of its own class and of any other class in the same image."""
    num_dets = len(detections.scores)
    same_gt, other_gt = np.full(num_dets, -1), np.full(num_dets, -1)
    same_iou, other_iou = np.zeros(num_dets), np.zeros(num_dets)
    per_image = np.bincount(ground_truth.image, minlength=num_images)
    width = int(per_image.max(initial=0))
    if num_dets == 0 or width == 0:
        return Overlaps(same_gt, same_iou, other_gt, other_iou)
    starts = np.concatenate([[0], np.cumsum(per_image)[:-1]])
    slots = np.arange(width)
    table = np.where(slots < per_image[:, None], starts[:, None] + slots, -1)  # (I, W) box indices per image
    step = max(1, CHUNK_ELEMENTS // width)
    for begin in range(0, num_dets, step):
        rows = slice(begin, begin + step)
        candidates = table[detections.image[rows]]  # (d, W)
        present = candidates >= 0
        safe = np.where(present, candidates, 0)
        iou = paired_iou(detections.boxes[rows, None, :], ground_truth.boxes[safe])  # (d, W)
        same_class = present & (ground_truth.classes[safe] == detections.classes[rows, None])
        for mask, gt_out, iou_out in ((same_class, same_gt, same_iou), (present & ~same_class, other_gt, other_iou)):
            masked = np.where(mask, iou, -1.0)
            best = masked.argmax(axis=1)
            best_iou = masked[np.arange(len(best)), best]
            gt_out[rows] = np.where(best_iou >= 0, candidates[np.arange(len(best)), best], -1)
            iou_out[rows] = np.maximum(best_iou, 0.0)
    return Overlaps(same_gt, same_iou, other_gt, other_iou)


@dataclass(frozen=True)
class Matching:
    """Detections and ground truth of a whole evaluation, flattened once, with overlaps and the score order."""

    detections: FlatDetections
    ground_truth: FlatGroundTruth
    overlaps: Overlaps
    order: np.ndarray  # detection indices by descending score (stable: image order, then detection order)
    num_images: int

    @classmethod
    def build(cls, detections: list[Detections], ground_truth: list[np.ndarray]) -> Matching:
        if len(detections) != len(ground_truth):
            raise ValueError(f"{len(detections)} detection lists for {len(ground_truth)} images")
        flat_dets, flat_gt = FlatDetections.from_list(detections), FlatGroundTruth.from_list(ground_truth)
        overlaps = best_overlaps(flat_dets, flat_gt, len(ground_truth))
        return cls(flat_dets, flat_gt, overlaps, np.argsort(-flat_dets.scores, kind="stable"), len(ground_truth))

    def match(self, iou_threshold: float, min_score: float | None = None) -> Matches:
        """The devkit's outcome at `iou_threshold`, counting only detections scoring at least `min_score`.

        Greedy matching goes by score, so a score cut leaves the flags of the detections it keeps unchanged.
        """
        same_gt = self.overlaps.same_gt
        reached = (same_gt >= 0) & (self.overlaps.same_iou >= iou_threshold)
        if min_score is not None:
            reached &= self.detections.scores >= min_score
        ignored = reached & self.ground_truth.difficult[np.maximum(same_gt, 0)]
        eligible = reached & ~ignored
        in_order = self.order[eligible[self.order]]
        _, first = np.unique(same_gt[in_order], return_index=True)
        true_positive = np.zeros(len(same_gt), bool)
        true_positive[in_order[first]] = True
        matched_gt = np.zeros(len(self.ground_truth.classes), bool)
        matched_gt[same_gt[true_positive]] = True
        return Matches(true_positive, eligible & ~true_positive, ignored, matched_gt)
