"""From what a user gave (settings by field name, a `--config` file, a run to `--resume`) to the run's
`TrainConfig`: the merging and resume rules shared by `train.py` and the Python API.

Settings are `TrainConfig`, `ModelSpec` and `AugmentConfig` field names, plus three inputs that make fields:
`classes` (a class file → class names), `anchors` (an anchor file, in pixels of a 416 input → anchors scaled to the
input size) and `phi` (N → backbone efficientnet-bN).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from utils.config.run_config import (
    DEFAULT_ANCHORS_FILE,
    FIXED_ON_RESUME,
    AugmentConfig,
    LossConfig,
    ModelSpec,
    TrainConfig,
    load_config,
)
from utils.config.settings import field_default
from utils.data.anchors import ANCHOR_FILE_SIZE, check_anchors
from utils.data.annotations import read_anchors, read_annotations, read_class_names

# The model settings given by name; class names and anchors come from the inputs below (files), never as values.
MODEL_FIELDS = {f.name for f in dataclasses.fields(ModelSpec) if f.metadata.get("cli")}
AUGMENT_FIELDS = {f.name for f in dataclasses.fields(AugmentConfig)}
LOSS_FIELDS = {f.name for f in dataclasses.fields(LossConfig)}
TOP_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)} - {"model", "augment", "loss"}
MODEL_INPUTS = {"classes", "anchors", "phi"}
# What the resume state's variables depend on, as settings: fixed once a run has started.
FIXED_SETTINGS = (MODEL_FIELDS | MODEL_INPUTS | set(FIXED_ON_RESUME)) - {"model"}


def file_anchors(path: str | Path, input_size: int) -> tuple[tuple[float, float], ...]:
    """An anchor file (pixels of a 416 input) scaled to `input_size`."""
    return tuple(map(tuple, (read_anchors(path) * (input_size / ANCHOR_FILE_SIZE)).tolist()))


def _model_changes(settings: dict) -> dict:
    changes = {k: v for k, v in settings.items() if k in MODEL_FIELDS}
    if settings.get("phi") is not None:
        changes["backbone"] = f"efficientnet-b{settings['phi']}"
    if settings.get("classes") is not None:
        changes["class_names"] = tuple(read_class_names(settings["classes"]))
    return changes


def config_from_settings(settings: dict) -> TrainConfig:
    """A new run's config; `train`, `val`, `classes` and `run_dir` are required, the rest have their defaults."""
    missing = [name for name in ("train", "val", "classes", "run_dir") if not settings.get(name)]
    if missing:
        raise ValueError(", ".join("--" + m.replace("_", "-") for m in missing) +
                         " required (or --config FILE / --resume DIR)")
    model = _model_changes(settings)
    input_size = model.get("input_size", field_default(ModelSpec, "input_size"))
    model["anchors"] = file_anchors(settings.get("anchors") or DEFAULT_ANCHORS_FILE, input_size)
    augment = AugmentConfig(**{k: v for k, v in settings.items() if k in AUGMENT_FIELDS and v is not None})
    loss = LossConfig(**{k: v for k, v in settings.items() if k in LOSS_FIELDS and v is not None})
    top = {k: v for k, v in settings.items() if k in TOP_FIELDS}
    return TrainConfig(**top, model=ModelSpec(**model), loss=loss, augment=augment)


def with_overrides(base: TrainConfig, settings: dict, resuming: bool) -> TrainConfig:
    """`base` with the given settings applied (the same meanings as for a new run). On resume, what the resume
    state depends on (the model, frozen phase, optimizer, EMA) cannot change."""
    fixed = sorted(FIXED_SETTINGS & set(settings)) if resuming else []
    if fixed:
        raise ValueError("--resume: the model, its frozen layers, the optimizer and EMA cannot change on resume ("
                         + ", ".join("--" + f.replace("_", "-") for f in fixed) + ")")
    spec = dataclasses.replace(base.model, **_model_changes(settings))
    if "anchors" in settings:
        spec = dataclasses.replace(spec, anchors=file_anchors(settings["anchors"], spec.input_size))
    elif spec.input_size != base.model.input_size:
        spec = dataclasses.replace(spec, anchors=spec.anchor_array() * (spec.input_size / base.model.input_size))
    augment = dataclasses.replace(base.augment, **{k: v for k, v in settings.items() if k in AUGMENT_FIELDS})
    loss = dataclasses.replace(base.loss, **{k: v for k, v in settings.items() if k in LOSS_FIELDS})
    top = {k: v for k, v in settings.items() if k in TOP_FIELDS}
    if top.get("optimizer", base.optimizer) != base.optimizer:  # the new optimizer's defaults unless given
        top = {"learning_rate": None, "momentum": None, **top}
    return dataclasses.replace(base, model=spec, loss=loss, augment=augment, **top)


def resolve_config(settings: dict, config_file: str | None = None, resume: str | None = None
                   ) -> tuple[TrainConfig, bool]:
    """The run's config from settings, from a config file plus settings, or from the run in `resume` plus
    settings; and whether it is a new run (not a resume)."""
    if resume:
        base = load_config(Path(resume) / "config.json")
        return with_overrides(dataclasses.replace(base, run_dir=str(resume)), settings, resuming=True), False
    if config_file:
        config = with_overrides(load_config(config_file), settings, resuming=False)
        if not config.run_dir or config.run_dir == "-":
            raise ValueError("--run-dir required")
        return config, True
    return config_from_settings(settings), True


def with_checked_anchors(config: TrainConfig, recompute: bool) -> TrainConfig:
    """Check the anchors against the training boxes (warn below 98% best-possible recall; replace if asked); an
    anchor-free head has none to check."""
    spec = config.model
    if spec.head == "decoupled":
        return config
    anchors = check_anchors(read_annotations(config.train, strict=False)[0], spec.anchor_array(), spec.input_size,
                            threshold=config.loss.anchor_t, recompute=recompute, seed=config.seed)
    return dataclasses.replace(config, model=dataclasses.replace(spec, anchors=anchors))
