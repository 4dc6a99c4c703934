"""Draw detections on an image with OpenCV: a box per detection, labelled with class name and score."""

from __future__ import annotations

import colorsys
from pathlib import Path

import cv2
import numpy as np

from utils.io.files import atomic_write
from utils.ops.detections import Detections


def class_colours(num_classes: int) -> list[tuple[int, int, int]]:
    """Evenly spaced hues, as BGR tuples."""
    colours = []
    for index in range(num_classes):
        r, g, b = colorsys.hsv_to_rgb(index / max(num_classes, 1), 0.85, 1.0)
        colours.append((int(b * 255), int(g * 255), int(r * 255)))
    return colours


def format_score(score: float) -> str:
    """A score for a label: two decimals, or two significant digits below 0.01 (0.0034, not 0.00)."""
    return f"{score:.2f}" if score >= 0.01 else f"{score:.2g}"


def draw_detections(image_bgr: np.ndarray, detections: Detections, class_names: list[str]) -> np.ndarray:
    """A copy of `image_bgr` with every detection drawn; line width and font scale follow the image size."""
    canvas = image_bgr.copy()
    colours = class_colours(len(class_names))
    thickness = max(1, round(min(canvas.shape[:2]) / 300))
    font_scale = max(0.4, min(canvas.shape[:2]) / 900)
    for (x1, y1, x2, y2), score, class_id in zip(detections.boxes, detections.scores, detections.classes,
                                                 strict=True):
        colour = colours[int(class_id)]
        top_left, bottom_right = (int(round(x1)), int(round(y1))), (int(round(x2)), int(round(y2)))
        cv2.rectangle(canvas, top_left, bottom_right, colour, thickness)
        label = f"{class_names[int(class_id)]} {format_score(float(score))}"
        (text_w, text_h), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        text_y = max(top_left[1], text_h + baseline)
        cv2.rectangle(canvas, (top_left[0], text_y - text_h - baseline), (top_left[0] + text_w, text_y), colour, -1)
        cv2.putText(canvas, label, (top_left[0], text_y - baseline), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def save_image(path: str | Path, image_bgr: np.ndarray) -> None:
    """Write an image atomically (format from the suffix); raise if OpenCV cannot encode it."""

    def write(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), image_bgr):
            raise OSError(f"{path}: OpenCV could not write this image format")

    atomic_write(path, write)
