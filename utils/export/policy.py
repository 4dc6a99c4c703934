"""What `predict.py export` promises: write the export with its metadata, then prove it against the Keras model —
box-for-box parity on images the model detects something on, and (with labelled images) the mAP change; a quantized
export is judged by its mAP drop."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from utils.data.annotations import read_annotations
from utils.data.images import read_rgb
from utils.data.sample_check import check_images, readable_paths, split_readable
from utils.evaluation.metrics import evaluate_detections
from utils.export.runtimes import ExportedDetector, ExportMetadata, write_metadata
from utils.export.writers import compare, export_litert, export_onnx, export_saved_model
from utils.inference.detector import Detector
from utils.io.files import check_writable
from utils.ops.letterbox import letterbox_image


@dataclass(frozen=True)
class ExportRequest:
    """One export: where, which format and quantization, and how to check it."""

    output: str
    format: str = "saved_model"
    quantize: str | None = None
    calibration: str | None = None  # int8: annotation lines or image paths
    calibration_images: int = 100
    check_images: list[str] | None = None  # parity images (None: from `validation_lines`)
    validation_lines: str | None = None  # the run's validation lines, when known
    tolerance: float | None = None  # px (None: 1 for float exports; quantized ones are judged by mAP)
    annotations: str | None = None  # labelled images for the mAP comparison
    max_map_drop: float = 0.02
    check: bool = True


def parity_images(detector: Detector, request: ExportRequest, wanted: int = 4, scanned: int = 32) -> list:
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
        if len(detector.detect_rgb(image).scores):
            chosen.append(image)
        if len(chosen) == wanted:
            break
    if not chosen:
        raise ValueError(f"the export check needs images the model detects something on at --confidence "
                         f"{detector.decoder.score_threshold}; none of {where} has a detection. Give "
                         f"--check-images with objects in them, or a lower --confidence")
    return chosen


def calibration_images(request: ExportRequest, input_hw: tuple[int, int]) -> list[np.ndarray]:
    """int8 calibration: the first `calibration_images` readable images of `calibration`, letterboxed to the
    model's input size (the export's own letterbox is then the identity)."""
    if not request.calibration:
        raise ValueError("--quantize int8 needs --calibration FILE (annotation lines or image paths)")
    readable = split_readable(read_annotations(request.calibration, strict=False)[0])[0][:request.calibration_images]
    if not readable:
        raise ValueError(f"{request.calibration}: no readable images to calibrate with")
    print(f"calibrating int8 on {len(readable)} images of {request.calibration}")
    return [np.round(letterbox_image(tf.constant(read_rgb(a.image_path)), input_hw).numpy()).astype(np.uint8)
            for a in readable]


def map_change(detector: Detector, exported: ExportedDetector, annotations_path: str) -> tuple[str, float]:
    """mAP of the export and of the Keras model, at the export's thresholds, on `annotations_path`: the report line
    and the drop in mAP@.5."""
    annotations = split_readable(read_annotations(annotations_path, strict=False)[0])[0]
    paths = [a.image_path for a in annotations]
    truth = [a.ground_truth() for a in annotations]
    ours = evaluate_detections(detector.detect_paths(paths), truth, detector.class_names)
    theirs = evaluate_detections(exported.detect_paths(paths), truth, detector.class_names)
    line = (f"mAP on {len(paths)} images of {annotations_path} (scores >= {detector.decoder.score_threshold}): "
            f"Keras {ours['map50']:.4f} / {ours['map50_95']:.4f}, export {theirs['map50']:.4f} / "
            f"{theirs['map50_95']:.4f} (mAP@.5 / mAP@.5:.95; change {theirs['map50'] - ours['map50']:+.4f} / "
            f"{theirs['map50_95'] - ours['map50_95']:+.4f})")
    return line, ours["map50"] - theirs["map50"]


def export_and_check(detector: Detector, request: ExportRequest) -> bool:
    """Write the export and its metadata, check it as described above and print the verdict; True when it
    passed (or was not checked)."""
    if request.quantize and request.format != "litert":
        raise ValueError(f"--quantize applies to --format litert, not {request.format}")
    if request.quantize and not request.annotations and request.check:
        raise ValueError(f"--quantize {request.quantize}: a quantized export is judged by its mAP change; give "
                         f"--annotations FILE (labelled images), or --no-check to export without a verdict")
    check_writable(request.output)  # before minutes of conversion
    images = parity_images(detector, request) if request.check else []
    model, decoder = detector.model, detector.decoder
    if request.format == "litert":
        calibration = calibration_images(request, decoder.input_hw) if request.quantize == "int8" else []
        export_litert(model, request.output, decoder, quantize=request.quantize, calibration=calibration)
    elif request.format == "onnx":
        with tempfile.TemporaryDirectory(prefix="effyolo_export_") as saved_model:
            export_saved_model(model, saved_model, decoder)
            export_onnx(saved_model, request.output)
    else:
        export_saved_model(model, request.output, decoder)
    write_metadata(request.output, ExportMetadata(
        request.format, tuple(model.class_names), decoder.input_hw[0], decoder.box_coding, decoder.score_threshold,
        decoder.iou_threshold, decoder.max_detections, decoder.letterbox, request.quantize))
    described = f"{request.output} ({request.format}{', ' + request.quantize if request.quantize else ''})"
    if not request.check:
        print(f"exported {described}; not checked (--no-check)")
        return True
    exported = ExportedDetector(request.output)
    parity = compare([detector.detect_rgb(image) for image in images], [exported.detect_rgb(i) for i in images])
    # A float export must match box for box. A quantized one is judged by its mAP (--annotations): its rounding
    # reorders near-tied low scores, so box-for-box pairs are not expected.
    enforced = request.tolerance is not None or not request.quantize
    passed = parity.passed(request.tolerance if request.tolerance is not None else 1.0)
    verdict = ("passed" if passed else "FAILED") if enforced else "reported (quantized: judged by mAP)"
    print(f"exported {described}; parity on {parity.images} images ({parity.paired} detections paired): max box "
          f"difference {parity.max_box_difference:.3f} px, same classes {parity.same_classes}, same counts "
          f"{parity.same_counts} -> {verdict}")
    map_ok = True
    if request.annotations:
        line, drop = map_change(detector, exported, request.annotations)
        map_ok = not request.quantize or drop <= request.max_map_drop
        print(line + ("" if map_ok else f" -> FAILED: mAP@.5 fell by more than --max-map-drop {request.max_map_drop}"))
    return (passed or not enforced) and map_ok
