"""`predict.py image` and `dir`: detect on image files, draw each, and write the optional crops, counts, COCO
results file and annotation lines; unreadable inputs are skipped and listed."""

from __future__ import annotations

import os
from pathlib import Path

from utils.config.detect_config import DetectConfig
from utils.data.images import read_bgr
from utils.data.sample_check import readable_paths, unusable_reasons
from utils.inference.draw import draw_detections, save_image
from utils.inference.files import FileDetections, image_files
from utils.inference.interface import Detector
from utils.inference.outputs import ClassCounts, count_text, save_crops, write_annotation_lines
from utils.inference.requests import DirRequest, ImageRequest
from utils.ops.detections import write_results_json


def output_paths(inputs: list[str], output: str) -> list[Path]:
    """One input → `output` itself (when it has a suffix); several → `output/<stem>.png`."""
    if len(inputs) == 1 and Path(output).suffix:
        return [Path(output)]
    return [Path(output) / f"{Path(p).stem}.png" for p in inputs]


def stills_targets(request: ImageRequest | DirRequest) -> dict[str, Path]:
    """Each input image and the path its drawing goes to (`dir`: the folder's layout mirrored)."""
    if isinstance(request, DirRequest):
        root = Path(request.input)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: folder not found")
        inputs = image_files(root)
        return {path: Path(request.output) / Path(path).relative_to(root) for path in inputs}
    return dict(zip(request.input, output_paths(list(request.input), request.output), strict=True))


def readable_targets(request: ImageRequest | DirRequest) -> tuple[dict[str, Path], list[str]]:
    """`stills_targets` of the inputs that exist and decode (one parallel decode pass, before any model loads), and
    a `path: reason` line per input left out.

    Raises:
        ValueError when no input is readable (every unreadable one named).
    """
    targets = stills_targets(request)
    readable, missing, unreadable = readable_paths(list(targets))
    skipped = unusable_reasons(missing, unreadable)
    if not readable:
        raise ValueError("no readable image among the inputs:\n  " + "\n  ".join(skipped))
    return {path: targets[path] for path in readable}, skipped


def predict_stills(detector: Detector, request: ImageRequest | DirRequest, settings: DetectConfig,
                   inputs: tuple[dict[str, Path], list[str]]) -> int:
    """Detect on the `readable_targets` of the request, draw, write the asked-for outputs and print a line per
    image; returns how many images were drawn."""
    targets, skipped = inputs
    found = FileDetections(dict(zip(targets, detector.detect_paths(list(targets), settings,
                                                                   progress=len(targets) > 1), strict=True)), skipped)
    names = list(detector.class_names)
    out_root = Path(request.output).parent if Path(request.output).suffix else Path(request.output)
    counts = ClassCounts(names, "image")
    for source, detections in found.items():
        image = read_bgr(source)
        save_image(targets[source], draw_detections(image, detections, names))
        counts.add(source, detections)
        if request.crop:
            save_crops(image, detections, names, out_root / "crops", Path(source).stem)
        print(f"{source}: {len(detections.scores)} detections ({count_text(detections, names)}) -> "
              f"{targets[source]}")
    if request.count:
        print(f"total: {counts.total_text()}")
        counts.write(out_root / "counts.json")
    if request.save_json:
        write_results_json(request.save_json, list(found.values()), [os.path.realpath(p) for p in found])
    if request.save_txt:
        write_annotation_lines(request.save_txt, list(found), list(found.values()))
    if found.skipped:
        print(f"skipped {len(found.skipped)} unreadable images:\n  " + "\n  ".join(found.skipped))
    return len(found)
