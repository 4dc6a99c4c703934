"""Typed, frozen configuration: the one place every training setting and its default is declared (the command
line's flags, their help and the flag reference in the docs are derived from these dataclasses), saved with each
run as its record."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import yaml

from utils.io.files import atomic_write_json, read_user_text

OPTIMIZERS = ("sgd", "adam", "adamw")
LR_DECAYS = ("cosine", "step")
NECKS = ("yolov3", "yolov5")
ASSIGNERS = ("v3", "v5")
STRATEGIES = ("auto", "one", "mirrored", "multiworker")
CACHES = ("none", "ram")
# Peak learning rates allowed after batch-size scaling (per optimizer family): what keeps a tiny or huge batch from
# scaling the rate into divergence or stagnation.
LR_LIMITS = {"sgd": (5e-4, 5e-2), "adam": (1e-4, 4e-3), "adamw": (1e-4, 4e-3)}
DEFAULT_LR = {"sgd": 1e-2, "adam": 8e-3, "adamw": 8e-3}  # at the nominal batch of 64: 1e-3 for Adam at batch 8
DEFAULT_MOMENTUM = {"sgd": 0.937, "adam": 0.9, "adamw": 0.9}
# The fine-tuning recipe (with pretrained backbone weights, docs/transfer_learning.md): a first phase of epochs with
# the backbone frozen while the new neck and head learn to read its features, so their first, large gradients
# never reach it; the backbone's BatchNorm frozen throughout (batch-8 statistics are noisier than ImageNet's, and
# a step without them is a third cheaper on a CPU); EMA on.
FINE_TUNE_FREEZE_EPOCHS = 3
DEFAULT_ANCHORS_FILE = Path(__file__).resolve().parents[2] / "model_data" / "yolo_anchors.txt"


def setting(default=None, help: str = "", *, flag: str | None = None, choices: tuple | None = None,
            metavar: str | tuple | None = None, cli: bool = True, factory=None):
    """A dataclass field with what its command-line flag needs: help text, flag name (default: the field's name
    with dashes), choices. `cli=False`: no flag (set from other inputs, such as the class file)."""
    metadata = {"help": help, "flag": flag, "choices": choices, "metavar": metavar, "cli": cli}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a detector and read its outputs."""

    class_names: tuple[str, ...] = setting(help="class names", cli=False)
    anchors: tuple[tuple[float, float], ...] = setting(help="w, h in input pixels, level-major", cli=False)
    backbone: str = setting("efficientnet-b0", "efficientnet-b0…b7, efficientnet-lite0…lite4, "
                            "efficientnetv2-b0…b3/s/m/l, shufflenetv2-x0.5…x2.0[-stemblock]")
    neck: str = setting("yolov5", "YOLOv5 PAN (SPPF + C3) or YOLOv3 FPN", choices=NECKS)
    input_size: int = setting(416, "square input size, a multiple of 32")
    neck_width: float | None = setting(None, "neck width multiple (default: per phi)")
    neck_depth: float | None = setting(None, "yolov5 C3 depth multiple (default: per phi)")
    assigner: str = setting("v3", "target assignment and box parameterisation: YOLOv3 (best anchors, centre cell) "
                            "or YOLOv5 (anchor ratio < --anchor-t, centre + 2 neighbour cells)", choices=ASSIGNERS)

    def __post_init__(self) -> None:
        if self.input_size < 32 or self.input_size % 32:
            raise ValueError(f"input size must be a positive multiple of 32, got {self.input_size}")
        if self.assigner not in ASSIGNERS:
            raise ValueError(f"unknown assigner {self.assigner!r}; expected one of {ASSIGNERS}")
        if self.neck not in NECKS:
            raise ValueError(f"unknown neck {self.neck!r}; expected one of {NECKS}")
        if not self.class_names:
            raise ValueError("the class list is empty")
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "anchors", tuple((round(float(w), 2), round(float(h), 2)) for w, h in
                                                  np.reshape(self.anchors, (-1, 2))))

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
    """Strengths and probabilities of the training augmentations (validation uses a plain letterbox). Boxes that
    augmentation made tiny or cut off are dropped (`min_box_size`, `min_box_visible`)."""

    scale_min: float = setting(0.5, "smallest random zoom of the (letterboxed or mosaic) image")
    scale_max: float = setting(1.5, "largest random zoom (crops when > 1)")
    aspect_jitter: float = setting(0.3, "random aspect-ratio change (the ratio of two draws from [1 − j, 1 + j])")
    translate: float = setting(0.1, "random shift, a fraction of the input size")
    degrees: float = setting(0.0, "random rotation range (degrees)")
    shear: float = setting(0.0, "random shear range (degrees)")
    flip_probability: float = setting(0.5, "horizontal flip probability", flag="--flip")
    hsv_h: float = setting(0.015, "hue shift range (fraction of the colour circle)")
    hsv_s: float = setting(0.7, "saturation gain range: gains in [1 − s, 1 + s]")
    hsv_v: float = setting(0.4, "value gain range: gains in [1 − v, 1 + v]")
    mosaic: float = setting(1.0, "probability of a 4-image mosaic")
    mixup: float = setting(0.0, "probability of blending with a second sample")
    min_box_size: float = setting(2.0, "drop augmented boxes narrower or shorter than this (pixels)")
    min_box_visible: float = setting(0.2, "drop boxes with less than this fraction left in the image")

    def __post_init__(self) -> None:
        for name in ("flip_probability", "mosaic", "mixup", "min_box_visible", "translate", "aspect_jitter"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augmentation {name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 < self.scale_min <= self.scale_max:
            raise ValueError(f"augmentation scale range must satisfy 0 < min ≤ max, got {self.scale_min}, "
                             f"{self.scale_max}")


@dataclass(frozen=True)
class TrainConfig:
    """A training run: data, model, schedule and augmentation. Settings left None take the defaults named in
    their help (resolved once, here, so the saved config holds the values the run used)."""

    train: str = setting(None, "training annotation lines (required without --config/--resume)")
    val: str = setting(None, "validation annotation lines (mAP each eval period)")
    run_dir: str = setting(None, "output folder (required without --resume); rerun on it to resume")
    model: ModelSpec = setting(None, "the detector", cli=False)
    epochs: int = setting(50, "epochs to train (with --time-limit: at most)")
    batch_size: int = setting(8, "images per step (global, over all replicas)")
    optimizer: str = setting("adamw", "sgd is Nesterov SGD", choices=OPTIMIZERS)
    learning_rate: float | None = setting(
        None, f"peak learning rate at the nominal batch (default: sgd {DEFAULT_LR['sgd']:g}, adam/adamw "
              f"{DEFAULT_LR['adamw']:g})", flag="--lr")
    momentum: float | None = setting(None, f"SGD momentum / Adam beta_1 (default: {DEFAULT_MOMENTUM['sgd']} / "
                                           f"{DEFAULT_MOMENTUM['adam']})")
    nominal_batch_size: int = setting(64, "the learning rate is scaled by batch size / this, then clipped to "
                                          "--lr-limits; 0: no scaling")
    lr_limits: tuple[float, float] | None = setting(
        None, "bounds of the scaled peak rate (default: sgd 5e-4 5e-2, adam/adamw 1e-4 4e-3)", metavar=("MIN", "MAX"))
    lr_decay: str = setting("cosine", "after warmup: cosine, or ten equal steps down to the final rate",
                            choices=LR_DECAYS)
    min_learning_rate_ratio: float = setting(0.01, "final learning rate as a fraction of the peak",
                                             flag="--min-lr-ratio")
    warmup_epochs: float = setting(1.0, "epochs of linear learning-rate warmup")
    weight_decay: float = setting(5e-4, "on conv and dense kernels only (not adam)")
    clip_norm: float | None = setting(None, "clip gradients to this global norm")
    ema: bool | None = setting(None, "keep a moving average of the weights; evaluation, best.keras and last.keras "
                                     "use it (default: on with --backbone-weights, else off)")
    ema_momentum: float | None = setting(None, "EMA momentum (default: 1 - 10 / total steps, within "
                                               "[0.99, 0.9999])")
    eval_period: int = setting(1, "epochs between validation mAP evaluations")
    eval_batch_size: int = setting(8, "images per forward pass of the validation mAP")
    patience: int = setting(0, "stop after this many epochs without a better validation mAP@0.5 (0: never)")
    time_limit: float | None = setting(None, "train for this many minutes (wall time from the first epoch, "
                                             "evaluation included): the schedule is re-planned after every epoch to "
                                             "end at the budget", metavar="MINUTES")
    seed: int = setting(0, "random seed of weights, data order and augmentation")
    max_boxes: int = setting(100, "boxes kept per image")
    ignore_threshold: float = setting(0.5, "v3: IoU above which a negative is ignored")
    match_threshold: float = setting(0.2, "v3: shape IoU above which a box also trains a non-best anchor "
                                          "(1 = best anchor only)")
    anchor_t: float = setting(4.0, "v5: largest box/anchor side ratio that matches")
    label_smoothing: float = setting(0.0, "v5: class label smoothing ε")
    augment: AugmentConfig = setting(help="augmentation", cli=False, factory=AugmentConfig)
    close_mosaic: int = setting(10, "last epochs trained without mosaic and mixup")
    cache: str = setting("none", "ram: decode every training image once and keep it in memory (H×W×3 bytes each)",
                         choices=CACHES)
    strict: bool = setting(False, "stop on a bad sample (unparsable line, missing or corrupt image) instead of "
                                  "skipping it")
    backbone_weights: str | None = setting(None, "imagenet (keras.applications download/cache) or a weights file "
                                                 "(default: random init)")
    freeze_backbone: bool = setting(False, "train only neck and head for the whole run (backbone weights and "
                                           "BatchNorm statistics stay fixed)")
    freeze_epochs: int | None = setting(None, f"first phase: this many epochs with the backbone frozen (then "
                                              f"--epochs in total; default: {FINE_TUNE_FREEZE_EPOCHS} with "
                                              f"--backbone-weights, else 0)")
    freeze_batch_size: int | None = setting(None, "batch size of the frozen phase (default: --batch-size; frozen "
                                                  "steps need less memory)")
    freeze_backbone_bn: bool | None = setting(None, "keep the backbone's BatchNorm layers frozen (pretrained "
                                                    "statistics, inference mode) after the frozen phase too "
                                                    "(default: on with --backbone-weights, else off)")
    mixed_precision: bool = setting(False, "mixed float16 (GPU) / bfloat16 (CPU) compute; outputs and loss stay "
                                           "float32")
    strategy: str = setting("auto", "tf.distribute: auto picks multiworker from TF_CONFIG, mirrored for several "
                                    "GPUs; --batch-size is global", choices=STRATEGIES)

    def __post_init__(self) -> None:
        if self.model is None:
            raise ValueError("a run config needs a model (ModelSpec)")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; expected one of {OPTIMIZERS}")
        if self.backbone_weights is not None and self.backbone_weights.lower() in ("", "none"):
            object.__setattr__(self, "backbone_weights", None)
        # The optimizer's defaults, and the fine-tuning recipe when pretrained backbone weights are given and these
        # are left unset.
        pretrained = self.backbone_weights is not None
        resolved = {"learning_rate": DEFAULT_LR[self.optimizer], "momentum": DEFAULT_MOMENTUM[self.optimizer],
                    "freeze_epochs": FINE_TUNE_FREEZE_EPOCHS if pretrained else 0, "ema": pretrained,
                    "freeze_backbone_bn": pretrained}
        for name, value in resolved.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.lr_limits is not None:
            object.__setattr__(self, "lr_limits", tuple(float(v) for v in self.lr_limits))
        if self.time_limit is not None and self.time_limit <= 0:
            raise ValueError(f"time limit must be positive (minutes), got {self.time_limit}")
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
    """Inverse of `to_dict` (unknown keys are an error, so a typo never goes unnoticed; missing ones take their
    defaults)."""
    data = dict(data)
    model, augment = dict(data.pop("model", None) or {}), dict(data.pop("augment", None) or {})
    for given, cls, where in ((data, TrainConfig, ""), (model, ModelSpec, "model."), (augment, AugmentConfig,
                                                                                     "augment.")):
        unknown = set(given) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(where + key for key in unknown)}; a config written by an "
                             f"earlier version: remove these keys to keep its other settings, or start a new run")
    if "class_names" not in model or "anchors" not in model:
        raise ValueError("the model needs class_names and anchors")
    return TrainConfig(**{**data, "model": ModelSpec(**model), "augment": AugmentConfig(**augment)})


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
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("expected a mapping of config keys")
        return from_dict(data)
    except Exception as error:  # JSON, YAML, missing or unknown keys, bad values: all name the file
        raise ValueError(f"{path}: not a valid EffYOLO run config ({error})") from None


def field_default(config_class: type, name: str):
    """The declared default of one setting (for scripts whose flags share it)."""
    return config_class.__dataclass_fields__[name].default
