"""Find and load a trained detector from a run directory or a `.keras` file beside its `config.json`."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import keras

import nets.fused  # noqa: F401  (registers the fused BatchNormalization and Swish layers)
import nets.loss  # noqa: F401  (registers the losses so compiled checkpoints deserialize)
import nets.loss_v5  # noqa: F401
import nets.shufflenet_v2  # noqa: F401  (registers its channel split/shuffle layers)
from utils.config.run_config import TrainConfig, load_config

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
        raise ValueError(f"{path}: expected a run directory or a .keras file")
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


def load_detector(run_or_model: str | Path) -> tuple[keras.Model, TrainConfig]:
    """The trained model (uncompiled, for inference) and the run config saved beside it. In a run directory whose
    `best.keras` is corrupt, `last.keras` is used instead, with a warning."""
    model_path = resolve_model_path(run_or_model)
    config = load_config(model_path.parent / "config.json")
    try:
        return load_model_file(model_path), config
    except ValueError as error:
        fallback = model_path.with_name("last.keras")
        if not Path(run_or_model).is_dir() or model_path.name != "best.keras" or not fallback.is_file():
            raise
        log.warning("%s; using %s instead", error, fallback)
        return load_model_file(fallback), config
