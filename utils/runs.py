"""Find and load a trained detector from a run directory or a `.keras` file beside its `config.json`."""

from __future__ import annotations

from pathlib import Path

import keras

import nets.loss  # noqa: F401  (registers the losses so compiled checkpoints deserialize)
import nets.loss_v5  # noqa: F401
import nets.shufflenet_v2  # noqa: F401  (registers its channel split/shuffle layers)
from utils.config import TrainConfig, load_config


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


def load_detector(run_or_model: str | Path) -> tuple[keras.Model, TrainConfig]:
    """The trained model (uncompiled, for inference) and the run config saved beside it."""
    model_path = resolve_model_path(run_or_model)
    config = load_config(model_path.parent / "config.json")
    model = keras.saving.load_model(model_path, compile=False)
    return model, config
