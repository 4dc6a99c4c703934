"""`augmented_samples.jpg`: training samples as augmentation made them, boxes drawn, with a legend of the class
colours and the augmentation settings — what the model is fed, to look at before trusting a run."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from utils.config.run_config import AugmentConfig
from utils.inference.draw import class_colours, save_image

LEGEND_LINE = 24
FONT = cv2.FONT_HERSHEY_SIMPLEX


def augmentation_summary(augment: AugmentConfig) -> str:
    """The settings in one line, as the flags name them."""
    values = asdict(augment)
    return (f"mosaic {values['mosaic']:g}, mixup {values['mixup']:g}, zoom {values['scale_min']:g}-"
            f"{values['scale_max']:g}, aspect jitter {values['aspect_jitter']:g}, translate {values['translate']:g}, "
            f"degrees {values['degrees']:g}, shear {values['shear']:g}, hsv {values['hsv_h']:g}/{values['hsv_s']:g}/"
            f"{values['hsv_v']:g}, flip {values['flip_probability']:g}")


def sample_sheet(images: np.ndarray, boxes: np.ndarray, class_names: list[str], augment: AugmentConfig,
                 columns: int = 4) -> np.ndarray:
    """Tiles of `images` (B, H, W, 3) RGB 0–255 with their padded boxes (B, N, 5), then the legend: one line of
    class colours, one of the augmentation settings. BGR uint8."""
    colours = class_colours(len(class_names))
    thickness = max(1, round(images.shape[1] / 200))
    tiles = []
    for image, rows in zip(images, boxes, strict=True):
        tile = cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
        for x1, y1, x2, y2, class_id in rows[rows[:, 4] >= 0]:
            cv2.rectangle(tile, (round(x1), round(y1)), (round(x2), round(y2)), colours[int(class_id)], thickness)
        cv2.rectangle(tile, (0, 0), (tile.shape[1] - 1, tile.shape[0] - 1), (255, 255, 255), 1)  # tile edges
        tiles.append(tile)
    columns = min(columns, len(tiles))
    tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % columns)
    grid = np.vstack([np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)])
    return np.vstack([grid, legend(grid.shape[1], class_names, colours, augmentation_summary(augment))])


def legend(width: int, class_names: list[str], colours: list[tuple[int, int, int]], settings: str) -> np.ndarray:
    """Class swatches (wrapped to `width`), then the settings line."""
    lines, line, x = [], [], 6
    for name, colour in zip(class_names, colours, strict=True):
        step = 30 + cv2.getTextSize(name, FONT, 0.5, 1)[0][0] + 14
        if line and x + step > width:
            lines.append(line)
            line, x = [], 6
        line.append((x, name, colour))
        x += step
    lines.append(line)
    strip = np.full((LEGEND_LINE * (len(lines) + 1) + 8, width, 3), 255, np.uint8)
    for row, entries in enumerate(lines):
        y = 6 + row * LEGEND_LINE
        for x, name, colour in entries:
            cv2.rectangle(strip, (x, y + 3), (x + 22, y + 17), colour, -1)
            cv2.putText(strip, name, (x + 28, y + 16), FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    scale = 0.5
    while scale > 0.3 and cv2.getTextSize(settings, FONT, scale, 1)[0][0] > width - 12:
        scale -= 0.05
    cv2.putText(strip, settings, (6, 6 + len(lines) * LEGEND_LINE + 14), FONT, scale, (60, 60, 60), 1, cv2.LINE_AA)
    return strip


def save_sample_sheet(images: np.ndarray, boxes: np.ndarray, class_names: list[str], augment: AugmentConfig,
                      path: str | Path) -> None:
    save_image(path, sample_sheet(images, boxes, class_names, augment))
