"""Train an EfficientNet-YOLO detector on annotation-line files.

Example:
    python train.py --train data/train.txt --val data/val.txt --classes model_data/voc_classes.txt \
        --phi 0 --input-size 416 --epochs 50 --batch-size 8 --run-dir logs/voc_b0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from utils.annotations import read_anchors, read_class_names  # noqa: E402
from utils.config import AugmentConfig, ModelSpec, TrainConfig  # noqa: E402

DEFAULT_ANCHORS = Path(__file__).resolve().parent / "model_data" / "yolo_anchors.txt"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--train", required=True, help="training annotation lines")
    data.add_argument("--val", required=True, help="validation annotation lines (mAP each eval period)")
    data.add_argument("--classes", required=True, help="class list, one name a line")
    data.add_argument("--anchors", default=str(DEFAULT_ANCHORS),
                      help="nine w,h anchors in pixels of a 416 input; scaled to --input-size")
    data.add_argument("--autoanchor", action="store_true",
                      help="replace the anchors by k-means ones when they reach < 98%% of the training boxes")
    data.add_argument("--max-boxes", type=int, default=100, help="boxes kept per image")
    model = parser.add_argument_group("model")
    model.add_argument("--phi", type=int, default=None, help="EfficientNet-B{phi}; shorthand for --backbone")
    model.add_argument("--backbone", default="efficientnet-b0",
                       help="efficientnet-b0…b7, efficientnetv2-b0…b3/s/m/l, shufflenetv2-x0.5…x2.0[-stemblock]")
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
    fit = parser.add_argument_group("training")
    fit.add_argument("--epochs", type=int, default=50)
    fit.add_argument("--batch-size", type=int, default=8)
    fit.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (AdamW)")
    fit.add_argument("--min-lr-ratio", type=float, default=0.01, help="final lr as a fraction of the peak")
    fit.add_argument("--warmup-epochs", type=float, default=1.0)
    fit.add_argument("--weight-decay", type=float, default=5e-4)
    fit.add_argument("--ignore-threshold", type=float, default=0.5, help="IoU above which a negative is ignored")
    fit.add_argument("--match-threshold", type=float, default=0.2,
                     help="shape IoU above which a box also trains a non-best anchor (1 = best anchor only)")
    fit.add_argument("--anchor-t", type=float, default=4.0, help="v5: largest box/anchor side ratio that matches")
    fit.add_argument("--label-smoothing", type=float, default=0.0, help="v5: class label smoothing ε")
    fit.add_argument("--eval-period", type=int, default=1, help="epochs between validation mAP evaluations")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--run-dir", required=True, help="output folder; rerun with the same folder to resume")
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
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> TrainConfig:
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
        batch_size=args.batch_size, learning_rate=args.lr, min_learning_rate_ratio=args.min_lr_ratio,
        warmup_epochs=args.warmup_epochs, weight_decay=args.weight_decay, eval_period=args.eval_period,
        seed=args.seed, max_boxes=args.max_boxes, ignore_threshold=args.ignore_threshold,
        match_threshold=args.match_threshold, anchor_t=args.anchor_t, label_smoothing=args.label_smoothing,
        augment=AugmentConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(AugmentConfig)}),
        close_mosaic=args.close_mosaic, cache=args.cache, strict=args.strict,
        backbone_weights=None if args.backbone_weights.lower() == "none" else args.backbone_weights,
        freeze_backbone=args.freeze_backbone,
    )


def with_checked_anchors(config: TrainConfig, recompute: bool) -> TrainConfig:
    """Check the anchors against the training boxes (warn below 98% best-possible recall; replace if asked)."""
    from utils.anchors import check_anchors
    from utils.annotations import read_annotations

    spec = config.model
    anchors = check_anchors(read_annotations(config.train, strict=False)[0], spec.anchor_array(), spec.input_size,
                            threshold=config.anchor_t, recompute=recompute, seed=config.seed)
    rounded = tuple((round(float(w), 2), round(float(h), 2)) for w, h in anchors)
    return dataclasses.replace(config, model=dataclasses.replace(spec, anchors=rounded))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(format="%(message)s")
    logging.getLogger("utils").setLevel(logging.INFO)
    config = with_checked_anchors(build_config(args), recompute=args.autoanchor)
    from utils.training import train

    metrics = train(config)
    if metrics:
        print(json.dumps({"val_map50": metrics["map50"], "val_map50_95": metrics["map50_95"]}))
    return 0


if __name__ == "__main__":
    from utils.cli import run_cli

    run_cli(main)
