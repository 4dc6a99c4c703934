"""Compute nine anchors for your data by IoU k-means, and report how well they (and the default ones) fit.

Example:
    python kmeans_for_anchors.py --annotations data/bccd/trainval.txt --input-size 320 --n 9 \
        --output model_data/bccd_anchors.txt
"""

from __future__ import annotations

import argparse
from pathlib import Path

from utils.cli.startup import quiet_startup

if __name__ == "__main__":
    quiet_startup()  # before any import loads TensorFlow

from utils.cli.errors import run_cli
from utils.cli.parsers import kmeans_for_anchors_parser
from utils.data.anchors import ANCHOR_FILE_SIZE, anchor_fit, kmeans_anchors, letterboxed_box_shapes
from utils.data.annotations import read_anchors, read_annotations
from utils.io.files import atomic_write_text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return kmeans_for_anchors_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    annotations, _ = read_annotations(args.annotations, strict=False)
    shapes = letterboxed_box_shapes(annotations, args.input_size)
    anchors = kmeans_anchors(shapes, args.n, seed=args.seed)
    print(f"{len(shapes)} boxes from {len(annotations)} images, letterboxed to {args.input_size}×{args.input_size}")
    print(f"k-means anchors at {args.input_size}: " + "  ".join(f"{w:.0f},{h:.0f}" for w, h in anchors))
    print(f"  {anchor_fit(shapes, anchors, args.threshold)}")
    default = read_anchors(args.compare) * args.input_size / ANCHOR_FILE_SIZE
    print(f"{Path(args.compare).name} at {args.input_size}: {anchor_fit(shapes, default, args.threshold)}")
    if args.output:
        in_file_units = anchors * ANCHOR_FILE_SIZE / args.input_size
        atomic_write_text(args.output, "".join(f"{w:.2f},{h:.2f}\n" for w, h in in_file_units))
        print(f"wrote {args.output} (pixels of a {ANCHOR_FILE_SIZE} input; train.py scales to --input-size)")
    return 0


if __name__ == "__main__":

    run_cli(main)
