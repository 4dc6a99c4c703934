"""Find and load a trained detector: a run directory (its best, else last, model), a `.keras` file, or an export
(SavedModel folder, `.onnx`, `.tflite`) — each behind the one detector interface."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import keras

import nets  # noqa: F401  (registers EffYOLO's classes so its .keras files deserialize)
from nets.detector import YoloDetector
from utils.config.run_config import load_config
from utils.inference.exported import ExportedDetector, export_format
from utils.inference.interface import Detector

log = logging.getLogger(__name__)


def resolve_model_path(run_or_model: str | Path) -> Path:
    """A run directory → its `best.keras` (else `last.keras`); a `.keras` path → itself."""
    path = Path(run_or_model)
    if path.is_dir():
        for name in ("best.keras", "last.keras"):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"{path}: no best.keras or last.keras in this run directory")
    if path.suffix != ".keras":
        raise ValueError(f"{path}: expected a run directory, a .keras file or an export (SavedModel folder, .onnx, "
                         f".tflite)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    return path


def load_model_file(path: Path) -> keras.Model:
    """`keras.saving.load_model` (uncompiled); a file that is not a complete `.keras` archive is reported as
    corrupt, not (as Keras says) as not found."""
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: corrupt or incomplete model file (not a .keras zip archive)")
    try:
        return keras.saving.load_model(path, compile=False)
    except (zipfile.BadZipFile, KeyError, OSError, EOFError) as error:
        raise ValueError(f"{path}: corrupt or incomplete model file ({error})") from None


def as_detector(model: keras.Model, path: Path) -> YoloDetector:
    """`model` itself, or — a bare network saved by an earlier version — that network with the class names, anchors
    and box coding of the `config.json` beside it."""
    if isinstance(model, YoloDetector):
        return model
    config_path = path.parent / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{path}: a bare network from an earlier EffYOLO version, and no config.json beside it to "
                         f"give its classes and anchors; put the run's config.json beside it, or retrain")
    spec = load_config(config_path).model
    log.info("%s: an earlier version's network; classes and anchors from %s", path, config_path)
    return YoloDetector.from_network(model, spec.class_names, spec.anchor_array(), spec.assigner)


def load_keras_detector(run_or_model: str | Path) -> YoloDetector:
    """The trained Keras detector (uncompiled) of a run directory or `.keras` file. In a run directory whose
    `best.keras` is corrupt, `last.keras` is used instead, with a warning."""
    model_path = resolve_model_path(run_or_model)
    try:
        return as_detector(load_model_file(model_path), model_path)
    except ValueError as error:
        fallback = model_path.with_name("last.keras")
        if not Path(run_or_model).is_dir() or model_path.name != "best.keras" or not fallback.is_file():
            raise
        log.warning("%s; using %s instead", error, fallback)
        return as_detector(load_model_file(fallback), fallback)


def load_detector(source: str | Path) -> Detector:
    """A run directory or `.keras` file (`load_keras_detector`), or an export (`ExportedDetector`)."""
    return ExportedDetector(source) if export_format(source) else load_keras_detector(source)
