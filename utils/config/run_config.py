"""Typed, frozen configuration: the one place every training setting and its default is declared (the command
line's flags, their help and the flag reference in the docs are derived from these dataclasses), saved with each
run as its record."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml

from utils.config.detect_config import DetectConfig
from utils.config.settings import ConfigError, build_checked, check_fields, field_default, reject_unknown, setting
from utils.io.files import atomic_write_json, read_user_text
from utils.ops import levels

OPTIMIZERS = ("sgd", "adam", "adamw")
LR_DECAYS = ("cosine", "step")
NECKS = ("yolov3", "yolov5", "yolov7-tiny")
HEADS = ("anchor", "decoupled")
# Target assignment (and box coding) per head: the anchor head's YOLOv3 or YOLOv5 rules, the decoupled head's
# task-aligned assignment; the first is the head's default.
ASSIGNERS_OF_HEAD = {"anchor": ("v5", "v3"), "decoupled": ("tal",)}
ASSIGNERS = ("v3", "v5", "tal")
HEAD_OF_ASSIGNER = {assigner: head for head, assigners in ASSIGNERS_OF_HEAD.items() for assigner in assigners}
# The head of a new run that names neither head nor assigner, chosen by measurement (docs/results.md#heads-and-
# assigners). A run that names only its assigner, and a run saved before the decoupled head existed (its config has
# an assigner but no head), gets that assigner's head.
DEFAULT_HEAD = "decoupled"
# The loss part weights each head defaults to (YOLOv5's and YOLOv8's).
LOSS_GAINS = {"anchor": {"box_gain": 0.05, "objectness_gain": 1.0, "class_gain": 0.5},
              "decoupled": {"box_gain": 7.5, "objectness_gain": 0.0, "class_gain": 0.5}}
STRATEGIES = ("auto", "one", "mirrored", "multiworker")
CACHES = ("none", "ram")
# Peak learning rates allowed after batch-size scaling (per optimizer family): what keeps a tiny or huge batch from
# scaling the rate into divergence or stagnation.
LR_LIMITS = {"sgd": (5e-4, 5e-2), "adam": (1e-4, 4e-3), "adamw": (1e-4, 4e-3)}
DEFAULT_LR = {"sgd": 1e-2, "adam": 8e-3, "adamw": 8e-3}  # at the nominal batch of 64: 1e-3 for Adam at batch 8
DEFAULT_MOMENTUM = {"sgd": 0.937, "adam": 0.9, "adamw": 0.9}
# The fine-tuning recipe (with pretrained backbone weights, docs/training.md): a first phase of epochs with
# the backbone frozen while the new neck and head learn to read its features, so their first, large gradients
# never reach it; the backbone's BatchNorm frozen throughout (batch-8 statistics are noisier than ImageNet's, and
# a step without them is a third cheaper on a CPU); EMA on.
FINE_TUNE_FREEZE_EPOCHS = 3
DEFAULT_ANCHORS_FILE = Path(__file__).resolve().parents[2] / "model_data" / "yolo_anchors.txt"
ANCHORS_FILE_INPUT = 416  # anchors files are in pixels of a 416 input
DEFAULT_BACKBONE = "efficientnet-lite0"
# Backbone families with published ImageNet weights (keras.applications, the TPU reference's Lite checkpoints):
# `--backbone-weights` defaults to "imagenet" for them, to "none" for the rest (ShuffleNetV2, CSPDarknet).
IMAGENET_WEIGHTS_PREFIXES = ("efficientnet-", "efficientnetv2-")
NO_WEIGHTS = "none"


def default_weights(backbone: str) -> str:
    """What `--backbone-weights` means when not given: ImageNet weights where they are published."""
    return "imagenet" if backbone.startswith(IMAGENET_WEIGHTS_PREFIXES) else NO_WEIGHTS


def default_anchors(input_size: int) -> tuple[tuple[float, float], ...]:
    """The default anchors file (YOLOv3's COCO anchors) scaled to `input_size`."""
    values = [float(v) for v in DEFAULT_ANCHORS_FILE.read_text(encoding="utf-8").replace(",", " ").split()]
    scale = input_size / ANCHORS_FILE_INPUT
    return tuple((w * scale, h * scale) for w, h in zip(values[0::2], values[1::2], strict=True))


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a detector and read its outputs."""

    class_names: tuple[str, ...] = setting(help="class names", cli=False)
    anchors: tuple[tuple[float, float], ...] | None = setting(
        None, "w, h in input pixels, level-major (default: model_data/yolo_anchors.txt scaled to the input size)",
        cli=False)
    backbone: str = setting(DEFAULT_BACKBONE, "efficientnet-b0…b7, efficientnet-lite0…lite4, "
                            "efficientnetv2-b0…b3/s/m/l, shufflenetv2-x0.5…x2.0[-stemblock], cspdarknet-n…x")
    neck: str = setting("yolov5", "YOLOv5 PAN (SPPF + C3), YOLOv3 FPN, or YOLOv7-tiny's (SPPCSPC-style pooling + "
                                  "ELAN PAN)", choices=NECKS)
    input_size: int = setting(416, "square input size, a multiple of 32", minimum=32)
    neck_width: float | None = setting(None, "neck width multiple (default: per phi)", above=0)
    neck_depth: float | None = setting(None, "yolov5 C3 depth multiple (default: per phi)", above=0)
    head: str | None = setting(None, "decoupled: YOLOv8's anchor-free head (separate box and class branches, DFL box "
                                     "distributions; the default); anchor: YOLOv3/v5's anchor-based head (the "
                                     "default when --assigner is v3 or v5)", choices=HEADS)
    assigner: str | None = setting(None, "target assignment and box parameterisation: decoupled head tal "
                                         "(task-aligned); anchor head v5 (anchors whose size ratio is under "
                                         "--anchor-t, centre + 2 neighbour cells; its default) or v3 (the best "
                                         "anchor, centre cell)", choices=ASSIGNERS)
    reg_max: int = setting(16, "decoupled head: distance bins per box side (DFL)", minimum=2)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.head is None:
            object.__setattr__(self, "head", HEAD_OF_ASSIGNER[self.assigner] if self.assigner else DEFAULT_HEAD)
        allowed = ASSIGNERS_OF_HEAD[self.head]
        if self.assigner is None:
            object.__setattr__(self, "assigner", allowed[0])
        if self.assigner not in allowed:
            raise ConfigError("assigner", f"the {self.head} head takes {' or '.join(allowed)}, got {self.assigner!r}")
        if self.input_size % levels.max_stride():
            raise ConfigError("input_size", f"must be a multiple of {levels.max_stride()}, got {self.input_size}")
        if not self.class_names:
            raise ConfigError("class_names", "the class list is empty")
        duplicates = sorted({name for name in self.class_names if self.class_names.count(name) > 1})
        if duplicates or not all(name.strip() for name in self.class_names):
            raise ConfigError("class_names", f"names must be distinct and not blank, got {list(self.class_names)}")
        anchors = default_anchors(self.input_size) if self.anchors is None else self.anchors
        object.__setattr__(self, "anchors", tuple((round(float(w), 2), round(float(h), 2)) for w, h in
                                                  np.reshape(anchors, (-1, 2))))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.input_size, self.input_size, 3)

    def anchor_array(self) -> np.ndarray:
        return np.asarray(self.anchors, dtype=np.float32)

    @property
    def box_coding(self) -> str:
        """How the head's outputs code boxes: the anchor head's assigner (v3 | v5), or dfl."""
        return "dfl" if self.head == "decoupled" else self.assigner


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths and probabilities of the training augmentations (validation uses a plain letterbox). Boxes that
    augmentation made tiny or cut off are dropped (`min_box_size`, `min_box_visible`)."""

    scale_min: float = setting(0.5, "smallest random zoom of the (letterboxed or mosaic) image", above=0)
    scale_max: float = setting(1.5, "largest random zoom (crops when > 1)", above=0)
    aspect_jitter: float = setting(0.3, "random aspect-ratio change (the ratio of two draws from [1 − j, 1 + j])",
                                   minimum=0, maximum=1)
    translate: float = setting(0.1, "random shift, a fraction of the input size", minimum=0, maximum=1)
    degrees: float = setting(0.0, "random rotation range (degrees)", minimum=0)
    shear: float = setting(0.0, "random shear range (degrees)", minimum=0)
    flip_probability: float = setting(0.5, "horizontal flip probability", flag="--flip", minimum=0, maximum=1)
    hsv_h: float = setting(0.015, "hue shift range (fraction of the colour circle)", minimum=0)
    hsv_s: float = setting(0.7, "saturation gain range: gains in [1 − s, 1 + s]", minimum=0)
    hsv_v: float = setting(0.4, "value gain range: gains in [1 − v, 1 + v]", minimum=0)
    mosaic: float = setting(1.0, "probability of a 4-image mosaic", minimum=0, maximum=1)
    mixup: float = setting(0.0, "probability of blending with a second sample", minimum=0, maximum=1)
    min_box_size: float = setting(2.0, "drop augmented boxes narrower or shorter than this (pixels)", minimum=0)
    min_box_visible: float = setting(0.2, "drop boxes with less than this fraction left in the image", minimum=0,
                                     maximum=1)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.scale_min > self.scale_max:
            raise ConfigError("scale_min", f"the zoom range must satisfy min ≤ max, got {self.scale_min}, "
                                           f"{self.scale_max}")


@dataclass(frozen=True)
class LossConfig:
    """The detector's loss: target assignment thresholds and the weights of its parts (`YoloDetector.compile`)."""

    ignore_threshold: float = setting(0.5, "v3: IoU above which a negative is ignored", minimum=0, maximum=1)
    match_threshold: float = setting(0.2, "v3: shape IoU above which a box also trains a non-best anchor "
                                          "(1 = best anchor only)", minimum=0, maximum=1)
    iou_objectness: bool = setting(False, "v3: a positive's objectness target is the CIoU of its predicted box "
                                          "(as v5's) instead of 1")
    anchor_t: float = setting(4.0, "v5: largest box/anchor side ratio that matches", above=1)
    label_smoothing: float = setting(0.0, "v5: class label smoothing ε", minimum=0, maximum=1)
    topk: int = setting(10, "tal: anchors each box takes (the best aligned)", minimum=1)
    alignment_alpha: float = setting(0.5, "tal: exponent of the class score in the alignment", minimum=0)
    alignment_beta: float = setting(6.0, "tal: exponent of the CIoU in the alignment", minimum=0)
    box_gain: float | None = setting(None, "weight of the box (CIoU) part (default: anchor head 0.05, decoupled "
                                           "7.5)", minimum=0)
    objectness_gain: float | None = setting(None, "weight of the objectness part (anchor head; default 1.0)",
                                            minimum=0)
    class_gain: float | None = setting(None, "weight of the class part (default 0.5)", minimum=0)
    dfl_gain: float = setting(1.5, "decoupled head: weight of the DFL part", minimum=0)

    def __post_init__(self) -> None:
        check_fields(self)

    def for_head(self, head: str) -> LossConfig:
        """These settings with the gains left unset taken from the head's defaults (`LOSS_GAINS`)."""
        defaults = LOSS_GAINS[head]
        return dataclasses.replace(self, **{name: value for name, value in defaults.items()
                                            if getattr(self, name) is None})


@dataclass(frozen=True)
class TrainConfig:
    """A training run: data, model, schedule, loss and augmentation. Settings left None take the defaults named in
    their help (resolved once, here, so the saved config holds the values the run used)."""

    train: str | None = setting(None, "training annotation lines (required without --config/--resume)")
    val: str | None = setting(None, "validation annotation lines (mAP each eval period)")
    run_dir: str | None = setting(None, "output folder (required without --resume); rerun on it to resume")
    model: ModelSpec = setting(None, "the detector", cli=False)
    epochs: int = setting(50, "epochs to train (with --time-limit: at most)", minimum=1)
    batch_size: int = setting(8, "images per step (global, over all replicas)", minimum=1)
    optimizer: str = setting("adamw", "sgd is Nesterov SGD", choices=OPTIMIZERS)
    learning_rate: float | None = setting(
        None, f"peak learning rate at the nominal batch (default: sgd {DEFAULT_LR['sgd']:g}, adam/adamw "
              f"{DEFAULT_LR['adamw']:g})", flag="--lr", above=0)
    momentum: float | None = setting(None, f"SGD momentum / Adam beta_1 (default: {DEFAULT_MOMENTUM['sgd']} / "
                                           f"{DEFAULT_MOMENTUM['adam']})", minimum=0, maximum=1)
    nominal_batch_size: int = setting(64, "the learning rate is scaled by batch size / this, then clipped to "
                                          "--lr-limits; 0: no scaling", minimum=0)
    lr_limits: tuple[float, float] | None = setting(
        None, "bounds of the scaled peak rate (default: sgd 5e-4 5e-2, adam/adamw 1e-4 4e-3)", metavar=("MIN", "MAX"))
    lr_decay: str = setting("cosine", "after warmup: cosine, or ten equal steps down to the final rate",
                            choices=LR_DECAYS)
    min_learning_rate_ratio: float = setting(0.01, "final learning rate as a fraction of the peak",
                                             flag="--min-lr-ratio", minimum=0, maximum=1)
    warmup_epochs: float = setting(1.0, "epochs of linear learning-rate warmup", minimum=0)
    weight_decay: float = setting(5e-4, "on conv and dense kernels only (not adam)", minimum=0)
    clip_norm: float | None = setting(None, "clip gradients to this global norm", above=0)
    ema: bool | None = setting(None, "keep a moving average of the weights; evaluation, best.keras and last.keras "
                                     "use it (default: on with --backbone-weights, else off)")
    ema_momentum: float | None = setting(None, "EMA momentum (default: 1 - 10 / total steps, within "
                                               "[0.99, 0.9999])", minimum=0, maximum=1)
    eval_period: int = setting(1, "epochs between validation mAP evaluations", minimum=1)
    eval_batch_size: int = setting(field_default(DetectConfig, "batch_size"), "images per forward pass of the "
                                                                              "validation mAP", minimum=1)
    patience: int = setting(0, "stop after this many epochs without a better validation mAP@0.5 (0: never)",
                            minimum=0)
    time_limit: float | None = setting(None, "train for this many minutes (wall time from the first epoch, "
                                             "evaluation included): the schedule is re-planned after every epoch to "
                                             "end at the budget", metavar="MINUTES", above=0)
    seed: int = setting(0, "random seed of weights, data order and augmentation")
    max_boxes: int = setting(100, "boxes kept per training sample (mosaic and mixup samples included)", minimum=1)
    loss: LossConfig = setting(help="the loss", cli=False, factory=LossConfig)
    augment: AugmentConfig = setting(help="augmentation", cli=False, factory=AugmentConfig)
    close_mosaic: int = setting(10, "last epochs trained without mosaic and mixup", minimum=0)
    progressive: bool = setting(False, "progressive learning (EfficientNetV2): train in stages from small images and "
                                       "weak augmentation up to --input-size and the full augmentation")
    progressive_stages: int = setting(4, "progressive learning: stages, each an equal share of the run", minimum=2)
    progressive_min_size: int | None = setting(None, "progressive learning: the first stage's input size, a multiple "
                                                     "of 32 (default: half --input-size)", minimum=32)
    multi_scale: bool = setting(False, "each batch at a random size from 0.5 to 1.5 × --input-size, multiples of 32 "
                                       "(YOLOv5's --multi-scale)")
    cache: str = setting("none", "ram: decode every training image once and keep it in memory (H×W×3 bytes each)",
                         choices=CACHES)
    strict: bool = setting(False, "stop on a bad sample (unparsable line, missing or corrupt image) instead of "
                                  "skipping it")
    backbone_weights: str | None = setting(None, "imagenet, none (random init, to train from scratch) or a weights "
                                                 "file (default: imagenet where weights are published: EfficientNet "
                                                 "V1, V2 and Lite; else none)")
    init_model: str | None = setting(None, "start from this detector's network and weights (a .keras file or run "
                                           "directory, e.g. a pruned model from prune.py) instead of building the "
                                           "model spec's; its classes, head and input size must be the spec's",
                                     metavar="PATH")
    freeze_backbone: bool = setting(False, "train only neck and head for the whole run (backbone weights and "
                                           "BatchNorm statistics stay fixed)")
    freeze_epochs: int | None = setting(None, f"first phase: this many epochs with the backbone frozen (then "
                                              f"--epochs in total; default: {FINE_TUNE_FREEZE_EPOCHS} with "
                                              f"--backbone-weights, else 0)", minimum=0)
    freeze_batch_size: int | None = setting(None, "batch size of the frozen phase (default: --batch-size; frozen "
                                                  "steps need less memory)", minimum=1)
    freeze_backbone_bn: bool | None = setting(None, "keep the backbone's BatchNorm layers frozen (pretrained "
                                                    "statistics, inference mode) after the frozen phase too "
                                                    "(default: on with --backbone-weights, else off)")
    mixed_precision: bool = setting(False, "mixed float16 (GPU) / bfloat16 (CPU) compute; outputs and loss stay "
                                           "float32")
    strategy: str = setting("auto", "tf.distribute: auto picks multiworker from TF_CONFIG, mirrored for several "
                                    "GPUs; --batch-size is global", choices=STRATEGIES)

    def __post_init__(self) -> None:
        if self.model is None:
            raise ConfigError("model", "a run config needs a model (ModelSpec)")
        check_fields(self)
        weights = self.backbone_weights
        if weights is None:
            weights = default_weights(self.model.backbone)
        elif weights.strip().lower() in ("", NO_WEIGHTS):
            weights = NO_WEIGHTS
        object.__setattr__(self, "backbone_weights", weights)
        # The optimizer's defaults, and the fine-tuning recipe when pretrained backbone weights are used and these
        # are left unset.
        pretrained = self.pretrained
        resolved = {"learning_rate": DEFAULT_LR[self.optimizer], "momentum": DEFAULT_MOMENTUM[self.optimizer],
                    "freeze_epochs": FINE_TUNE_FREEZE_EPOCHS if pretrained else 0, "ema": pretrained,
                    "freeze_backbone_bn": pretrained}
        for name, value in resolved.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        object.__setattr__(self, "loss", self.loss.for_head(self.model.head))
        if self.lr_limits is not None and not 0 < self.lr_limits[0] <= self.lr_limits[1]:
            raise ConfigError("lr_limits", f"must satisfy 0 < min ≤ max, got {list(self.lr_limits)}")
        if self.progressive and self.multi_scale:
            raise ConfigError("multi_scale", "progressive learning and multi-scale batches are two ways of choosing "
                                             "the input size: give one")
        low = self.progressive_min_size
        if low is not None and (low % levels.max_stride() or low > self.model.input_size):
            raise ConfigError("progressive_min_size", f"must be a multiple of {levels.max_stride()} up to the "
                                                      f"input size {self.model.input_size}, got {low}")


    @property
    def pretrained(self) -> bool:
        """Whether the backbone starts from weights (ImageNet's or a file) rather than a random init."""
        return self.backbone_weights != NO_WEIGHTS

    @property
    def initial_weights(self) -> str | None:
        """The backbone weights to build with: None for a random init."""
        return None if self.backbone_weights == NO_WEIGHTS else self.backbone_weights


# What a run's resume state depends on (its variables and their shapes): fixed once a run has started.
FIXED_ON_RESUME = ("model", "init_model", "freeze_backbone", "freeze_epochs", "freeze_batch_size", "freeze_backbone_bn",
                   "optimizer", "ema", "progressive", "progressive_stages", "progressive_min_size", "multi_scale")
# Settings an earlier version kept at the top level, and the section that holds them now.
MOVED_KEYS = {"ignore_threshold": "loss", "match_threshold": "loss", "anchor_t": "loss", "label_smoothing": "loss"}


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
    """Inverse of `to_dict`: every value checked against its declared type (errors name the key path), unknown keys
    an error (a typo never goes unnoticed), missing ones their defaults. Keys an earlier version kept elsewhere
    (`MOVED_KEYS`) are read from there."""
    if not isinstance(data, dict):
        raise ConfigError("config", "expected a mapping of settings")
    data = dict(data)
    sections = {}
    for name in ("model", "loss", "augment"):
        section = data.pop(name, None)
        if section is not None and not isinstance(section, dict):
            raise ConfigError(name, f"expected a mapping of settings, got {section!r}")
        sections[name] = dict(section or {})
    for key, section in MOVED_KEYS.items():
        if key in data:
            sections[section].setdefault(key, data.pop(key))
    reject_unknown(TrainConfig, data)
    if "class_names" not in sections["model"]:
        raise ValueError("the model needs class_names")
    if "backbone_weights" in data and data["backbone_weights"] is None:
        data["backbone_weights"] = NO_WEIGHTS  # an earlier version's null: a random init, not today's default
    nested = {name: build_checked(cls, sections[name], name)
              for name, cls in (("model", ModelSpec), ("loss", LossConfig), ("augment", AugmentConfig))}
    return build_checked(TrainConfig, {**data, **nested})


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
