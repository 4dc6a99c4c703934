"""Typed, frozen configuration: built once from the CLI, saved with the run, enough to rebuild the model."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from utils.io.files import atomic_write_json, read_user_text

OPTIMIZERS = ("sgd", "adam", "adamw")
LR_DECAYS = ("cosine", "step")
# Peak learning rates allowed after batch-size scaling (per optimizer family): what keeps a tiny or huge batch from
# scaling the rate into divergence or stagnation.
LR_LIMITS = {"sgd": (5e-4, 5e-2), "adam": (1e-4, 4e-3), "adamw": (1e-4, 4e-3)}
DEFAULT_LR = {"sgd": 1e-2, "adam": 8e-3, "adamw": 8e-3}  # at the nominal batch of 64: 1e-3 for Adam at batch 8
# The fine-tuning recipe (with pretrained backbone weights, docs/transfer_learning.md): a first phase of epochs with
# the backbone frozen while the new neck and head learn to read its features, so their first, large gradients
# never reach it; the backbone's BatchNorm frozen throughout (batch-8 statistics are noisier than ImageNet's, and
# a step without them is a third cheaper on a CPU); EMA on.
FINE_TUNE_FREEZE_EPOCHS = 3
LEGACY_AUGMENT_KEYS = ("scale_min", "scale_max", "aspect_jitter", "flip_probability")  # flat before the split
# A run saved before mosaic, mixup, HSV and shift existed resumes with them off, as it was trained.
LEGACY_AUGMENT_DEFAULTS = {"mosaic": 0.0, "mixup": 0.0, "hsv_h": 0.0, "hsv_s": 0.0, "hsv_v": 0.0, "translate": 0.0}


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

    def __post_init__(self) -> None:
        if self.input_size < 32 or self.input_size % 32:
            raise ValueError(f"input size must be a positive multiple of 32, got {self.input_size}")
        if self.assigner not in ("v3", "v5"):
            raise ValueError(f"unknown assigner {self.assigner!r}; expected v3 or v5")
        if not self.class_names:
            raise ValueError("the class list is empty")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.input_size, self.input_size, 3)

    def anchor_array(self) -> np.ndarray:
        return np.asarray(self.anchors, dtype=np.float32)


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths and probabilities of the training augmentations (validation uses a plain letterbox).

    scale_min/scale_max: random zoom of the (letterboxed or mosaic) image; above 1 it crops. aspect_jitter: random
    aspect-ratio change (the ratio of two draws from [1 − j, 1 + j]). translate: random shift, a fraction of the
    output size. degrees / shear: random rotation and shear (degrees). flip_probability: horizontal flip.
    hsv_h: hue shift (fraction of the colour circle); hsv_s, hsv_v: saturation and value gains in [1 − s, 1 + s].
    mosaic: probability that a sample is a mosaic of four images; mixup: probability that it is blended with a
    second sample. min_box_size (pixels) and min_box_visible (fraction of the transformed box left inside the
    canvas) drop boxes that augmentation made tiny or cut off.
    """

    scale_min: float = 0.5
    scale_max: float = 1.5
    aspect_jitter: float = 0.3
    translate: float = 0.1
    degrees: float = 0.0
    shear: float = 0.0
    flip_probability: float = 0.5
    hsv_h: float = 0.015
    hsv_s: float = 0.7
    hsv_v: float = 0.4
    mosaic: float = 1.0
    mixup: float = 0.0
    min_box_size: float = 2.0
    min_box_visible: float = 0.2

    def __post_init__(self) -> None:
        for name in ("flip_probability", "mosaic", "mixup", "min_box_visible", "translate", "aspect_jitter"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augmentation {name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 < self.scale_min <= self.scale_max:
            raise ValueError(f"augmentation scale range must satisfy 0 < min ≤ max, got {self.scale_min}, "
                             f"{self.scale_max}")


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
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    close_mosaic: int = 10  # last epochs trained without mosaic and mixup
    cache: str = "none"  # "ram": decode every training image once and keep it in memory
    strict: bool = False  # a bad sample (unparsable line, missing or corrupt image) is an error, not a skip
    backbone_weights: str | None = None
    freeze_backbone: bool = False  # the whole run
    freeze_epochs: int | None = None  # a first phase with the backbone frozen (None: the fine-tuning recipe's) …
    freeze_batch_size: int | None = None  # … at this batch size (None: batch_size)
    freeze_backbone_bn: bool | None = None  # backbone BatchNorm frozen after the frozen phase too (None: recipe)
    optimizer: str = "adamw"  # sgd (Nesterov) | adam | adamw
    momentum: float = 0.937  # SGD momentum, Adam's beta_1
    nominal_batch_size: int = 64  # learning_rate is the rate at this batch; 0: no batch-size scaling
    lr_limits: tuple[float, float] | None = None  # bounds of the scaled rate (None: the optimizer's, see schedules)
    lr_decay: str = "cosine"  # cosine | step
    ema: bool | None = None  # evaluate and checkpoint a moving average of the weights (None: with backbone_weights)
    ema_momentum: float | None = None  # None: 1 − 10 / total steps, within [0.99, 0.9999]
    clip_norm: float | None = None  # global gradient-norm clipping
    patience: int = 0  # stop after this many epochs without a better validation mAP (0: never)
    mixed_precision: bool = False  # mixed float16 on GPU, bfloat16 on CPU; float32 outputs and loss
    strategy: str = "auto"  # auto | one | mirrored | multiworker (see utils.training.distribute)
    time_limit: float | None = None  # minutes of training; `epochs` is then the most it runs (time_budget)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The fine-tuning recipe when pretrained backbone weights are given and these are left unset.
        pretrained = self.backbone_weights is not None
        if self.freeze_epochs is None:
            object.__setattr__(self, "freeze_epochs", FINE_TUNE_FREEZE_EPOCHS if pretrained else 0)
        if self.ema is None:
            object.__setattr__(self, "ema", pretrained)
        if self.freeze_backbone_bn is None:
            object.__setattr__(self, "freeze_backbone_bn", pretrained)
        if self.time_limit is not None and self.time_limit <= 0:
            raise ValueError(f"time limit must be positive (minutes), got {self.time_limit}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; expected one of {OPTIMIZERS}")
        if self.lr_decay not in LR_DECAYS:
            raise ValueError(f"unknown lr decay {self.lr_decay!r}; expected one of {LR_DECAYS}")
        if self.lr_limits is not None and not 0 < self.lr_limits[0] <= self.lr_limits[1]:
            raise ValueError(f"lr limits must satisfy 0 < min ≤ max, got {self.lr_limits}")


# What a run's resume state depends on (its variables and their shapes): fixed once a run has started.
FIXED_ON_RESUME = ("model", "freeze_backbone", "freeze_epochs", "freeze_batch_size", "freeze_backbone_bn",
                   "optimizer", "ema")


def to_dict(config: TrainConfig) -> dict:
    return asdict(config)


def _flat(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_differences(saved: TrainConfig, new: TrainConfig, only: tuple[str, ...] | None = None) -> list[str]:
    """`field: saved → new` for every setting that differs (as JSON would store them), `only` limiting the
    comparison to those top-level fields; `run_dir` is not compared."""
    old_values, new_values = (_flat(json.loads(json.dumps(to_dict(c)))) for c in (saved, new))
    keys = sorted(set(old_values) | set(new_values))
    return [f"{key}: {old_values.get(key)!r} → {new_values.get(key)!r}" for key in keys
            if key != "run_dir" and (only is None or key.split(".")[0] in only)
            and old_values.get(key) != new_values.get(key)]


def from_dict(data: dict) -> TrainConfig:
    """Inverse of `to_dict` (unknown keys are an error, so a typo never goes unnoticed)."""
    data = dict(data)
    augment = dict(data.pop("augment", {}))
    if any(key in data for key in LEGACY_AUGMENT_KEYS):
        augment = {**LEGACY_AUGMENT_DEFAULTS, **{key: data.pop(key) for key in LEGACY_AUGMENT_KEYS if key in data}}
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown config keys: {sorted(unknown)}")
    data.setdefault("nominal_batch_size", 0)  # runs saved before batch-size scaling resume with the rate they had
    data.setdefault("freeze_backbone_bn", False)  # and runs saved before frozen BatchNorm with it training
    if data.get("lr_limits") is not None:
        data["lr_limits"] = tuple(float(v) for v in data["lr_limits"])
    model = data["model"]
    spec = ModelSpec(
        backbone=model["backbone"], neck=model["neck"], class_names=tuple(model["class_names"]),
        anchors=tuple(tuple(float(v) for v in pair) for pair in model["anchors"]),
        input_size=int(model["input_size"]), neck_width=model.get("neck_width"),
        neck_depth=model.get("neck_depth"), assigner=model.get("assigner", "v3"),
    )
    unknown_augment = set(augment) - {f.name for f in fields(AugmentConfig)}
    if unknown_augment:
        raise ValueError(f"unknown augment keys: {sorted(unknown_augment)}")
    return TrainConfig(**{**data, "model": spec, "augment": AugmentConfig(**augment)})


def save_config(config: TrainConfig, path: str | Path) -> None:
    atomic_write_json(path, to_dict(config))


def load_config(path: str | Path) -> TrainConfig:
    """A run config from JSON (what a run saves) or YAML (`.yaml`/`.yml`, the same keys)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: run config not found")
    text = read_user_text(path)
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("expected a mapping of config keys")
        return from_dict(data)
    except Exception as error:  # JSON, YAML, missing or unknown keys, bad values: all name the file
        raise ValueError(f"{path}: not a valid EffYOLO run config ({error})") from None
