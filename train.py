"""Train an EfficientNet-YOLO detector on annotation-line files.

Examples:
    python train.py --train data/train.txt --val data/val.txt --classes model_data/voc_classes.txt \
        --phi 0 --input-size 416 --epochs 50 --batch-size 8 --run-dir logs/voc_b0
    python train.py --config logs/voc_b0/config.json --epochs 100 --run-dir logs/voc_b0_long
    python train.py --resume logs/voc_b0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from utils.config.run_config import (  # noqa: E402
    DEFAULT_LR,
    LR_DECAYS,
    OPTIMIZERS,
    AugmentConfig,
    ModelSpec,
    TrainConfig,
    load_config,
)
from utils.config.run_config import FIXED_ON_RESUME as FIXED_CONFIG_FIELDS  # noqa: E402
from utils.data.annotations import read_anchors, read_class_names  # noqa: E402

DEFAULT_ANCHORS = Path(__file__).resolve().parent / "model_data" / "yolo_anchors.txt"


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run = parser.add_argument_group("run")
    run.add_argument("--config", help="start from this run config (JSON as saved in a run, or YAML with the same "
                                      "keys); flags given as well override it")
    run.add_argument("--resume", metavar="DIR",
                     help="continue the run in DIR from its last completed epoch, with its saved config (flags "
                          "given as well override training settings; the model cannot change)")
    data = parser.add_argument_group("data")
    data.add_argument("--train", help="training annotation lines (required without --config/--resume)")
    data.add_argument("--val", help="validation annotation lines (mAP each eval period)")
    data.add_argument("--classes", help="class list, one name a line")
    data.add_argument("--anchors", default=str(DEFAULT_ANCHORS),
                      help="nine w,h anchors in pixels of a 416 input; scaled to --input-size")
    data.add_argument("--autoanchor", action="store_true",
                      help="replace the anchors by k-means ones when they reach < 98%% of the training boxes")
    data.add_argument("--max-boxes", type=int, default=100, help="boxes kept per image")
    model = parser.add_argument_group("model")
    model.add_argument("--phi", type=int, default=None, help="EfficientNet-B{phi}; shorthand for --backbone")
    model.add_argument("--backbone", default="efficientnet-b0",
                       help="efficientnet-b0…b7, efficientnet-lite0…lite4, efficientnetv2-b0…b3/s/m/l, "
                            "shufflenetv2-x0.5…x2.0[-stemblock]")
    model.add_argument("--neck", default="yolov3", choices=["yolov3", "yolov5"],
                       help="YOLOv3 FPN or YOLOv5 PAN (SPPF + C3)")
    model.add_argument("--neck-width", type=float, default=None, help="neck width multiple (default: per phi)")
    model.add_argument("--neck-depth", type=float, default=None,
                       help="yolov5 C3 depth multiple (default: per phi)")
    model.add_argument("--assigner", default="v3", choices=["v3", "v5"],
                       help="target assignment and box parameterisation: YOLOv3 (best anchors, centre cell) or "
                            "YOLOv5 (anchor ratio < --anchor-t, centre + 2 neighbour cells)")
    model.add_argument("--input-size", type=int, default=416, help="square input size, a multiple of 32")
    model.add_argument("--backbone-weights", default="none",
                       help="none (random init), imagenet (keras.applications download/cache) or a weights file")
    model.add_argument("--freeze-backbone", action="store_true",
                       help="train only neck and head (backbone weights and BatchNorm statistics stay fixed)")
    model.add_argument("--freeze-epochs", type=int, default=None,
                       help="first phase: this many epochs with the backbone frozen (then --epochs in total; "
                            "default: 3 with --backbone-weights, else 0)")
    model.add_argument("--freeze-batch-size", type=int, default=None,
                       help="batch size of the frozen phase (default: --batch-size; frozen steps need less memory)")
    model.add_argument("--freeze-backbone-bn", action=argparse.BooleanOptionalAction, default=None,
                       help="keep the backbone's BatchNorm layers frozen (pretrained statistics, inference mode) "
                            "after the frozen phase too (default: on with --backbone-weights, else off)")
    fit = parser.add_argument_group("training")
    fit.add_argument("--epochs", type=int, default=50, help="epochs to train (with --time-limit: at most)")
    fit.add_argument("--time-limit", type=float, default=None, metavar="MINUTES",
                     help="train for this long (wall time from the first epoch, evaluation included): the schedule "
                          "is re-planned after every epoch to end at the budget")
    fit.add_argument("--batch-size", type=int, default=8)
    fit.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw", help="sgd is Nesterov SGD")
    fit.add_argument("--lr", type=float, default=None,
                     help="peak learning rate at the nominal batch (default: sgd 1e-2, adam/adamw 8e-3)")
    fit.add_argument("--nominal-batch-size", type=int, default=64,
                     help="--lr is scaled by batch size / this, then clipped to --lr-limits; 0: no scaling")
    fit.add_argument("--lr-limits", type=float, nargs=2, metavar=("MIN", "MAX"), default=None,
                     help="bounds of the scaled peak rate (default: sgd 5e-4 5e-2, adam/adamw 1e-4 4e-3)")
    fit.add_argument("--momentum", type=float, default=None, help="SGD momentum / Adam beta_1 (default: 0.937 / 0.9)")
    fit.add_argument("--lr-decay", choices=LR_DECAYS, default="cosine",
                     help="after warmup: cosine, or ten equal steps down to the final rate")
    fit.add_argument("--min-lr-ratio", type=float, default=0.01, help="final lr as a fraction of the peak")
    fit.add_argument("--warmup-epochs", type=float, default=1.0)
    fit.add_argument("--weight-decay", type=float, default=5e-4, help="on conv and dense kernels only (not adam)")
    fit.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                     help="keep a moving average of the weights; evaluation, best.keras and last.keras use it "
                          "(default: on with --backbone-weights, else off)")
    fit.add_argument("--ema-momentum", type=float, default=None,
                     help="EMA momentum (default: 1 - 10 / total steps, within [0.99, 0.9999])")
    fit.add_argument("--clip-norm", type=float, default=None, help="clip gradients to this global norm")
    fit.add_argument("--patience", type=int, default=0,
                     help="stop after this many epochs without a better validation mAP@0.5 (0: never)")
    fit.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=False,
                     help="mixed float16 (GPU) / bfloat16 (CPU) compute; outputs and loss stay float32")
    fit.add_argument("--strategy", choices=["auto", "one", "mirrored", "multiworker"], default="auto",
                     help="tf.distribute: auto picks multiworker from TF_CONFIG, mirrored for several GPUs; "
                          "--batch-size is global")
    fit.add_argument("--ignore-threshold", type=float, default=0.5, help="IoU above which a negative is ignored")
    fit.add_argument("--match-threshold", type=float, default=0.2,
                     help="shape IoU above which a box also trains a non-best anchor (1 = best anchor only)")
    fit.add_argument("--anchor-t", type=float, default=4.0, help="v5: largest box/anchor side ratio that matches")
    fit.add_argument("--label-smoothing", type=float, default=0.0, help="v5: class label smoothing ε")
    fit.add_argument("--eval-period", type=int, default=1, help="epochs between validation mAP evaluations")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--run-dir", help="output folder (required without --resume); rerun on it to resume")
    data.add_argument("--cache", choices=["none", "ram"], default="none",
                      help="ram: decode every training image once and keep it in memory (H×W×3 bytes each)")
    data.add_argument("--strict", action="store_true",
                      help="stop on a bad sample (unparsable line, missing or corrupt image) instead of skipping it")
    aug = parser.add_argument_group("augmentation (validation uses a plain letterbox)")
    defaults = AugmentConfig()
    for flag, name, meaning in (
        ("--scale-min", "scale_min", "smallest random zoom"),
        ("--scale-max", "scale_max", "largest random zoom (crops when > 1)"),
        ("--aspect-jitter", "aspect_jitter", "random aspect-ratio change"),
        ("--translate", "translate", "random shift, fraction of the input size"),
        ("--degrees", "degrees", "random rotation range (degrees)"),
        ("--shear", "shear", "random shear range (degrees)"),
        ("--flip", "flip_probability", "horizontal flip probability"),
        ("--hsv-h", "hsv_h", "hue shift range (fraction of the colour circle)"),
        ("--hsv-s", "hsv_s", "saturation gain range"),
        ("--hsv-v", "hsv_v", "value gain range"),
        ("--mosaic", "mosaic", "probability of a 4-image mosaic"),
        ("--mixup", "mixup", "probability of blending with a second sample"),
        ("--min-box-size", "min_box_size", "drop augmented boxes narrower or shorter than this (pixels)"),
        ("--min-box-visible", "min_box_visible", "drop boxes with less than this fraction left in the image"),
    ):
        aug.add_argument(flag, dest=name, type=float, default=getattr(defaults, name), help=meaning)
    aug.add_argument("--close-mosaic", type=int, default=10, help="last epochs trained without mosaic and mixup")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return make_parser().parse_args(argv)


def given_flags(argv: list[str] | None) -> dict:
    """The flags present on the command line (dest → parsed value), without any defaults."""
    parser = make_parser()
    absent = object()  # argparse fills in a default only where the namespace has no value yet
    namespace = argparse.Namespace(**{dest: absent for dest in vars(parser.parse_args(argv))})
    return {dest: value for dest, value in vars(parser.parse_args(argv, namespace)).items() if value is not absent}


def optimizer_defaults(optimizer: str, lr: float | None, momentum: float | None) -> tuple[float, float]:
    return (DEFAULT_LR[optimizer] if lr is None else lr,
            (0.937 if optimizer == "sgd" else 0.9) if momentum is None else momentum)


def build_config(args: argparse.Namespace) -> TrainConfig:
    missing = [flag for flag in ("train", "val", "classes", "run_dir") if not getattr(args, flag)]
    if missing:
        raise SystemExit("train.py: " + ", ".join("--" + m.replace("_", "-") for m in missing) +
                         " required (or --config FILE / --resume DIR)")
    learning_rate, momentum = optimizer_defaults(args.optimizer, args.lr, args.momentum)
    backbone = f"efficientnet-b{args.phi}" if args.phi is not None else args.backbone
    anchors = read_anchors(args.anchors) * (args.input_size / 416)
    spec = ModelSpec(
        backbone=backbone, neck=args.neck, class_names=tuple(read_class_names(args.classes)),
        anchors=tuple((round(float(w), 2), round(float(h), 2)) for w, h in anchors),
        input_size=args.input_size, neck_width=args.neck_width, neck_depth=args.neck_depth,
        assigner=args.assigner,
    )
    return TrainConfig(
        train=args.train, val=args.val, run_dir=args.run_dir, model=spec, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=learning_rate, min_learning_rate_ratio=args.min_lr_ratio,
        warmup_epochs=args.warmup_epochs, weight_decay=args.weight_decay, eval_period=args.eval_period,
        seed=args.seed, max_boxes=args.max_boxes, ignore_threshold=args.ignore_threshold,
        match_threshold=args.match_threshold, anchor_t=args.anchor_t, label_smoothing=args.label_smoothing,
        augment=AugmentConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(AugmentConfig)}),
        close_mosaic=args.close_mosaic, cache=args.cache, strict=args.strict,
        backbone_weights=None if args.backbone_weights.lower() == "none" else args.backbone_weights,
        freeze_backbone=args.freeze_backbone, freeze_epochs=args.freeze_epochs,
        freeze_batch_size=args.freeze_batch_size, freeze_backbone_bn=args.freeze_backbone_bn,
        optimizer=args.optimizer, momentum=momentum,
        nominal_batch_size=args.nominal_batch_size, lr_limits=tuple(args.lr_limits) if args.lr_limits else None,
        lr_decay=args.lr_decay, ema=args.ema, ema_momentum=args.ema_momentum, clip_norm=args.clip_norm,
        patience=args.patience, mixed_precision=args.mixed_precision, strategy=args.strategy,
        time_limit=args.time_limit,
    )


# Flags that set a top-level TrainConfig field of another name (the rest use their own name).
FIELD_OF_FLAG = {"lr": "learning_rate", "min_lr_ratio": "min_learning_rate_ratio"}
MODEL_FLAGS = {"phi", "backbone", "neck", "neck_width", "neck_depth", "assigner", "input_size", "classes", "anchors",
               "backbone_weights"}
NOT_CONFIG = {"config", "resume", "autoanchor"}
# What the resume state's variables depend on (the library's fields, the model's as its flags): fixed once a run
# has started.
FIXED_ON_RESUME = MODEL_FLAGS | (set(FIXED_CONFIG_FIELDS) - {"model"})


def with_overrides(base: TrainConfig, given: dict, resuming: bool) -> TrainConfig:
    """`base` with the flags given on the command line applied (the same meanings as when building from flags)."""
    given = {k: v for k, v in given.items() if k not in NOT_CONFIG}
    fixed = sorted(FIXED_ON_RESUME & set(given)) if resuming else []
    if fixed:
        raise SystemExit("train.py --resume: the model, its frozen layers, the optimizer and EMA cannot change on "
                         "resume (" + ", ".join("--" + f.replace("_", "-") for f in fixed) + ")")
    spec = base.model
    if "phi" in given or "backbone" in given:
        spec = dataclasses.replace(spec, backbone=f"efficientnet-b{given['phi']}" if "phi" in given
                                   else given["backbone"])
    spec = dataclasses.replace(spec, **{k: given[k] for k in ("neck", "neck_width", "neck_depth", "assigner",
                                                              "input_size") if k in given})
    if "classes" in given:
        spec = dataclasses.replace(spec, class_names=tuple(read_class_names(given["classes"])))
    if "anchors" in given or "input_size" in given:
        source = read_anchors(given["anchors"]) * (spec.input_size / 416) if "anchors" in given else \
            spec.anchor_array() * (spec.input_size / base.model.input_size)
        spec = dataclasses.replace(spec, anchors=tuple((round(float(w), 2), round(float(h), 2)) for w, h in source))
    augment_fields = {f.name for f in dataclasses.fields(AugmentConfig)}
    augment = dataclasses.replace(base.augment, **{k: v for k, v in given.items() if k in augment_fields})
    top = {FIELD_OF_FLAG.get(k, k): v for k, v in given.items()
           if k not in augment_fields and k not in MODEL_FLAGS and k not in ("lr", "momentum")}
    if "lr_limits" in top and top["lr_limits"] is not None:
        top["lr_limits"] = tuple(top["lr_limits"])
    optimizer = given.get("optimizer", base.optimizer)
    changed = optimizer != base.optimizer
    top["learning_rate"], top["momentum"] = optimizer_defaults(
        optimizer, given.get("lr", None if changed else base.learning_rate),
        given.get("momentum", None if changed else base.momentum))
    if "backbone_weights" in given:
        top["backbone_weights"] = None if given["backbone_weights"].lower() == "none" else given["backbone_weights"]
    return dataclasses.replace(base, model=spec, augment=augment, **top)


def resolve_config(argv: list[str] | None) -> tuple[TrainConfig, bool]:
    """The run's config from flags, from `--config` plus flags, or from `--resume DIR` plus flags; and whether it
    is a fresh run (not a resume: then the anchors are checked)."""
    args = parse_args(argv)
    given = given_flags(argv)
    if args.resume:
        base = load_config(Path(args.resume) / "config.json")
        return with_overrides(dataclasses.replace(base, run_dir=args.resume), given, resuming=True), False
    if args.config:
        config = with_overrides(load_config(args.config), given, resuming=False)
        if not config.run_dir or config.run_dir == "-":
            raise SystemExit("train.py: --run-dir required")
        return config, True
    return build_config(args), True


def with_checked_anchors(config: TrainConfig, recompute: bool) -> TrainConfig:
    """Check the anchors against the training boxes (warn below 98% best-possible recall; replace if asked)."""
    from utils.data.anchors import check_anchors
    from utils.data.annotations import read_annotations

    spec = config.model
    anchors = check_anchors(read_annotations(config.train, strict=False)[0], spec.anchor_array(), spec.input_size,
                            threshold=config.anchor_t, recompute=recompute, seed=config.seed)
    rounded = tuple((round(float(w), 2), round(float(h), 2)) for w, h in anchors)
    return dataclasses.replace(config, model=dataclasses.replace(spec, anchors=rounded))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(format="%(message)s")
    logging.getLogger("utils").setLevel(logging.INFO)
    config, fresh = resolve_config(argv)
    from utils.training.distribute import make_strategy

    strategy = make_strategy(config.strategy)  # before any TensorFlow op: multi-worker collectives need that
    if fresh:
        config = with_checked_anchors(config, recompute=parse_args(argv).autoanchor)
    from utils.training.run_directory import resume_command
    from utils.training.trainer import train

    try:
        metrics = train(config, strategy, resume=not fresh)
    except KeyboardInterrupt:
        saved = (Path(config.run_dir) / "config.json").is_file()
        print("\ninterrupted: " + (f"continue with: {resume_command(config.run_dir)}" if saved
                                   else "nothing was written; run the same command again"), file=sys.stderr)
        return 130
    if metrics:
        print(json.dumps({"val_map50": metrics["map50"], "val_map50_95": metrics["map50_95"]}))
    return 0


if __name__ == "__main__":
    from utils.cli.errors import run_cli

    # Ctrl-C (SIGINT) stops training even when a launcher ignored it for its children (a background job of a
    # non-interactive shell inherits SIGINT ignored, and Python then leaves it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    run_cli(main)
