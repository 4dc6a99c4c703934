"""Convert COCO json or YOLO txt folders into annotation lines (and a class list), so other tools' data trains here.

Examples:
    python convert_annotations.py coco --coco-json instances_train.json --images images/train --out data/train.txt
    python convert_annotations.py yolo --images datasets/x/images/train --classes classes.txt --out data/train.txt
    python convert_annotations.py yolo --images photos/images --classes classes.txt --out-dir data/photos  # + splits
"""

from __future__ import annotations

import argparse
from pathlib import Path

from utils.cli.startup import quiet_startup

if __name__ == "__main__":
    quiet_startup()  # before any import loads TensorFlow

from utils.cli.errors import run_cli
from utils.cli.parsers import convert_annotations_parser
from utils.data.annotations import format_line, read_class_names
from utils.data.formats import convert_coco, convert_yolo
from utils.data.voc import random_split
from utils.io.files import atomic_write_text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return convert_annotations_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.out_dir:  # checked before converting: a bad fraction fails at once
        random_split([], args.val_fraction, args.test_fraction, args.seed)
    if args.format == "coco":
        conversion = convert_coco(args.coco_json, args.images)
        default = Path(args.out_dir) / "classes.txt" if args.out_dir else Path(args.out).with_suffix(".classes.txt")
        classes_out = Path(args.classes_out) if args.classes_out else default
        atomic_write_text(classes_out, "\n".join(conversion.class_names) + "\n")
        print(f"wrote {classes_out} ({len(conversion.class_names)} classes)")
    else:
        conversion = convert_yolo(args.images, read_class_names(args.classes), args.labels)
    lines = {str(a.image_path): format_line(a.image_path, a.boxes, a.difficult_boxes) for a in conversion.annotations}
    if args.out_dir:
        outputs = {Path(args.out_dir) / f"{split}.txt": paths for split, paths in
                   random_split(list(lines), args.val_fraction, args.test_fraction, args.seed).items()
                   if paths or split != "test"}
    else:
        outputs = {Path(args.out): list(lines)}
    print(conversion.summary())
    for path, paths in outputs.items():
        atomic_write_text(path, "".join(lines[p] + "\n" for p in paths))
        print(f"wrote {path} ({len(paths)} images)")
    return 1 if conversion.problems else 0


if __name__ == "__main__":
    run_cli(main)
