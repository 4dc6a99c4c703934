"""Run a trained detector on images, a folder or a video (drawn detections), time it, or draw its heatmaps.

Examples:
    python predict.py image --run-dir logs/demo --input img.jpg --output out.png
    python predict.py dir --run-dir logs/demo --input photos/ --output predicted/ --save-json detections.json
    python predict.py video --run-dir logs/demo --input clip.mp4 --output clip_detected.mp4
    python predict.py fps --run-dir logs/demo --batch-sizes 1 8 --runtimes eager graph xla
    python predict.py heatmap --run-dir logs/demo --input img.jpg --output img_heat.png
    python predict.py export --run-dir logs/demo --format litert --output demo.tflite
    python predict.py image --model demo.tflite --input img.jpg --output out.png
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2

from utils.cli.errors import run_cli
from utils.config.run_config import load_config
from utils.data.images import read_bgr
from utils.data.sample_check import check_images, readable_paths, unusable_reasons
from utils.export.policy import ExportRequest, export_and_check
from utils.export.runtimes import ExportedDetector, export_format, litert_runner, onnx_runner, saved_model_runner
from utils.export.writers import EXPORT_SCORE_THRESHOLD
from utils.inference.batch import image_files
from utils.inference.detector import Detector
from utils.inference.draw import draw_detections, save_image
from utils.inference.heatmap import heatmap_panels, objectness_maps
from utils.inference.latency import detector_latency, exported_latency, format_timings
from utils.inference.loading import (
    load_detector,
    resolve_model_path,
)
from utils.inference.outputs import count_text, save_crops, write_annotation_lines
from utils.io.files import atomic_write_json
from utils.ops.decoder import Decoder
from utils.ops.detections import write_results_json


def make_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--run-dir", "--model", dest="run", required=True,
                        help="run directory, .keras file, or an export (SavedModel folder, .onnx, .tflite)")
    common.add_argument("--no-letterbox", dest="letterbox", action="store_false", default=None,
                        help="stretch images to the input size instead of letterboxing (Keras models)")
    common.add_argument("--xla", action="store_true",
                        help="XLA-compile model and decoding (Keras models; measure with fps first)")
    decoder = {f.name: f.default for f in dataclasses.fields(Decoder)}
    common.add_argument("--confidence", type=float, default=None,
                        help="minimum score to keep a detection (default: the model's own, "
                             f"{decoder['score_threshold']} unless set at export)")
    common.add_argument("--nms-iou", type=float, default=None,
                        help=f"IoU above which NMS removes a box (default: the model's, {decoder['iou_threshold']})")
    common.add_argument("--max-detections", type=int, default=None,
                        help=f"default: the model's, {decoder['max_detections']}")
    common.add_argument("--classes", nargs="+", metavar="NAME", help="keep only these classes")
    common.add_argument("--count", action="store_true", help="print per-class counts (and write counts.json)")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    stills = argparse.ArgumentParser(add_help=False)
    stills.add_argument("--crop", action="store_true", help="also save each detection as <output>/crops/<class>/")
    stills.add_argument("--save-json", metavar="FILE",
                        help="detections as a COCO results file (image_id = the image's absolute path)")
    stills.add_argument("--save-txt", metavar="FILE", help="detections as annotation lines")
    image = modes.add_parser("image", parents=[common, stills], help="detect on one or more image files")
    image.add_argument("--input", nargs="+", required=True, help="image file(s)")
    image.add_argument("--output", required=True,
                       help="output image path (one input) or folder (several inputs)")
    folder = modes.add_parser("dir", parents=[common, stills], help="detect on every image under a folder")
    folder.add_argument("--input", required=True, help="folder, searched recursively")
    folder.add_argument("--output", required=True, help="folder; the input's sub-folders are mirrored")
    folder.add_argument("--batch-size", type=int, default=8)
    video = modes.add_parser("video", parents=[common], help="detect on a video file or a camera")
    video.add_argument("--input", required=True, help="video file, or a camera index such as 0")
    video.add_argument("--output", required=True, help="annotated video (.mp4 or .avi), written at the source fps")
    video.add_argument("--show", action="store_true", help="also show the frames in a window (needs a display)")
    video.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: all)")
    model_only = argparse.ArgumentParser(add_help=False)
    model_only.add_argument("--run-dir", "--model", dest="run", required=True, help="run directory or .keras file")
    fps = modes.add_parser("fps", parents=[model_only], help="latency table: runtimes × batch sizes")
    fps.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    fps.add_argument("--runtimes", nargs="+", choices=["eager", "graph", "xla"], default=["eager", "graph"],
                     help="xla is opt-in: measure before enabling it (on some CPUs it is slower)")
    fps.add_argument("--runs", type=int, default=20, help="timed calls per cell (after 3 warm-up calls)")
    fps.add_argument("--saved-model", help="also time this exported SavedModel (predict.py export)")
    fps.add_argument("--onnx", help="also time this ONNX export in ONNX Runtime")
    fps.add_argument("--litert", help="also time this LiteRT (.tflite) export (batch 1)")
    heatmap = modes.add_parser("heatmap", parents=[model_only], help="objectness heatmaps per output level")
    heatmap.add_argument("--input", nargs="+", required=True, help="image file(s)")
    heatmap.add_argument("--output", required=True, help="output image path (one input) or folder")
    export = modes.add_parser("export", parents=[model_only],
                              help="SavedModel with pre/post-processing, checked against the Keras model")
    export.add_argument("--format", choices=["saved_model", "onnx", "litert"], default="saved_model")
    export.add_argument("--output", required=True, help="SavedModel folder, .onnx or .tflite file")
    export.add_argument("--quantize", choices=["fp16", "int8"], help="litert: float16 weights, or int8")
    export.add_argument("--calibration", metavar="FILE",
                        help="int8: annotation lines (or a list of image paths) whose images calibrate the ranges")
    export.add_argument("--calibration-images", type=int, default=100, help="int8: at most this many")
    export.add_argument("--confidence", type=float, default=EXPORT_SCORE_THRESHOLD,
                        help="score threshold baked into the export (consumers can filter further)")
    export.add_argument("--nms-iou", type=float, default=None, help="default: the model's own")
    export.add_argument("--max-detections", type=int, default=None, help="default: the model's own")
    export.add_argument("--no-letterbox", dest="letterbox", action="store_false", default=None,
                        help="stretch images to the input size instead of letterboxing")
    export.add_argument("--check-images", nargs="*", default=None,
                        help="images for the parity check (default: up to 4 of the run's validation images on which "
                             "the model detects something)")
    export.add_argument("--tolerance", type=float, default=None,
                        help="largest box difference (px) the parity check accepts (default: 1; quantized exports: "
                             "reported, not enforced)")
    export.add_argument("--annotations", metavar="FILE",
                        help="also report the mAP change of the export against the Keras model on these lines")
    export.add_argument("--max-map-drop", type=float, default=0.02,
                        help="quantized exports fail when mAP@.5 on --annotations falls by more than this")
    export.add_argument("--no-check", action="store_true",
                        help="export without the parity and mAP checks (a quantized export then has no verdict)")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return make_parser().parse_args(argv)


def output_paths(inputs: list[str], output: str) -> list[Path]:
    """One input → `output` itself; several → `output/<stem>.png`."""
    if len(inputs) == 1 and Path(output).suffix:
        return [Path(output)]
    return [Path(output) / f"{Path(p).stem}.png" for p in inputs]


def readable_inputs(inputs: list[str], targets: list[Path]) -> tuple[list[str], list[Path], list[str]]:
    """The inputs that exist and decode (one parallel decode pass), their targets, and a `path: reason` line per
    input left out. Raises ValueError when none is readable."""

    readable, missing, unreadable = readable_paths(inputs)
    skipped = unusable_reasons(missing, unreadable)
    kept = set(readable)
    pairs = [(path, target) for path, target in zip(inputs, targets, strict=True) if path in kept]
    if not pairs:
        raise ValueError("no readable image among the inputs:\n  " + "\n  ".join(skipped))
    return [path for path, _ in pairs], [target for _, target in pairs], skipped


def detector_for(args: argparse.Namespace):
    """The Keras detector of a run, or an exported model behind the same interface."""

    if export_format(args.run):
        if args.xla or args.letterbox is False:
            raise ValueError(f"{args.run}: --xla and --no-letterbox apply to Keras models; an export has its "
                             f"resize mode baked in (predict.py export --no-letterbox)")
        detector = ExportedDetector(args.run, args.confidence, args.max_detections, args.classes)
        if args.nms_iou is not None and args.nms_iou != detector.metadata.nms_iou:
            print(f"note: {args.run} applies the NMS IoU it was exported with ({detector.metadata.nms_iou})")
        return detector

    return Detector(args.run, args.confidence, args.nms_iou, args.max_detections, args.classes, args.letterbox,
                    args.xla)


def run_stills(args: argparse.Namespace, inputs: list[str], targets: list[Path], batch_size: int) -> int:
    """Shared by `image` and `dir`: detect, draw, and write the optional crops, counts, JSON and lines."""

    inputs, targets, skipped = readable_inputs(inputs, targets)
    detector = detector_for(args)
    detections = detector.detect_paths(inputs, batch_size)
    names = detector.class_names
    totals = {name: 0 for name in names}
    out_root = Path(args.output).parent if Path(args.output).suffix else Path(args.output)
    for source, target, found in zip(inputs, targets, detections, strict=True):
        image = read_bgr(source)
        save_image(target, draw_detections(image, found, names))
        for class_id in found.classes:
            totals[names[int(class_id)]] += 1
        if args.crop:
            save_crops(image, found, names, out_root / "crops", Path(source).stem)
        print(f"{source}: {len(found.scores)} detections ({count_text(found, names)}) -> {target}")
    if args.count:
        print("total: " + (", ".join(f"{n} {c}" for n, c in totals.items() if c) or "none"))
        atomic_write_json(out_root / "counts.json", totals)
    if args.save_json:
        write_results_json(args.save_json, detections, [os.path.realpath(p) for p in inputs])
    if args.save_txt:
        write_annotation_lines(args.save_txt, list(inputs), detections)
    if skipped:
        print(f"skipped {len(skipped)} unreadable images:\n  " + "\n  ".join(skipped))
    return 0


def run_dir(args: argparse.Namespace) -> int:
    root = Path(args.input)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: folder not found")

    inputs = image_files(root)
    targets = [Path(args.output) / Path(p).relative_to(root) for p in inputs]
    return run_stills(args, inputs, targets, args.batch_size)


def open_video(source: str):

    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        raise FileNotFoundError(f"{source}: cannot open this video file or camera")
    return capture


def run_video(args: argparse.Namespace) -> int:


    capture = open_video(args.input)
    detector = detector_for(args)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    show = args.show and bool(os.environ.get("DISPLAY") or os.name == "nt")
    if args.show and not show:
        print("--show: no display here; writing the video only")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.stem}.partial{output.suffix}")  # renamed when complete
    writer = None
    frames = 0
    try:
        while not args.max_frames or frames < args.max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            found = detector.detect_rgb(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            drawn = draw_detections(frame, found, detector.class_names)
            if writer is None:
                fourcc = cv2.VideoWriter_fourcc(*("MJPG" if output.suffix.lower() == ".avi" else "mp4v"))
                writer = cv2.VideoWriter(str(partial), fourcc, fps, (frame.shape[1], frame.shape[0]))
            writer.write(drawn)
            frames += 1
            if args.count:
                print(f"frame {frames}: {count_text(found, detector.class_names)}")
            if show:
                cv2.imshow("EffYOLO", drawn)
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    break
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        if show:
            cv2.destroyAllWindows()
    if frames == 0:
        raise ValueError(f"{args.input}: no frame could be read")
    os.replace(partial, output)
    print(f"{args.input}: {frames} frames at {fps:g} fps -> {output}")
    return 0


def run_fps(args: argparse.Namespace) -> int:

    detector = load_detector(args.run)
    timings = detector_latency(detector, args.batch_sizes, args.runtimes, runs=args.runs)
    input_hw = detector.decoder.input_hw

    if args.saved_model:
        timings += exported_latency("saved_model", saved_model_runner(args.saved_model), input_hw,
                                    args.batch_sizes, args.runs)
    if args.onnx:
        timings += exported_latency("onnxruntime", onnx_runner(args.onnx), input_hw, args.batch_sizes, args.runs)
    if args.litert:
        timings += exported_latency("litert", litert_runner(args.litert), input_hw, [1], args.runs)
    print(f"{detector.name}, {input_hw[0]}×{input_hw[1]}, post-processing included; medians of {args.runs} calls")
    print(format_timings(timings))
    return 0


def run_heatmap(args: argparse.Namespace) -> int:


    check_images(args.input)
    model = load_detector(args.run)
    for source, target in zip(args.input, output_paths(args.input, args.output), strict=True):
        image = read_bgr(source)
        maps = objectness_maps(model, cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        save_image(target, heatmap_panels(image, maps))
        print(f"{source}: objectness max per level " + " / ".join(f"{m.max():.2f}" for m in maps) + f" -> {target}")
    return 0


def run_export(args: argparse.Namespace) -> int:

    config_path = resolve_model_path(args.run).parent / "config.json"  # the run's record, for its validation lines
    validation = load_config(config_path).val if config_path.is_file() else None
    detector = Detector(args.run, args.confidence, args.nms_iou, args.max_detections, letterbox=args.letterbox)
    request = ExportRequest(
        output=args.output, format=args.format, quantize=args.quantize, calibration=args.calibration,
        calibration_images=args.calibration_images, check_images=args.check_images, validation_lines=validation,
        tolerance=args.tolerance, annotations=args.annotations, max_map_drop=args.max_map_drop,
        check=not args.no_check)
    return 0 if export_and_check(detector, request) else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.mode == "export":
        return run_export(args)
    if args.mode == "fps":
        return run_fps(args)
    if args.mode == "heatmap":
        return run_heatmap(args)
    if args.mode == "image":
        return run_stills(args, list(args.input), output_paths(args.input, args.output), batch_size=1)
    if args.mode == "dir":
        return run_dir(args)
    if args.mode == "video":
        return run_video(args)
    raise AssertionError(args.mode)


if __name__ == "__main__":

    run_cli(main)
