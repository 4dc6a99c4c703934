"""Typed, frozen configuration: built once from the CLI, saved with the run, enough to rebuild the model."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from utils.fileio import atomic_write_json


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a detector and read its outputs."""

    backbone: str
    neck: str
    class_names: tuple[str, ...]
    anchors: tuple[tuple[float, float], ...]
    input_size: int
    neck_width: float | None = None
    neck_depth: float | None = None
    assigner: str = "v3"  # target assignment and, with it, the head's box parameterisation (v3 | v5)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.input_size, self.input_size, 3)

    def anchor_array(self) -> np.ndarray:
        return np.asarray(self.anchors, dtype=np.float32)


@dataclass(frozen=True)
class TrainConfig:
    """A training run: data, model, schedule and augmentation."""

    train: str
    val: str
    run_dir: str
    model: ModelSpec
    epochs: int = 50
    batch_size: int = 8
    learning_rate: float = 1e-3
    min_learning_rate_ratio: float = 0.01
    warmup_epochs: float = 1.0
    weight_decay: float = 5e-4
    eval_period: int = 1
    eval_batch_size: int = 8
    seed: int = 0
    max_boxes: int = 100
    ignore_threshold: float = 0.5
    match_threshold: float = 0.2
    anchor_t: float = 4.0
    label_smoothing: float = 0.0
    scale_min: float = 0.5
    scale_max: float = 1.5
    aspect_jitter: float = 0.3
    flip_probability: float = 0.5
    backbone_weights: str | None = None
    freeze_backbone: bool = False
    extra: dict = field(default_factory=dict)


def to_dict(config: TrainConfig) -> dict:
    return asdict(config)


def from_dict(data: dict) -> TrainConfig:
    """Inverse of `to_dict` (unknown keys are an error, so a typo never goes unnoticed)."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown config keys: {sorted(unknown)}")
    model = data["model"]
    spec = ModelSpec(
        backbone=model["backbone"], neck=model["neck"], class_names=tuple(model["class_names"]),
        anchors=tuple(tuple(float(v) for v in pair) for pair in model["anchors"]),
        input_size=int(model["input_size"]), neck_width=model.get("neck_width"),
        neck_depth=model.get("neck_depth"), assigner=model.get("assigner", "v3"),
    )
    return TrainConfig(**{**data, "model": spec})


def save_config(config: TrainConfig, path: str | Path) -> None:
    atomic_write_json(path, to_dict(config))


def load_config(path: str | Path) -> TrainConfig:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: run config not found")
    try:
        return from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as error:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path}: not a valid EffYOLO run config ({error})") from None
