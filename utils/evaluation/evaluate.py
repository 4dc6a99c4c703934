"""A detector over annotated images, and its metrics: what `get_map.py` and the training mAP callback run."""

from __future__ import annotations

from nets.detector import YoloDetector
from utils.data.annotations import Annotation
from utils.data.sample_check import split_readable, unusable_reasons
from utils.evaluation.metrics import EVALUATION_NMS_IOU, EVALUATION_SCORE_THRESHOLD, evaluate_detections
from utils.inference.batch import predict_paths
from utils.ops.decoder import Decoder
from utils.ops.detections import Detections


def evaluation_decoder(detector: YoloDetector, score_threshold: float = EVALUATION_SCORE_THRESHOLD,
                       iou_threshold: float = EVALUATION_NMS_IOU, max_detections: int | None = None) -> Decoder:
    """The detector's decoder with the evaluation's thresholds."""
    return detector.decoder.replace(score_threshold=score_threshold, iou_threshold=iou_threshold,
                                    max_detections=max_detections)


def detect_annotations(
    detector: YoloDetector, annotations: list[Annotation], batch_size: int = 8, decoder: Decoder | None = None,
    progress: bool = True,
) -> tuple[list[Annotation], list[Detections], list[str]]:
    """Detections for every annotated image that exists and decodes.

    Returns:
        the annotations used, their detections (same order) and a `path: reason` line per image left out.
    """
    annotations, missing, unreadable = split_readable(annotations)
    missing = unusable_reasons(missing, unreadable)
    if not annotations:
        raise ValueError("none of the annotated images exist and decode")
    detections = predict_paths(detector, [a.image_path for a in annotations], batch_size,
                               decoder or evaluation_decoder(detector), progress)
    return annotations, detections, missing


def evaluate_model(detector: YoloDetector, annotations: list[Annotation], batch_size: int = 8,
                   progress: bool = True, confidence: float = 0.5) -> dict:
    """Run the detector over annotated images (checked beforehand: see `sample_check.split_readable`) at the
    evaluation thresholds and compute every metric of `metrics.evaluate_detections`."""
    detections = predict_paths(detector, [a.image_path for a in annotations], batch_size,
                               evaluation_decoder(detector), progress)
    return evaluate_detections(detections, [a.ground_truth() for a in annotations], list(detector.class_names),
                               confidence=confidence)
