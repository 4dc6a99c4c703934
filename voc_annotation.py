"""Convert a VOCdevkit (or one VOC folder) into annotation-line files, one per split; or check such files.

Examples:
    python voc_annotation.py --voc-root VOCdevkit --classes model_data/voc_classes.txt --out-dir data/voc
    python voc_annotation.py --check data/voc/train.txt --classes model_data/voc_classes.txt --input-size 416
"""

from __future__ import annotations

import argparse

from utils.cli.startup import quiet_startup

if __name__ == "__main__":
    quiet_startup()  # before any import loads TensorFlow

from utils.cli.errors import run_cli
from utils.cli.parsers import voc_annotation_parser
from utils.data.annotations import read_anchors, read_annotations, read_class_names
from utils.data.doctor import diagnose, format_report
from utils.data.voc import convert_voc, format_summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return voc_annotation_parser().parse_args(argv)


def check(paths: list[str], class_names: list[str], input_size: int, anchors_path: str) -> int:
    """Print the doctor's report of each file; 1 if any has boxes that are wrong (not merely unusual)."""

    anchors = read_anchors(anchors_path) * (input_size / 416)
    worst = 0
    for path in paths:
        annotations, unparsable = read_annotations(path, strict=False)
        report = diagnose(annotations, class_names, input_size, anchors)
        for problem in unparsable:
            report.add("unparsable lines", problem)
        print(f"== {path}\n{format_report(report, class_names, input_size)}\n")
        worst = max(worst, int(report.errors + len(unparsable) > 0))
    return worst


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    class_names = read_class_names(args.classes)
    if args.check:
        return check(args.check, class_names, args.input_size, args.anchors)
    if not args.voc_root or not args.out_dir:
        raise SystemExit("converting needs --voc-root and --out-dir (or use --check FILE ...)")
    summary = convert_voc(args.voc_root, class_names, args.out_dir, difficult=args.difficult,
                          val_fraction=args.val_fraction, test_fraction=args.test_fraction, seed=args.seed)
    print(format_summary(summary, class_names))
    for split, path in summary.written.items():
        print(f"wrote {path} ({summary.images[split]} images)")
    print("check them any time with: voc_annotation.py --check " + " ".join(str(p) for p in summary.written.values())
          + f" --classes {args.classes}")
    return 1 if summary.failures else 0


if __name__ == "__main__":

    run_cli(main)
