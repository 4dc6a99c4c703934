"""A trained detector behind one call: images of any size in, `Detections` in original pixels out.

Letterboxing, the model, decoding, NMS and the inverse letterbox run as one graph function per image size class
(a fixed `(None, None, 3)` uint8 signature, so video frames never retrace).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from utils.evaluation.evaluate import make_detect_fn, predict_annotations
from utils.inference.loading import load_detector
from utils.ops.coding import letterbox_image
from utils.ops.detections import Detections


class Detector:
    """Load a run (or `.keras` file) once; `detect_rgb` a frame, or `detect_paths` files in batches.

    `class_filter` keeps only detections of those class names (None: all).
    """

    def __init__(self, run: str | Path, confidence: float = 0.5, nms_iou: float = 0.45, max_detections: int = 100,
                 class_filter: list[str] | None = None, letterbox: bool = True, jit_compile: bool = False) -> None:
        self.model, self.config = load_detector(run)
        spec = self.config.model
        self.class_names = list(spec.class_names)
        self.anchors, self.box_coding = spec.anchor_array(), spec.assigner
        self.confidence, self.nms_iou, self.max_detections = confidence, nms_iou, max_detections
        self.input_hw = tuple(int(v) for v in self.model.input_shape[1:3])
        unknown = sorted(set(class_filter or []) - set(self.class_names))
        if unknown:
            raise ValueError(f"--classes {', '.join(unknown)}: not among the model's classes "
                             f"({', '.join(self.class_names)})")
        self.keep = None if not class_filter else np.array([self.class_names.index(n) for n in class_filter])
        self.letterbox, self.jit_compile = letterbox, jit_compile
        detect = make_detect_fn(self.model, self.anchors, confidence, nms_iou, max_detections, self.box_coding,
                                letterbox, jit_compile)

        @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
        def detect_frame(image: tf.Tensor) -> dict[str, tf.Tensor]:
            letterboxed = letterbox_image(image, self.input_hw, letterbox=letterbox)[None]
            return detect(letterboxed, tf.shape(image)[None, :2])

        self.detect_frame = detect_frame

    def only_kept(self, found: Detections) -> Detections:
        if self.keep is None:
            return found
        mask = np.isin(found.classes, self.keep)
        return Detections(found.boxes[mask], found.scores[mask], found.classes[mask])

    def detect_rgb(self, image_rgb: np.ndarray) -> Detections:
        """One RGB uint8 image (H, W, 3)."""
        result = {k: v.numpy() for k, v in self.detect_frame(tf.convert_to_tensor(image_rgb, tf.uint8)).items()}
        count = int(result["count"][0])
        return self.only_kept(Detections(result["boxes"][0, :count], result["scores"][0, :count],
                                         result["classes"][0, :count]))

    def detect_paths(self, paths: list[str], batch_size: int = 8) -> list[Detections]:
        """Image files, batched through tf.data (decode and letterbox in the graph)."""
        found = predict_annotations(self.model, self.anchors, paths, batch_size, self.confidence, self.nms_iou,
                                    self.max_detections, progress=len(paths) > 1, box_coding=self.box_coding,
                                    letterbox=self.letterbox, jit_compile=self.jit_compile)
        return [self.only_kept(f) for f in found]
