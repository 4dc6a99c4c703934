"""`Detector`: a trained detector loaded once, with the settings of one command (thresholds, class filter, XLA):
`detect_rgb` a frame, or `detect_paths` files in batches. `export.runtimes.ExportedDetector` has the same face."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nets.detector import YoloDetector
from utils.inference.batch import predict_paths
from utils.inference.loading import load_detector
from utils.ops.detections import Detections


def class_indices(class_names: Sequence[str], wanted: Sequence[str] | None) -> np.ndarray | None:
    """Indices of the `wanted` class names (None: all classes); an error names the unknown ones."""
    if not wanted:
        return None
    unknown = sorted(set(wanted) - set(class_names))
    if unknown:
        raise ValueError(f"--classes {', '.join(unknown)}: not among the model's classes ({', '.join(class_names)})")
    return np.array([list(class_names).index(name) for name in wanted])


class Detector:
    """`run` (a run directory, `.keras` file or a loaded `YoloDetector`) with its decoder's settings changed where
    given (None: the model's own); `class_filter` keeps only detections of those class names (None: all)."""

    def __init__(self, run: str | Path | YoloDetector, confidence: float | None = None, nms_iou: float | None = None,
                 max_detections: int | None = None, class_filter: list[str] | None = None,
                 letterbox: bool | None = None, jit_compile: bool = False) -> None:
        self.model = run if isinstance(run, YoloDetector) else load_detector(run)
        self.decoder = self.model.decoder.replace(score_threshold=confidence, iou_threshold=nms_iou,
                                                  max_detections=max_detections, letterbox=letterbox)
        self.class_names = list(self.model.class_names)
        self.input_hw = self.decoder.input_hw
        self.keep = class_indices(self.class_names, class_filter)
        self.jit_compile = jit_compile

    def only_kept(self, found: Detections) -> Detections:
        if self.keep is None:
            return found
        mask = np.isin(found.classes, self.keep)
        return Detections(found.boxes[mask], found.scores[mask], found.classes[mask])

    def detect_rgb(self, image_rgb: np.ndarray) -> Detections:
        """One RGB uint8 image (H, W, 3)."""
        return self.only_kept(self.model.detect(image_rgb, self.decoder, self.jit_compile)[0])

    def detect_paths(self, paths: list[str], batch_size: int = 8) -> list[Detections]:
        """Image files, batched through tf.data (decode and letterbox in the graph)."""
        found = predict_paths(self.model, paths, batch_size, self.decoder, progress=len(paths) > 1,
                              jit_compile=self.jit_compile)
        return [self.only_kept(f) for f in found]
