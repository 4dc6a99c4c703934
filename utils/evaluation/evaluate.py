"""A detector over annotated images, and its metrics: what `get_map.py`, the training mAP callback and the export
check run — for any detector of the one interface (Keras or exported)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from utils.config.detect_config import DetectConfig
from utils.config.report_config import ReportConfig
from utils.config.settings import check_fields, setting
from utils.data.annotations import Annotation, check_class_ids, read_annotations, read_class_names
from utils.data.sample_check import split_readable, unusable_reasons
from utils.evaluation.metrics import PR_SCORE, evaluate_detections
from utils.evaluation.report import write_report
from utils.inference.exported import ExportedDetector
from utils.inference.interface import Detector
from utils.inference.loading import load_detector, resolve_model_path
from utils.inference.requests import MODEL_HELP
from utils.ops.detections import Detections, read_results_json, write_results_json

log = logging.getLogger(__name__)


def evaluation_settings(detector: Detector, **given) -> DetectConfig:
    """The evaluation's settings for `detector` (`DetectConfig.for_use("evaluate")`: nearly every box kept),
    with the `given` ones (None: not given)."""
    return DetectConfig.for_use("evaluate", detector.settings, **given)


def detect_annotations(
    detector: Detector, annotations: list[Annotation], settings: DetectConfig | None = None, progress: bool = True,
) -> tuple[list[Annotation], list[Detections], list[str]]:
    """Detections for every annotated image that exists and decodes (`settings`: default the evaluation's).

    Returns:
        the annotations used, their detections (same order) and a `path: reason` line per image left out.
    """
    annotations, missing, unreadable = split_readable(annotations)
    skipped = unusable_reasons(missing, unreadable)
    if not annotations:
        raise ValueError("none of the annotated images exist and decode")
    detections = detector.detect_paths([a.image_path for a in annotations],
                                       settings or evaluation_settings(detector), progress=progress)
    return annotations, detections, skipped


def evaluate_model(detector: Detector, annotations: list[Annotation], progress: bool = True,
                   pr_score: float = PR_SCORE, **settings) -> dict:
    """Run the detector over annotated images (checked beforehand: see `sample_check.split_readable`) with the
    evaluation's settings (`settings`: `DetectConfig` fields given) and compute every metric of
    `metrics.evaluate_detections`."""
    detections = detector.detect_paths([a.image_path for a in annotations],
                                       evaluation_settings(detector, **settings), progress=progress)
    return evaluate_detections(detections, [a.ground_truth() for a in annotations], list(detector.class_names),
                               pr_score=pr_score)


@dataclass(frozen=True)
class EvaluationRequest:
    """What `get_map.py` evaluates: a detector (run, `.keras` or export) or a COCO results file, on annotation
    lines, and where the report goes."""

    model: str | None = setting(None, f"{MODEL_HELP}: run inference (or give --detections)", flag="--run-dir",
                                aliases=("--model",))
    detections: str | None = setting(None, "a COCO results-format JSON to evaluate instead of running a model",
                                     metavar="FILE")
    annotations: str = setting(None, "annotation lines to evaluate on", required=True, metavar="FILE")
    classes: str | None = setting(None, "class list (required with --detections)", metavar="FILE")
    out_dir: str | None = setting(None, "where outputs go (default: <run dir>/map, or map/ beside the export or "
                                        "the detections file)")

    def __post_init__(self) -> None:
        check_fields(self)
        if (self.model is None) == (self.detections is None):
            raise ValueError("give a model (--run-dir/--model) or --detections, not both or neither")
        if self.detections and not self.classes:
            raise ValueError("--detections needs --classes (the class list the category ids index)")


def evaluate_request(request: EvaluationRequest, settings: dict, report: ReportConfig) -> tuple[dict, Path]:
    """Run (or read) the detections, evaluate them and write the report; returns the metrics and the report's
    folder. `settings`: detection settings given (None values: the evaluation's defaults)."""
    annotations, problems = read_annotations(request.annotations, strict=False)
    for problem in problems:
        log.warning("skipping unparsable line: %s", problem)
    if request.model:
        detector = load_detector(request.model)
        chosen = evaluation_settings(detector, **settings)  # an export warns where its baked-in ones apply
        class_names = list(detector.class_names)
        annotations, detections, skipped = detect_annotations(detector, annotations, chosen)
        for reason in skipped:
            log.warning("skipped %s", reason)
        out_dir = Path(request.out_dir) if request.out_dir else (
            Path(request.model).resolve().parent if isinstance(detector, ExportedDetector)
            else resolve_model_path(request.model).parent) / "map"
        write_results_json(out_dir / "detections.json", detections, [a.image_path for a in annotations])
    else:
        class_names = read_class_names(request.classes)
        detections = read_results_json(request.detections, [a.image_path for a in annotations], len(class_names),
                                       [a.line_index for a in annotations])
        out_dir = Path(request.out_dir) if request.out_dir else Path(request.detections).parent / "map"
    check_class_ids(annotations, len(class_names), request.annotations)
    return write_report(out_dir, annotations, detections, class_names, report), out_dir
