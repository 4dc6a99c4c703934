"""Evaluate detections against annotation lines: VOC and COCO mAP, P/R/F1, plots and an error breakdown.

Examples:
    python get_map.py --run-dir logs/demo --annotations data/test.txt
    python get_map.py --model demo.tflite --annotations data/test.txt   (an export; its thresholds are baked in)
    python get_map.py --detections results.json --annotations data/test.txt --classes model_data/voc_classes.txt
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from utils.cli.errors import run_cli
from utils.data.annotations import check_class_ids, read_annotations, read_class_names
from utils.data.sample_check import split_readable, unusable_reasons
from utils.evaluation.evaluate import detect_annotations, evaluation_decoder
from utils.evaluation.metrics import (
    COCO_ENGINES,
    EVALUATION_NMS_IOU,
    EVALUATION_SCORE_THRESHOLD,
)
from utils.evaluation.report import ReportOptions, write_report
from utils.export.runtimes import (
    ExportedDetector,
    export_format,
)
from utils.inference.loading import load_detector, resolve_model_path
from utils.ops.detections import read_results_json, write_results_json


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run-dir", "--model", dest="run",
                        help="run directory, .keras file or an export (SavedModel folder, .onnx, .tflite): "
                        "run inference")
    source.add_argument("--detections", help="COCO results-format JSON to evaluate instead of running a model")
    parser.add_argument("--annotations", required=True, help="annotation lines to evaluate on")
    parser.add_argument("--classes", help="class list (required with --detections unless --run-dir is given)")
    parser.add_argument("--out-dir", default=None,
                        help="where outputs go (default: <run dir>/map, or map/ beside the detections file)")
    parser.add_argument("--confidence", "--pr-score", dest="confidence", type=float, default=0.5,
                        help="score a detection needs to count in precision / recall / F1, the error breakdown, "
                             "the confusion matrix and the gallery (APs use every detection)")
    parser.add_argument("--score-threshold", type=float, default=EVALUATION_SCORE_THRESHOLD,
                        help="inference: score kept before NMS")
    parser.add_argument("--nms-iou", type=float, default=EVALUATION_NMS_IOU, help="inference: NMS IoU threshold")
    parser.add_argument("--max-detections", type=int, default=None,
                        help="inference: detections kept per image (default: the model's own)")
    parser.add_argument("--batch-size", type=int, default=8, help="inference: images per forward pass")
    parser.add_argument("--voc-iou", type=float, nargs="*", default=[0.75],
                        help="extra IoU thresholds for VOC all-point mAP (0.5 is always reported)")
    parser.add_argument("--coco-engine", choices=COCO_ENGINES, default="faster-coco-eval",
                        help="COCO evaluator: the C++ port (fast) or pycocotools itself (reference)")
    parser.add_argument("--no-plots", action="store_true", help="write metrics only")
    parser.add_argument("--gallery", type=int, default=8, help="how many worst images the gallery shows")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return make_parser().parse_args(argv)


def detect_with_export(args: argparse.Namespace, annotations: list) -> tuple[list, list, list[str]]:
    """Run an exported model over the readable annotated images (its score threshold, NMS IoU and detection cap
    are those it was exported with)."""

    detector = ExportedDetector(args.run)
    meta = detector.metadata
    print(f"{args.run}: {meta.format}{' ' + meta.quantize if meta.quantize else ''} export, score threshold "
          f"{meta.confidence}, NMS IoU {meta.nms_iou}, at most {meta.max_detections} detections", file=sys.stderr)
    annotations, missing, unreadable = split_readable(annotations)
    for reason in unusable_reasons(missing, unreadable):
        print(f"skipped {reason}", file=sys.stderr)
    return annotations, detector.detect_paths([a.image_path for a in annotations]), detector.class_names


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    annotations, problems = read_annotations(args.annotations, strict=False)
    for problem in problems:
        print(f"skipping unparsable line: {problem}", file=sys.stderr)
    options = ReportOptions(args.confidence, tuple(args.voc_iou), args.coco_engine, not args.no_plots, args.gallery)
    if args.run and export_format(args.run):
        annotations, detections, class_names = detect_with_export(args, annotations)
        out_dir = Path(args.out_dir) if args.out_dir else Path(args.run).resolve().parent / "map"
        write_results_json(out_dir / "detections.json", detections, [a.image_path for a in annotations])
    elif args.run:

        detector = load_detector(args.run)
        class_names = list(detector.class_names)
        decoder = evaluation_decoder(detector, args.score_threshold, args.nms_iou, args.max_detections)
        annotations, detections, missing = detect_annotations(detector, annotations, args.batch_size, decoder)
        for reason in missing:
            print(f"skipped {reason}", file=sys.stderr)
        out_dir = Path(args.out_dir) if args.out_dir else resolve_model_path(args.run).parent / "map"
        write_results_json(out_dir / "detections.json", detections, [a.image_path for a in annotations])
    else:
        if not args.classes:
            raise SystemExit("--detections needs --classes (the class list the category ids index)")
        class_names = read_class_names(args.classes)
        detections = read_results_json(args.detections, [a.image_path for a in annotations], len(class_names),
                                       [a.line_index for a in annotations])
        out_dir = Path(args.out_dir) if args.out_dir else Path(args.detections).parent / "map"
    check_class_ids(annotations, len(class_names), args.annotations)
    metrics = write_report(out_dir, annotations, detections, class_names, options)
    print(Path(out_dir / "per_class.md").read_text(encoding="utf-8").rstrip())
    print(f"wrote {', '.join(metrics['outputs'])} to {out_dir}")
    return 0


if __name__ == "__main__":

    run_cli(main)
