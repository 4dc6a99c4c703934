"""A detector over image files: a file, a folder or a list, with the files that are missing or do not decode
skipped and reported (never an error from inside the batching)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from utils.config.detect_config import DetectConfig
from utils.data.formats import IMAGE_SUFFIXES
from utils.data.sample_check import readable_paths, unusable_reasons
from utils.inference.interface import Detector
from utils.ops.detections import Detections

log = logging.getLogger(__name__)


class FileDetections(dict):
    """Detections by image path (in input order), with `skipped`: a `path: reason` line per input left out."""

    def __init__(self, found: dict[str, Detections] | None = None, skipped: Sequence[str] = ()) -> None:
        super().__init__(found or {})
        self.skipped = list(skipped)


def image_files(source: str | Path | Sequence) -> list[str]:
    """An image file, a folder (its images, searched recursively, sorted) or a list of files → file paths."""
    if isinstance(source, (list, tuple)):
        return [str(path) for path in source]
    path = Path(source)
    if path.is_dir():
        found = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise ValueError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in it or below it")
        return found
    return [str(path)]


def detect_files(detector: Detector, paths: Sequence[str], settings: DetectConfig | None = None,
                 progress: bool = False) -> FileDetections:
    """Detections for each path that exists and decodes (one parallel decode pass checks them first); the others
    are skipped, logged and listed in the result's `skipped`."""
    readable, missing, unreadable = readable_paths(list(paths))
    skipped = unusable_reasons(missing, unreadable)
    for reason in skipped:
        log.warning("skipped %s", reason)
    found = detector.detect_paths(readable, settings, progress=progress) if readable else []
    return FileDetections(dict(zip(readable, found, strict=True)), skipped)


def detect_images(detector: Detector, source: str | Path | Sequence, settings: DetectConfig | None = None
                  ) -> FileDetections:
    """Detections for an image file, every image under a folder, or a list of files, by path (files that are
    missing or do not decode are skipped and listed in `skipped`; an empty list gives an empty result)."""
    paths = image_files(source)
    return detect_files(detector, paths, settings, progress=len(paths) > 1)
