"""Convert a VOCdevkit (or one VOC folder) into annotation-line files, one per split.

Example:
    python voc_annotation.py --voc-root VOCdevkit --classes model_data/voc_classes.txt --out-dir data/voc
"""

from __future__ import annotations

import argparse

from utils.annotations import read_class_names
from utils.voc import DIFFICULT_POLICIES, convert_voc, format_summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voc-root", required=True, help="VOCdevkit folder, or one folder with Annotations/")
    parser.add_argument("--classes", required=True, help="class list, one name a line")
    parser.add_argument("--out-dir", required=True, help="where <split>.txt files are written")
    parser.add_argument("--difficult", choices=list(DIFFICULT_POLICIES), default="mark",
                        help="VOC difficult objects: mark (not trained on, ignored by mAP, as the VOC devkit does), "
                             "keep (ordinary boxes) or drop")
    parser.add_argument("--keep-difficult", dest="difficult", action="store_const", const="keep",
                        help="same as --difficult keep")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="used only when there are no split files")
    parser.add_argument("--test-fraction", type=float, default=0.1, help="used only when there are no split files")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random split")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    class_names = read_class_names(args.classes)
    summary = convert_voc(args.voc_root, class_names, args.out_dir, difficult=args.difficult,
                          val_fraction=args.val_fraction, test_fraction=args.test_fraction, seed=args.seed)
    print(format_summary(summary, class_names))
    for split, path in summary.written.items():
        print(f"wrote {path} ({summary.images[split]} images)")
    return 1 if summary.failures else 0


if __name__ == "__main__":
    from utils.cli import run_cli

    run_cli(main)
