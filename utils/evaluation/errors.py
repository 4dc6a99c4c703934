"""Why mAP is what it is: false positives by cause, missed objects, a confusion matrix and per-image error counts,
all counting detections that score at least one score threshold (`pr_score`), matched at one IoU threshold.

Each counted detection gets exactly one label, checked in this order:
- `true_positive`: VOC's greedy match (see `utils.evaluation.matching`);
- `duplicate`: it reached the IoU threshold on a box of its class that a higher-scoring detection took;
- `class_confusion`: it reaches the IoU threshold on a box of another class;
- `localisation`: it overlaps a box of its class, but with IoU in [0.1, threshold);
- `background`: none of the above.
`missed` counts (non-difficult) ground-truth boxes that no counted detection matched. Detections on difficult
boxes are ignored, as in the AP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from utils.evaluation.matching import Matching

DETECTION_KINDS = ("true_positive", "duplicate", "class_confusion", "localisation", "background")
LOCALISATION_MIN_IOU = 0.1
NOT_COUNTED = -1


@dataclass(frozen=True)
class ErrorAnalysis:
    """Per detection (D,) an index into `DETECTION_KINDS` (−1: below the threshold or ignored); per box (G,)
    whether it was missed; the confusion matrix; and false positives + missed boxes per image (I,).

    The confusion matrix is (C + 1, C + 1) counts: rows are the true class, the last row "background" (false
    positives that match no box of another class); columns are the predicted class, the last column "missed".
    """

    detection_kind: np.ndarray
    missed: np.ndarray
    confusion: np.ndarray
    image_errors: np.ndarray

    def counts(self) -> dict[str, int]:
        counts = {kind: int(np.sum(self.detection_kind == index)) for index, kind in enumerate(DETECTION_KINDS)}
        counts["false_positives"] = sum(counts[kind] for kind in DETECTION_KINDS[1:])
        counts["missed"] = int(self.missed.sum())
        return counts


def analyse_errors(matching: Matching, num_classes: int, pr_score: float, iou_threshold: float = 0.5
                   ) -> ErrorAnalysis:
    """Label every detection scoring at least `pr_score` and every ground-truth box (see the module text)."""
    matches = matching.match(iou_threshold, min_score=pr_score)
    dets, truth, overlaps = matching.detections, matching.ground_truth, matching.overlaps
    counted = (dets.scores >= pr_score) & ~matches.ignored
    false_positive = counted & ~matches.true_positive
    duplicate = false_positive & matches.duplicate
    confused = false_positive & ~duplicate & (overlaps.other_gt >= 0) & (overlaps.other_iou >= iou_threshold)
    localisation = false_positive & ~duplicate & ~confused & (overlaps.same_iou >= LOCALISATION_MIN_IOU)
    background = false_positive & ~duplicate & ~confused & ~localisation
    kind = np.full(len(dets.scores), NOT_COUNTED)
    for index, mask in enumerate((counted & matches.true_positive, duplicate, confused, localisation, background)):
        kind[mask] = index
    missed = ~truth.difficult & ~matches.matched_gt

    background_row = missed_column = num_classes
    confusion = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    hits = counted & matches.true_positive
    np.add.at(confusion, (dets.classes[hits], dets.classes[hits]), 1)
    np.add.at(confusion, (truth.classes[overlaps.other_gt[confused]], dets.classes[confused]), 1)
    unexplained = duplicate | localisation | background
    np.add.at(confusion, (background_row, dets.classes[unexplained]), 1)
    claimed = np.zeros(len(truth.classes), bool)
    claimed[overlaps.other_gt[confused]] = True  # a missed box taken for another class is not "missed" here
    np.add.at(confusion, (truth.classes[missed & ~claimed], missed_column), 1)

    image_errors = (np.bincount(dets.image[false_positive], minlength=matching.num_images)
                    + np.bincount(truth.image[missed], minlength=matching.num_images))
    return ErrorAnalysis(kind, missed, confusion, image_errors)


def worst_images(analysis: ErrorAnalysis, count: int) -> np.ndarray:
    """Indices of up to `count` images with the most errors (false positives + missed), most first; images
    without errors are never listed."""
    order = np.argsort(-analysis.image_errors, kind="stable")
    return order[analysis.image_errors[order] > 0][:count]
