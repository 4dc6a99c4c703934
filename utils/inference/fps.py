"""`predict.py fps`: one latency table for a Keras detector in its runtimes and for its exports, all timed through
the detector interface on the same images."""

from __future__ import annotations

from utils.inference.exported import ExportedDetector
from utils.inference.latency import detector_latency, format_timings, keras_runtime_settings
from utils.inference.loading import load_keras_detector
from utils.inference.requests import FpsRequest

EXPORT_RUNTIMES = {"saved_model": "saved_model", "onnx": "onnxruntime", "litert": "litert"}


def fps_report(request: FpsRequest) -> str:
    """The table (median and p90 per runtime and batch size, post-processing included) with a title line."""
    detector = load_keras_detector(request.model)
    timings = []
    for runtime in request.runtimes:
        timings += detector_latency(runtime, detector, list(request.batch_sizes),
                                    keras_runtime_settings(detector, runtime), runs=request.runs)
    for field, runtime in EXPORT_RUNTIMES.items():
        path = getattr(request, field)
        if path:
            batches = [1] if field == "litert" else list(request.batch_sizes)
            timings += detector_latency(runtime, ExportedDetector(path), batches, runs=request.runs)
    height, width = detector.input_hw
    return (f"{detector.name}, {height}×{width}, post-processing included; medians of {request.runs} calls\n"
            + format_timings(timings))
