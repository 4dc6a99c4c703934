"""What `predict.py export` promises: every input checked before converting; the export written beside its final
name with its metadata, then proved against the Keras model — box-for-box parity on images the model detects
something on, and (with labelled images) the mAP change, by which a quantized export is judged — and moved into
place only when it passed (or was not checked). A failure leaves nothing at the output path."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from nets.detector import YoloDetector
from utils.config.detect_config import DetectConfig
from utils.config.settings import setting
from utils.data.annotations import Annotation, read_annotations
from utils.data.images import read_rgb
from utils.data.sample_check import check_images, readable_paths, split_readable
from utils.evaluation.metrics import evaluate_detections
from utils.export.writers import EXPORT_FORMATS, QUANTIZATIONS, compare, export_litert, export_onnx, export_saved_model
from utils.inference.exported import ExportedDetector, ExportMetadata, metadata_path, write_metadata
from utils.inference.requests import OnModel
from utils.io.files import check_writable
from utils.ops.letterbox import letterbox_image


@dataclass(frozen=True, kw_only=True)
class ExportRequest(OnModel):
    """One export: where, which format and quantization, and how to check it."""

    model: str = setting(None, "run directory or .keras file", flag="--run-dir", aliases=("--model",), metavar="PATH",
                         required=True)
    format: str = setting("saved_model", "the export's format", choices=EXPORT_FORMATS)
    output: str = setting(None, "SavedModel folder, .onnx or .tflite file", required=True)
    quantize: str | None = setting(None, "litert: float16 weights, or int8", choices=QUANTIZATIONS)
    calibration: str | None = setting(None, "int8: annotation lines (or a list of image paths) whose images "
                                            "calibrate the ranges", metavar="FILE")
    calibration_images: int = setting(100, "int8: at most this many", minimum=1)
    check_images: tuple[str, ...] | None = setting(
        None, "images for the parity check (default: up to 4 of the run's validation images on which the model "
              "detects something)")
    validation_lines: str | None = setting(None, "the run's validation lines, when known", cli=False)
    tolerance: float | None = setting(None, "largest box difference (px) the parity check accepts (default: 1; "
                                            "quantized exports: reported, not enforced)", minimum=0)
    annotations: str | None = setting(None, "also report the mAP change of the export against the Keras model on "
                                            "these lines", metavar="FILE")
    max_map_drop: float = setting(0.02, "quantized exports fail when mAP@.5 on --annotations falls by more than "
                                        "this", minimum=0)
    check: bool = setting(True, "check the export against the Keras model (--no-check: export without the parity "
                                "and mAP checks; a quantized export then has no verdict)")


def labelled_images(path: str, what: str) -> list[Annotation]:
    """The readable annotated images of `path`; an error naming the file and the flag when there are none."""
    annotations, _ = read_annotations(path, strict=False)
    readable = split_readable(annotations)[0]
    if not readable:
        raise ValueError(f"{path} ({what}): no readable image listed ({len(annotations)} lines parsed)")
    return readable


def parity_images(detector: YoloDetector, settings: DetectConfig, request: ExportRequest, wanted: int = 4,
                  scanned: int = 32) -> list:
    """The images (RGB arrays) the export is checked on: up to `wanted` of `check_images`, else of the first
    `scanned` readable validation images, on which the Keras model finds something — a check with nothing to
    compare proves nothing.

    Raises:
        ValueError when no candidate image gets a detection.
    """
    if request.check_images:
        candidates = list(request.check_images)
        check_images(candidates)
        where = "--check-images"
    else:
        source = request.validation_lines
        try:
            listed = [a.image_path for a in read_annotations(source, strict=False)[0]] if source else []
        except (FileNotFoundError, ValueError):
            listed = []
        candidates = readable_paths([path for path in listed if Path(path).is_file()][:scanned])[0]
        where = (f"the first {len(candidates)} readable images of {source}" if candidates else
                 f"{source} (no readable image listed)" if source else "no validation lines (no config.json)")
    chosen = []
    for path in candidates:
        image = read_rgb(path)
        if len(detector.detect(image, settings)[0].scores):
            chosen.append(image)
        if len(chosen) == wanted:
            break
    if not chosen:
        raise ValueError(f"the export check needs images the model detects something on at --score-threshold "
                         f"{settings.score_threshold}; none of {where} has a detection. Give --check-images with "
                         f"objects in them, or a lower --score-threshold")
    return chosen


def calibration_images(annotations: list[Annotation], input_hw: tuple[int, int]) -> list[np.ndarray]:
    """int8 calibration images, letterboxed to the model's input size (the export's own letterbox is then the
    identity)."""
    return [np.round(letterbox_image(tf.constant(read_rgb(a.image_path)), input_hw).numpy()).astype(np.uint8)
            for a in annotations]


def map_change(detector: YoloDetector, exported: ExportedDetector, settings: DetectConfig,
               annotations: list[Annotation], source: str) -> tuple[str, float]:
    """mAP of the export and of the Keras model, at the export's settings, on `annotations`: the report line and
    the drop in mAP@.5."""
    paths = [a.image_path for a in annotations]
    truth = [a.ground_truth() for a in annotations]
    ours = evaluate_detections(detector.detect_paths(paths, settings), truth, list(detector.class_names))
    theirs = evaluate_detections(exported.detect_paths(paths), truth, list(detector.class_names))
    line = (f"mAP on {len(paths)} images of {source} (scores >= {settings.score_threshold}): "
            f"Keras {ours['map50']:.4f} / {ours['map50_95']:.4f}, export {theirs['map50']:.4f} / "
            f"{theirs['map50_95']:.4f} (mAP@.5 / mAP@.5:.95; change {theirs['map50'] - ours['map50']:+.4f} / "
            f"{theirs['map50_95'] - ours['map50_95']:+.4f})")
    return line, ours["map50"] - theirs["map50"]


def staged_path(output: Path) -> Path:
    """Where an export is written and checked before it moves to `output` (same folder, hidden, same suffix)."""
    return output.with_name(f".{output.stem}.partial{output.suffix}")


def remove_export(path: Path) -> None:
    """An export and its metadata, whichever form (folder or file) it has."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    metadata_path(path).unlink(missing_ok=True)


