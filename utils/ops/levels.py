"""The output levels, declared once: name, stride and objectness balance of each, and anchors per level.

The head, the losses, box decoding, the heatmap and the data pipeline all read this table (at call time, so a
change here is seen everywhere). Anchors are stored level-major: level i owns rows
[i · ANCHORS_PER_LEVEL, (i + 1) · ANCHORS_PER_LEVEL) of the anchor table, small to large.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Level:
    name: str  # the model output's name
    stride: int  # input pixels per cell
    objectness_balance: float  # weight of its objectness loss: small objects' many cells get more say (YOLOv5)


LEVELS = (Level("p3", 8, 4.0), Level("p4", 16, 1.0), Level("p5", 32, 0.4))
ANCHORS_PER_LEVEL = 3


def level_count() -> int:
    return len(LEVELS)


def strides() -> tuple[int, ...]:
    return tuple(level.stride for level in LEVELS)


def level_names() -> tuple[str, ...]:
    return tuple(level.name for level in LEVELS)


def anchors_by_level(anchors: np.ndarray | list) -> np.ndarray:
    """(L·A, 2) anchor table → (L, A, 2); an error when it does not hold `ANCHORS_PER_LEVEL` per level."""
    table = np.asarray(anchors, np.float32).reshape(-1, 2)
    expected = level_count() * ANCHORS_PER_LEVEL
    if len(table) != expected:
        raise ValueError(f"expected {expected} anchors ({ANCHORS_PER_LEVEL} for each of {level_count()} levels), "
                         f"got {len(table)}")
    return table.reshape(level_count(), ANCHORS_PER_LEVEL, 2)
