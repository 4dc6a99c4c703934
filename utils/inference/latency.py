"""Latency of the whole detector (model, decoding, NMS, inverse letterbox) in eager, graph and XLA modes."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from nets.detector import YoloDetector


@dataclass(frozen=True)
class Timing:
    runtime: str
    batch: int
    median_ms: float
    p90_ms: float

    @property
    def images_per_second(self) -> float:
        return self.batch / self.median_ms * 1000


def time_calls(call: Callable[[], object], runs: int, warmup: int) -> list[float]:
    """Milliseconds of each of `runs` calls after `warmup` untimed ones (results forced to host)."""
    for _ in range(warmup):
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, call())
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, call())
        times.append((time.perf_counter() - start) * 1000)
    return times


def detector_latency(detector: YoloDetector, batches: list[int], runtimes: list[str], runs: int = 20,
                     warmup: int = 3) -> list[Timing]:
    """Median and 90th-percentile latency per runtime ("eager", "graph", "xla") and batch size, post-processing
    included (the detector's own decoder with score threshold 0.25), on letterboxed random images
    (the model's cost does not depend on the pixels)."""
    decoder = detector.decoder.replace(score_threshold=0.25)
    input_hw = decoder.input_hw
    detect = detector.detection_function(decoder)
    compiled = detector.detection_function(decoder, jit_compile=True)
    functions = {"eager": detect, "graph": tf.function(detect), "xla": tf.function(compiled)}
    results = []
    for runtime in runtimes:
        for batch in batches:
            images = tf.random.uniform((batch, *input_hw, 3), 0, 255)
            image_hw = tf.tile(tf.constant([[480, 640]]), [batch, 1])
            times = time_calls(lambda f=functions[runtime], x=images, s=image_hw: f(x, s), runs, warmup)
            results.append(Timing(runtime, batch, statistics.median(times), float(np.percentile(times, 90))))
    return results


def format_timings(timings: list[Timing]) -> str:
    rows = ["| runtime | batch | median ms | p90 ms | images/s |", "|---|---:|---:|---:|---:|"]
    rows += [f"| {t.runtime} | {t.batch} | {t.median_ms:.1f} | {t.p90_ms:.1f} | {t.images_per_second:.1f} |"
             for t in timings]
    return "\n".join(rows)


def exported_latency(runtime: str, serve: Callable[[np.ndarray], object], input_hw: tuple[int, int],
                     batches: list[int], runs: int = 20, warmup: int = 3) -> list[Timing]:
    """Latency of an exported model's `serve` on uint8 batches of `input_hw` images (letterbox is then a no-op
    resize, as for images already at the model's size)."""
    results = []
    for batch in batches:
        images = np.random.default_rng(0).integers(0, 255, (batch, *input_hw, 3), dtype=np.uint8)
        times = time_calls(lambda x=images: serve(x), runs, warmup)
        results.append(Timing(runtime, batch, statistics.median(times), float(np.percentile(times, 90))))
    return results
