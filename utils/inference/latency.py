"""Latency of whole detectors — letterbox, model, decoding, NMS, inverse letterbox — through the one detector
interface: a Keras detector (graph, or XLA-compiled) and its exports, on the same uint8 images."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from utils.config.detect_config import DetectConfig
from utils.inference.interface import Detector

KERAS_RUNTIMES = ("graph", "xla")  # Keras detectors: a graph function, or that with XLA-compiled model + decoding


@dataclass(frozen=True)
class Timing:
    runtime: str
    batch: int
    median_ms: float
    p90_ms: float

    @property
    def images_per_second(self) -> float:
        return self.batch / self.median_ms * 1000


def _on_host(value: object) -> object:
    """Tensors (in dicts, lists, tuples) copied to NumPy, so a timed call includes finishing its work."""
    if isinstance(value, dict):
        return {key: _on_host(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_on_host(item) for item in value]
    return value.numpy() if hasattr(value, "numpy") else value


def time_calls(call: Callable[[], object], runs: int, warmup: int) -> list[float]:
    """Milliseconds of each of `runs` calls after `warmup` untimed ones (results brought to the host)."""
    for _ in range(warmup):
        _on_host(call())
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        _on_host(call())
        times.append((time.perf_counter() - start) * 1000)
    return times


def detector_latency(runtime: str, detector: Detector, batches: list[int], settings: DetectConfig | None = None,
                     runs: int = 20, warmup: int = 3) -> list[Timing]:
    """Median and 90th-percentile latency of `detector.detect` per batch size, on random uint8 images of the
    detector's input size (the model's cost does not depend on the pixels; letterbox is then a plain copy)."""
    results = []
    for batch in batches:
        images = np.random.default_rng(0).integers(0, 255, (batch, *detector.input_hw, 3), dtype=np.uint8)
        times = time_calls(lambda x=images: detector.detect(x, settings), runs, warmup)
        results.append(Timing(runtime, batch, statistics.median(times), float(np.percentile(times, 90))))
    return results


def keras_runtime_settings(detector: Detector, runtime: str) -> DetectConfig:
    """The detector's own settings in one of `KERAS_RUNTIMES`."""
    if runtime not in KERAS_RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; expected one of {KERAS_RUNTIMES}")
    return detector.settings.replace(xla=runtime == "xla")


def format_timings(timings: list[Timing]) -> str:
    rows = ["| runtime | batch | median ms | p90 ms | images/s |", "|---|---:|---:|---:|---:|"]
    rows += [f"| {t.runtime} | {t.batch} | {t.median_ms:.1f} | {t.p90_ms:.1f} | {t.images_per_second:.1f} |"
             for t in timings]
    return "\n".join(rows)
