"""Parameters and GFLOPs of a detector: backbone, neck, head and total, or a table over every backbone; or the
top-5 ImageNet classes of an image for a backbone with its pretrained classifier (a check of the weights).

Example:
    python summary.py --backbone efficientnet-b0 --neck yolov5 --input-size 416
    python summary.py --backbone cspdarknet-n --head decoupled
    python summary.py --all --input-size 416
    python summary.py --classify cat.jpg --backbone efficientnet-lite0 --backbone-weights imagenet
"""

from __future__ import annotations

import argparse

from utils.cli.startup import quiet_startup

if __name__ == "__main__":
    quiet_startup()  # before any import loads TensorFlow

from nets.backbones import backbone_names
from nets.classify import imagenet_top5
from nets.model_stats import detector_parts
from nets.yolo import build_yolo
from utils.cli.errors import run_cli
from utils.cli.parsers import summary_parser
from utils.data.images import read_rgb


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return summary_parser().parse_args(argv)


def classify(image_path: str, backbone: str, weights: str) -> int:

    top5 = imagenet_top5(read_rgb(image_path), backbone, weights)
    for rank, (class_id, name, probability) in enumerate(top5, start=1):
        print(f"{rank}. {class_id:>4} {name:<28} {probability:.4f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backbone = f"efficientnet-b{args.phi}" if args.phi is not None else args.backbone
    if args.classify:
        return classify(args.classify, backbone, args.backbone_weights)

    shape = (args.input_size, args.input_size, 3)
    if args.all:
        print(f"| backbone | neck | head | params (M) | GFLOPs @{args.input_size} | backbone GFLOPs |")
        print("|---|---|---|---:|---:|---:|")
        for name in backbone_names():
            model = build_yolo(name, args.neck, args.num_classes, shape, head=args.head)
            parts = {p.name: p for p in detector_parts(model)}
            print(f"| {name} | {args.neck} | {args.head} | {parts['total'].parameters / 1e6:.2f} "
                  f"| {parts['total'].flops / 1e9:.2f} | {parts['backbone'].flops / 1e9:.2f} |")
        return 0
    model = build_yolo(backbone, args.neck, args.num_classes, shape, head=args.head)
    print(f"{backbone} + {args.neck} + {args.head} head, {args.input_size}×{args.input_size}, "
          f"{args.num_classes} classes")
    print(f"{'part':<10}{'parameters':>14}{'GFLOPs':>10}")
    for part in detector_parts(model):
        print(f"{part.name:<10}{part.parameters:>14,}{part.flops / 1e9:>10.2f}")
    return 0


if __name__ == "__main__":

    run_cli(main)
