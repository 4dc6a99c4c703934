"""Export a trained detector with its pre- and post-processing, and check the export against the Keras model.

SavedModel goes through Keras' `ExportArchive`. ONNX converts that SavedModel with tf2onnx (Keras' own
`export(format="onnx")` covers the bare model only, not an endpoint with letterbox and NMS). LiteRT converts a
batch-1 SavedModel with TensorFlow's LiteRT converter — Keras' `export(format="litert")` route — to builtin ops only,
so the plain LiteRT interpreter (XNNPACK) runs it without the Flex delegate.

The exported endpoint `serve` maps a batch of uint8 RGB images of one size, (B, H, W, 3) with any H and W (B = 1 for
LiteRT), to boxes (B, K, 4) x1, y1, x2, y2 in those images' pixels, scores (B, K), classes (B, K) and count (B,).
Beside the export, `utils.inference.exported.write_metadata` records the class names and the settings baked in,
which `predict.py` and `get_map.py` read to run it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from nets.detector import YoloDetector
from utils.config.detect_config import DetectConfig
from utils.inference.exported import litert_interpreter
from utils.io.files import atomic_write
from utils.ops.detections import Detections

EXPORT_FORMATS = ("saved_model", "onnx", "litert")
QUANTIZATIONS = ("fp16", "int8")


def export_saved_model(detector: YoloDetector, path: str | Path, settings: DetectConfig | None = None,
                       batch_size: int | None = None) -> None:
    """Write a SavedModel through Keras' `ExportArchive` with the `serve` endpoint described above — the
    detector's `serving_function` with `settings` (default: its own). `batch_size` fixes the batch dimension, which
    LiteRT's converter needs to keep every shape static."""
    archive = keras.export.ExportArchive()
    archive.track(detector)
    archive.add_endpoint(name="serve", fn=detector.serving_function(settings),
                         input_signature=[tf.TensorSpec([batch_size, None, None, 3], tf.uint8)])
    archive.write_out(str(path), verbose=False)


def export_onnx(saved_model: str | Path, path: str | Path, opset: int = 17) -> None:
    """Convert an exported SavedModel's `serve` endpoint to ONNX with tf2onnx's converter (a subprocess: it
    configures TensorFlow's logging and graph state for itself)."""
    command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved_model), "--signature_def",
               "serve", "--opset", str(opset), "--output", str(path)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not Path(path).is_file():
        raise RuntimeError(f"{path}: ONNX conversion failed:\n{result.stderr[-3000:]}")


def export_litert(detector: YoloDetector, path: str | Path, settings: DetectConfig | None = None,
                  quantize: str | None = None, calibration: Iterable[np.ndarray] = ()) -> None:
    """Write a `.tflite` LiteRT model of the batch-1 `serve` endpoint.

    quantize: None (float32), "fp16" (float16 weights) or "int8" (the Keras model in int8 weights and activations,
    with ranges from `calibration`, RGB uint8 images; letterbox, decoding and NMS stay float32).
    """
    if quantize not in (None, *QUANTIZATIONS):
        raise ValueError(f"--quantize {quantize}: expected one of {', '.join(QUANTIZATIONS)}")
    calibration = list(calibration)
    if quantize == "int8" and not calibration:
        raise ValueError("--quantize int8 needs calibration images (--calibration)")
    with tempfile.TemporaryDirectory(prefix="effyolo_litert_") as saved_model:
        export_saved_model(detector, saved_model, settings, batch_size=1)
        if quantize == "int8":
            flatbuffer = _int8_model_only(saved_model, Path(saved_model) / "float.tflite", detector.name, calibration)
        else:
            converter = _litert_converter(saved_model)
            if quantize == "fp16":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.target_spec.supported_types = [tf.float16]
            flatbuffer = converter.convert()
    atomic_write(path, lambda tmp: tmp.write_bytes(flatbuffer))


def _litert_converter(saved_model: str | Path) -> tf.lite.TFLiteConverter:
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=["serve"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter


def _int8_model_only(saved_model: str | Path, float_path: Path, model_name: str,
                     calibration: list[np.ndarray]) -> bytes:
    """int8 inside the Keras model, float for letterbox, decoding and NMS.

    Post-processing in int8 would put box coordinates on a grid of a few pixels and scores on steps of 1/256, and
    the image-size arithmetic of letterboxing does not survive a per-tensor 8-bit range at all. LiteRT's selective
    quantisation keeps every tensor not produced inside the model in float; those are found by name in the float
    conversion of the same graph."""
    float_path.write_bytes(_litert_converter(saved_model).convert())
    interpreter = litert_interpreter(float_path)
    inputs = {detail["name"] for detail in interpreter.get_input_details()}
    names = [detail["name"] for detail in interpreter.get_tensor_details()]
    if not any(name.startswith(model_name) for name in names):
        raise RuntimeError(f"int8 export: no tensor of model {model_name!r} found in the converted graph")
    outside = [name for name in names if name not in inputs and not name.startswith(model_name)]

    def representative_dataset():
        return ({"images": image[None]} for image in calibration)

    converter = _litert_converter(saved_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=representative_dataset,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=outside))
    return debugger.get_nondebug_quantized_model()


@dataclass(frozen=True)
class Parity:
    """Exported model against the Keras model on the same images."""

    images: int
    max_box_difference: float  # pixels, over detections paired by box (see `compare`)
    same_classes: bool
    same_counts: bool
    paired: int  # detections compared: a check with none proves nothing and does not pass

    def passed(self, tolerance: float = 1.0) -> bool:
        return self.paired > 0 and self.same_counts and self.same_classes and self.max_box_difference <= tolerance


def compare(reference: list[Detections], exported: list[Detections]) -> Parity:
    """Pair each reference detection with the closest unpaired exported detection of the same class (detections
    whose scores tie to 1e-7 may come out of NMS in either order, so pairs are found by box, not by rank)."""
    difference, classes, counts, paired = 0.0, True, True, 0
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
            paired += 1
            difference = max(difference, float(distances.min()))
    return Parity(len(reference), difference, classes, counts, paired)
