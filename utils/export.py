"""Export a trained detector with its pre- and post-processing, and check the export against the Keras model.

SavedModel goes through Keras' `ExportArchive`. ONNX converts that SavedModel with tf2onnx (Keras' own
`export(format="onnx")` covers the bare model only, not an endpoint with letterbox and NMS).

The exported endpoint `serve` maps a batch of uint8 RGB images of one size, (B, H, W, 3) with any H and W, to
boxes (B, K, 4) x1, y1, x2, y2 in those images' pixels, scores (B, K), classes (B, K) and count (B,).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from utils.bbox import letterbox_image
from utils.detections import Detections
from utils.evaluation import detection_function

EXPORT_FORMATS = ("saved_model", "onnx")


def inference_function(model: keras.Model, anchors: np.ndarray, box_coding: str, confidence: float,
                       nms_iou: float, max_detections: int):
    """The exported computation as a plain function of a uint8 image batch: letterbox, then
    `evaluation.detection_function`."""
    input_hw = tuple(int(v) for v in model.input_shape[1:3])
    detect = detection_function(model, anchors, confidence, nms_iou, max_detections, box_coding)

    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        image_hw = tf.tile(tf.shape(images)[1:3][None], [tf.shape(images)[0], 1])
        return detect(letterbox_image(images, input_hw), image_hw)

    return serve


def export_saved_model(model: keras.Model, anchors: np.ndarray, box_coding: str, path: str | Path,
                       confidence: float = 0.25, nms_iou: float = 0.45, max_detections: int = 100) -> None:
    """Write a SavedModel through Keras' `ExportArchive` with the `serve` endpoint described above."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serve",
                         fn=inference_function(model, anchors, box_coding, confidence, nms_iou, max_detections),
                         input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    archive.write_out(str(path), verbose=False)


def run_saved_model(path: str | Path):
    """Load an exported SavedModel; returns a function image_rgb (H, W, 3) uint8 → `Detections`."""
    loaded = tf.saved_model.load(str(path))

    def detect(image_rgb: np.ndarray) -> Detections:
        result = {k: v.numpy() for k, v in loaded.serve(tf.constant(image_rgb[None], tf.uint8)).items()}
        count = int(result["count"][0])
        return Detections(result["boxes"][0, :count], result["scores"][0, :count], result["classes"][0, :count])

    return detect


@dataclass(frozen=True)
class Parity:
    """Exported model against the Keras model on the same images."""

    images: int
    max_box_difference: float  # pixels, over detections paired by rank
    same_classes: bool
    same_counts: bool

    def passed(self, tolerance: float = 1.0) -> bool:
        return self.same_counts and self.same_classes and self.max_box_difference <= tolerance


def compare(reference: list[Detections], exported: list[Detections]) -> Parity:
    """Pair each reference detection with the closest unpaired exported detection of the same class (detections
    whose scores tie to 1e-7 may come out of NMS in either order, so pairs are found by box, not by rank)."""
    difference, classes, counts = 0.0, True, True
    for ours, theirs in zip(reference, exported, strict=True):
        if len(ours.scores) != len(theirs.scores):
            counts = False
            continue
        free = np.ones(len(theirs.scores), bool)
        for box, class_id in zip(ours.boxes, ours.classes, strict=True):
            candidates = np.flatnonzero(free & (theirs.classes == class_id))
            if len(candidates) == 0:
                classes = False
                continue
            distances = np.abs(theirs.boxes[candidates] - box).max(axis=1)
            best = candidates[np.argmin(distances)]
            free[best] = False
            difference = max(difference, float(distances.min()))
    return Parity(len(reference), difference, classes, counts)


def export_onnx(saved_model: str | Path, path: str | Path, opset: int = 17) -> None:
    """Convert an exported SavedModel's `serve` endpoint to ONNX with tf2onnx's converter (a subprocess: it
    configures TensorFlow's logging and graph state for itself)."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved_model), "--signature_def",
               "serve", "--opset", str(opset), "--output", str(path)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not Path(path).is_file():
        raise RuntimeError(f"{path}: ONNX conversion failed:\n{result.stderr[-3000:]}")


def run_onnx(path: str | Path):
    """Load an ONNX export into ONNX Runtime (CPU); returns a function image_rgb (H, W, 3) uint8 → `Detections`."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]

    def detect(image_rgb: np.ndarray) -> Detections:
        result = dict(zip(names, session.run(None, {"images": image_rgb[None].astype(np.uint8)}), strict=True))
        count = int(result["count"][0])
        return Detections(result["boxes"][0, :count], result["scores"][0, :count], result["classes"][0, :count])

    return detect
