"""Run a trained detector on images and save them with the detections drawn.

Example:
    python predict.py image --run-dir logs/demo --input img.jpg --output out.png
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    image = modes.add_parser("image", help="detect on one or more image files")
    image.add_argument("--run-dir", "--model", dest="run", required=True, help="run directory or .keras file")
    image.add_argument("--input", nargs="+", required=True, help="image file(s)")
    image.add_argument("--output", required=True,
                       help="output image path (one input) or folder (several inputs)")
    image.add_argument("--confidence", type=float, default=0.5, help="minimum score to keep a detection")
    image.add_argument("--nms-iou", type=float, default=0.45, help="IoU above which NMS removes a box")
    image.add_argument("--max-detections", type=int, default=100)
    return parser.parse_args(argv)


def output_paths(inputs: list[str], output: str) -> list[Path]:
    """One input → `output` itself; several → `output/<stem>.png`."""
    if len(inputs) == 1 and Path(output).suffix:
        return [Path(output)]
    return [Path(output) / f"{Path(p).stem}.png" for p in inputs]


def run_image(args: argparse.Namespace) -> int:
    import cv2

    from utils.draw import draw_detections, save_image
    from utils.evaluation import predict_annotations
    from utils.runs import load_detector

    images = {}
    for path in args.input:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: image not found")
        images[path] = cv2.imread(path, cv2.IMREAD_COLOR)
        if images[path] is None:
            raise ValueError(f"{path}: not a readable image (corrupt or unsupported format)")
    model, config = load_detector(args.run)
    spec = config.model
    detections, _ = predict_annotations(model, spec.anchor_array(), args.input, batch_size=1,
                                        score_threshold=args.confidence, iou_threshold=args.nms_iou,
                                        max_detections=args.max_detections, progress=False,
                                        box_coding=spec.assigner)
    for source, target, found in zip(args.input, output_paths(args.input, args.output), detections, strict=True):
        save_image(target, draw_detections(images[source], found, list(spec.class_names)))
        counts = ", ".join(f"{spec.class_names[c]} {int((found.classes == c).sum())}"
                           for c in sorted(set(found.classes.tolist())))
        print(f"{source}: {len(found.scores)} detections ({counts or 'none'}) -> {target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.mode == "image":
        return run_image(args)
    raise AssertionError(args.mode)


if __name__ == "__main__":
    from utils.cli import run_cli

    run_cli(main)
