"""Evaluate a trained detector on annotation lines: VOC mAP@0.5 per class and COCO mAP@[.5:.95].

Example:
    python get_map.py --run-dir logs/demo --annotations data/test.txt
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", "--model", dest="run", required=True, help="run directory or .keras file")
    parser.add_argument("--annotations", required=True, help="annotation lines to evaluate on")
    parser.add_argument("--out-dir", default=None, help="where metrics go (default: <run dir>/map)")
    parser.add_argument("--confidence", type=float, default=0.001, help="score threshold before NMS")
    parser.add_argument("--nms-iou", type=float, default=0.5)
    parser.add_argument("--pr-score", type=float, default=0.5,
                        help="score a detection needs to count in precision / recall / F1")
    parser.add_argument("--batch-size", type=int, default=8)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from utils.annotations import read_annotations
    from utils.evaluation import evaluate_model
    from utils.fileio import atomic_write_json, atomic_write_text
    from utils.map import format_metrics_table
    from utils.runs import load_detector, resolve_model_path

    annotations, problems = read_annotations(args.annotations, strict=False)
    for problem in problems:
        print(f"skipping unparsable line: {problem}", file=sys.stderr)
    model, config = load_detector(args.run)
    metrics = evaluate_model(model, config.model.anchor_array(), annotations, list(config.model.class_names),
                             batch_size=args.batch_size, score_threshold=args.confidence,
                             iou_threshold=args.nms_iou, pr_score_threshold=args.pr_score,
                             box_coding=config.model.assigner)
    for path in metrics["missing_images"]:
        print(f"skipped {path}: image file not found", file=sys.stderr)
    out_dir = Path(args.out_dir) if args.out_dir else resolve_model_path(args.run).parent / "map"
    metrics["annotations"] = str(args.annotations)
    table = format_metrics_table(metrics)
    atomic_write_json(out_dir / "metrics.json", metrics)
    atomic_write_text(out_dir / "per_class.md", table + "\n")
    print(table)
    print(f"wrote {out_dir / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    from utils.cli import run_cli

    run_cli(main)
