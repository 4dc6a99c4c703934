"""Run an exported detector (SavedModel folder, `.onnx` or `.tflite`) the way `predict.py` and `get_map.py` run a
Keras one, with the class names and settings read from the metadata written beside the export."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from utils.data.images import read_rgb
from utils.inference.detector import class_indices
from utils.io.files import atomic_write_json, read_json
from utils.ops.detections import Detections

METADATA_NAME = "effyolo.json"  # inside a SavedModel folder; files get `<name>.json` beside them


@dataclass(frozen=True)
class ExportMetadata:
    format: str
    class_names: tuple[str, ...]
    input_size: int
    box_coding: str
    confidence: float
    nms_iou: float
    max_detections: int
    letterbox: bool
    quantize: str | None = None


def metadata_path(export_path: str | Path) -> Path:
    path = Path(export_path)
    return path / METADATA_NAME if path.is_dir() or not path.suffix else path.with_name(path.name + ".json")


def write_metadata(export_path: str | Path, metadata: ExportMetadata) -> None:
    atomic_write_json(metadata_path(export_path), asdict(metadata))


def read_metadata(export_path: str | Path) -> ExportMetadata:
    path = metadata_path(export_path)
    data = read_json(path, f"metadata of the export {export_path} (predict.py export writes it beside the model)")
    try:
        return ExportMetadata(**{**data, "class_names": tuple(data["class_names"])})
    except (TypeError, KeyError) as error:
        raise ValueError(f"{path}: not an export metadata file ({error})") from None


def export_format(path: str | Path) -> str | None:
    """"saved_model", "onnx" or "litert" when `path` is an export, None for a run directory or `.keras` file."""
    path = Path(path)
    if path.is_dir():
        return "saved_model" if (path / "saved_model.pb").is_file() else None
    return {".onnx": "onnx", ".tflite": "litert"}.get(path.suffix.lower())


def _unbatched(result: dict[str, np.ndarray]) -> Detections:
    count = int(result["count"][0])
    return Detections(result["boxes"][0, :count].astype(np.float32), result["scores"][0, :count].astype(np.float32),
                      result["classes"][0, :count].astype(np.int32))


def saved_model_runner(path: str | Path) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    loaded = tf.saved_model.load(str(path))
    return lambda images: {k: v.numpy() for k, v in loaded.serve(tf.constant(images, tf.uint8)).items()}


def onnx_runner(path: str | Path) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return lambda images: dict(zip(names, session.run(None, {"images": images.astype(np.uint8)}), strict=True))


def litert_interpreter(path: str | Path, threads: int | None = None):
    """The LiteRT interpreter (the `ai_edge_litert` package, else TensorFlow's bundled copy) on all cores."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - ai-edge-litert is in requirements.txt
        from tensorflow.lite import Interpreter
    return Interpreter(model_path=str(path), num_threads=threads or os.cpu_count())


def litert_runner(path: str | Path) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    runner = litert_interpreter(path).get_signature_runner("serve")
    return lambda images: runner(images=images.astype(np.uint8))


RUNNERS = {"saved_model": saved_model_runner, "onnx": onnx_runner, "litert": litert_runner}


def batch_runner(path: str | Path) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """uint8 (B, H, W, 3) → the export's padded outputs, as numpy (B = 1 for LiteRT)."""
    kind = export_format(path)
    if kind is None:
        raise ValueError(f"{path}: not an export (a SavedModel folder, .onnx or .tflite file)")
    return RUNNERS[kind](path)


def image_runner(path: str | Path) -> Callable[[np.ndarray], Detections]:
    """image_rgb (H, W, 3) uint8 → `Detections` of an exported model."""
    run = batch_runner(path)
    return lambda image_rgb: _unbatched(run(np.asarray(image_rgb, np.uint8)[None]))


class ExportedDetector:
    """An export behind the interface of `inference.Detector` (`detect_rgb`, `detect_paths`, `class_names`).

    Score threshold, NMS IoU and the detection cap are baked into the export; a stricter `confidence` filters
    further, a looser one cannot bring back what the export dropped.
    """

    def __init__(self, path: str | Path, confidence: float | None = None, max_detections: int | None = None,
                 class_filter: list[str] | None = None) -> None:
        self.metadata = read_metadata(path)
        self.class_names = list(self.metadata.class_names)
        self.keep = class_indices(self.class_names, class_filter)
        self.confidence = max(confidence or 0.0, self.metadata.confidence)
        self.max_detections = min(max_detections or self.metadata.max_detections, self.metadata.max_detections)
        self.input_hw = (self.metadata.input_size, self.metadata.input_size)
        self._detect = image_runner(path)

    def detect_rgb(self, image_rgb: np.ndarray) -> Detections:
        found = self._detect(image_rgb)
        mask = found.scores >= self.confidence
        if self.keep is not None:
            mask &= np.isin(found.classes, self.keep)
        keep = np.flatnonzero(mask)[:self.max_detections]
        return Detections(found.boxes[keep], found.scores[keep], found.classes[keep])

    def detect_paths(self, paths: list[str], batch_size: int = 8) -> list[Detections]:
        """Image files, one at a time (an export's batch is one image size; LiteRT's is one image)."""
        found = []
        for path in tqdm(paths, desc="detecting", unit="img", disable=len(paths) < 2, leave=False):
            try:
                image = read_rgb(path)
            except tf.errors.OpError:
                raise ValueError(f"{path}: corrupt or not an image (decoding failed)") from None
            found.append(self.detect_rgb(image))
        return found
