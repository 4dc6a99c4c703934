"""The one detector interface: what a trained Keras detector (`nets.detector.YoloDetector`) and every export
(`utils.inference.exported.ExportedDetector`) offer, and what prediction, evaluation, the latency table and the
export check take."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from utils.config.detect_config import DetectConfig
from utils.ops.detections import Detections


@runtime_checkable
class Detector(Protocol):
    """A detector: its class names, input size and own inference settings, and two ways to detect.

    `settings` (None: the detector's own) are a `DetectConfig`; an export applies what it baked in where a setting
    cannot change after export (see `ExportedDetector`).
    """

    class_names: tuple[str, ...]

    @property
    def input_hw(self) -> tuple[int, int]: ...

    @property
    def settings(self) -> DetectConfig: ...

    def detect(self, images, settings: DetectConfig | None = None) -> list[Detections]:
        """One image (H, W, 3), a batch (B, H, W, 3) or a list of images of any sizes → detections in their
        pixels (arrays checked by `utils.data.image_arrays`)."""
        ...

    def detect_paths(self, paths: Sequence[str], settings: DetectConfig | None = None,
                     progress: bool = False) -> list[Detections]:
        """Image files that exist and decode → detections in their pixels, in order."""
        ...