def move_export(staged: Path, output: Path) -> None:
    """The checked export (and its metadata) into place, over an earlier export at `output`."""
    if output.is_dir():
        shutil.rmtree(output)
    staged_metadata = metadata_path(staged)
    staged.replace(output)
    if staged_metadata.is_file():  # a file's metadata sits beside it; a folder's moved with it
        staged_metadata.replace(metadata_path(output))


def write_export(detector: YoloDetector, settings: DetectConfig, request: ExportRequest, path: Path,
                 calibration: list[np.ndarray]) -> None:
    """The export of `request.format` and its metadata at `path`."""
    if request.format == "litert":
        export_litert(detector, path, settings, quantize=request.quantize, calibration=calibration)
    elif request.format == "onnx":
        with tempfile.TemporaryDirectory(prefix="effyolo_export_") as saved_model:
            export_saved_model(detector, saved_model, settings)
            export_onnx(saved_model, path)
    else:
        export_saved_model(detector, path, settings)
    write_metadata(path, ExportMetadata(request.format, tuple(detector.class_names), detector.input_hw[0],
                                        detector.decoder.box_coding, settings, request.quantize))


def export_and_check(detector: YoloDetector, settings: DetectConfig, request: ExportRequest) -> bool:
    """Check the inputs, write the export with `settings` baked in, check it as described above and print the
    verdict; True when it passed (or was not checked). Only then is the export at `request.output`."""
    if request.quantize and request.format != "litert":
        raise ValueError(f"--quantize applies to --format litert, not {request.format}")
    if request.quantize and not request.annotations and request.check:
        raise ValueError(f"--quantize {request.quantize}: a quantized export is judged by its mAP change; give "
                         f"--annotations FILE (labelled images), or --no-check to export without a verdict")
    if request.quantize == "int8" and not request.calibration:
        raise ValueError("--quantize int8 needs --calibration FILE (annotation lines or image paths)")
    # Every input before minutes of conversion.
    output = Path(request.output)
    check_writable(output)
    labelled = labelled_images(request.annotations, "--annotations") if request.annotations else []
    calibration = []
    if request.quantize == "int8":
        chosen = labelled_images(request.calibration, "--calibration")[:request.calibration_images]
        print(f"calibrating int8 on {len(chosen)} images of {request.calibration}")
        calibration = calibration_images(chosen, detector.input_hw)
    images = parity_images(detector, settings, request) if request.check else []

    staged = staged_path(output)
    remove_export(staged)
    try:
        write_export(detector, settings, request, staged, calibration)
        passed = not request.check or check_export(detector, settings, request, staged, images, labelled)
    except BaseException:
        remove_export(staged)
        raise
    if not passed:
        remove_export(staged)
        print(f"{output}: not written (the check failed; --no-check exports without it)")
        return False
    move_export(staged, output)
    described = f"{output} ({request.format}{', ' + request.quantize if request.quantize else ''})"
    print(f"exported {described}" + ("" if request.check else "; not checked (--no-check)"))
    return True


def check_export(detector: YoloDetector, settings: DetectConfig, request: ExportRequest, path: Path,
                 images: list[np.ndarray], labelled: list[Annotation]) -> bool:
    """Parity on `images` and, with `labelled`, the mAP change; prints both and returns the verdict."""
    exported = ExportedDetector(path)
    parity = compare(detector.detect(images, settings), exported.detect(images))
    # A float export must match box for box. A quantized one is judged by its mAP (--annotations): its rounding
    # reorders near-tied low scores, so box-for-box pairs are not expected.
    enforced = request.tolerance is not None or not request.quantize
    passed = parity.passed(request.tolerance if request.tolerance is not None else 1.0)
    verdict = ("passed" if passed else "FAILED") if enforced else "reported (quantized: judged by mAP)"
    print(f"parity on {parity.images} images ({parity.paired} detections paired): max box difference "
          f"{parity.max_box_difference:.3f} px, same classes {parity.same_classes}, same counts "
          f"{parity.same_counts} -> {verdict}")
    map_ok = True
    if labelled:
        line, drop = map_change(detector, exported, settings, labelled, request.annotations)
        map_ok = not request.quantize or drop <= request.max_map_drop
        print(line + ("" if map_ok else f" -> FAILED: mAP@.5 fell by more than --max-map-drop {request.max_map_drop}"))
    return (passed or not enforced) and map_ok
