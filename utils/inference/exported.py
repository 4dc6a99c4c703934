"""Run an exported detector (SavedModel folder, `.onnx` or `.tflite`) behind the same interface as a Keras one
(`utils.inference.interface.Detector`), with the class names and settings read from the metadata written beside
the export."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from utils.config.detect_config import DetectConfig
from utils.data.image_arrays import rgb_images, same_size_batches
from utils.data.images import read_rgb
from utils.io.files import atomic_write_json, read_json
from utils.ops.detections import Detections

METADATA_NAME = "effyolo.json"  # inside a SavedModel folder; files get `<name>.json` beside them
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportMetadata:
    """What an export is and the settings baked into it."""

    format: str
    class_names: tuple[str, ...]
    input_size: int
    box_coding: str
    settings: DetectConfig = field(default_factory=DetectConfig)
    quantize: str | None = None

    def to_dict(self) -> dict:
        return {"format": self.format, "class_names": list(self.class_names), "input_size": self.input_size,
                "box_coding": self.box_coding, "settings": self.settings.to_dict(), "quantize": self.quantize}

    @classmethod
    def from_dict(cls, data: dict) -> ExportMetadata:
        data = dict(data)
        settings = data.pop("settings", None)
        if settings is None:  # an earlier version's flat keys
            settings = {"score_threshold": data.pop("confidence"), "nms_iou": data.pop("nms_iou"),
                        "max_detections": data.pop("max_detections"), "letterbox": data.pop("letterbox")}
        return cls(**{**data, "class_names": tuple(data["class_names"]),
                      "settings": DetectConfig.from_dict(settings)})


def metadata_path(export_path: str | Path) -> Path:
    path = Path(export_path)
    return path / METADATA_NAME if path.is_dir() or not path.suffix else path.with_name(path.name + ".json")


def write_metadata(export_path: str | Path, metadata: ExportMetadata) -> None:
    atomic_write_json(metadata_path(export_path), metadata.to_dict())


def read_metadata(export_path: str | Path) -> ExportMetadata:
    path = metadata_path(export_path)
    data = read_json(path, f"metadata of the export {export_path} (predict.py export writes it beside the model)")
    try:
        return ExportMetadata.from_dict(data)
    except (TypeError, KeyError, ValueError) as error:
        raise ValueError(f"{path}: not an export metadata file ({error})") from None


def export_format(path: str | Path) -> str | None:
    """"saved_model", "onnx" or "litert" when `path` is an export, None for a run directory or `.keras` file."""
    path = Path(path)
    if path.is_dir():
        return "saved_model" if (path / "saved_model.pb").is_file() else None
    return {".onnx": "onnx", ".tflite": "litert"}.get(path.suffix.lower())


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


class ExportedDetector:
    """An export behind the detector interface (`utils.inference.interface.Detector`).

    Score threshold, NMS IoU, detection cap, letterbox and class filter are baked into the export. Settings asked of
    it can be stricter (a higher score threshold, fewer detections, a subset of its classes) and are applied to its
    output; a looser threshold or cap, or another NMS IoU, cannot change what the export computed: its own value
    applies, with a warning. Another resize mode, XLA or a class it was not exported for is an error.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.metadata = read_metadata(path)
        self.class_names = tuple(self.metadata.class_names)
        self.settings = self.metadata.settings
        self.input_hw = (self.metadata.input_size, self.metadata.input_size)
        self._run = batch_runner(path)
        self._noted: set[str] = set()

    def _applied(self, settings: DetectConfig | None) -> DetectConfig:
        """What of `settings` this export can apply (see the class docstring)."""
        if settings is None:
            return self.settings
        baked = self.settings
        if settings.letterbox != baked.letterbox:
            raise ValueError(f"{self.path}: exported with letterbox {baked.letterbox}; export again to change how "
                             f"images are resized")
        if settings.xla:
            raise ValueError(f"{self.path}: xla applies to Keras models, not to an export")
        unknown = set(settings.classes or ()) - set(baked.classes or self.class_names)
        if unknown:
            raise ValueError(f"classes {', '.join(sorted(unknown))}: not among the export's classes "
                             f"({', '.join(baked.classes or self.class_names)})")
        for name, looser in (("score_threshold", settings.score_threshold < baked.score_threshold),
                             ("max_detections", settings.max_detections > baked.max_detections),
                             ("nms_iou", settings.nms_iou != baked.nms_iou)):
            if looser and name not in self._noted:
                self._noted.add(name)
                log.warning("%s: exported with %s %s, which applies (not %s)", self.path, name,
                            getattr(baked, name), getattr(settings, name))
        return settings.replace(score_threshold=max(settings.score_threshold, baked.score_threshold),
                                max_detections=min(settings.max_detections, baked.max_detections),
                                nms_iou=baked.nms_iou)

    def _filtered(self, found: Detections, settings: DetectConfig) -> Detections:
        mask = found.scores >= settings.score_threshold
        if settings.classes:
            mask &= np.isin(found.classes, [self.class_names.index(name) for name in settings.classes])
        keep = np.flatnonzero(mask)[:settings.max_detections]
        return Detections(found.boxes[keep], found.scores[keep], found.classes[keep])

    def detect(self, images, settings: DetectConfig | None = None) -> list[Detections]:
        """Images (see the interface), consecutive ones of one size as a batch (LiteRT: one at a time)."""
        settings = self._applied(settings)
        found = []
        for batch in same_size_batches(rgb_images(images), 1 if self.metadata.format == "litert" else None):
            result = self._run(batch)
            for i, count in enumerate(result["count"].astype(int)):
                raw = Detections(result["boxes"][i, :count].astype(np.float32),
                                 result["scores"][i, :count].astype(np.float32),
                                 result["classes"][i, :count].astype(np.int32))
                found.append(self._filtered(raw, settings))
        return found

    def detect_paths(self, paths: Sequence[str], settings: DetectConfig | None = None,
                     progress: bool = False) -> list[Detections]:
        """Image files that exist and decode, one at a time."""
        found = []
        for path in tqdm(paths, desc="detecting", unit="img", disable=not progress, leave=False):
            try:
                image = read_rgb(path)
            except tf.errors.OpError:
                raise ValueError(f"{path}: corrupt or not an image (decoding failed)") from None
            found += self.detect(image, settings)
        return found
