"""The output levels, declared once: name, stride and objectness balance of each, and anchors per level.

There are three levels, fixed: every backbone returns its stride-8/16/32 maps and every neck is built for exactly
those three. This table says what the levels are; the head, the losses, box decoding, the heatmap and the input
size check read it (at call time) instead of spelling a name, a stride or a balance. Anchors are stored
level-major: level i owns rows [i · ANCHORS_PER_LEVEL, (i + 1) · ANCHORS_PER_LEVEL) of the anchor table, small to
large.
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


def strides() -> tuple[int, ...]:
    return tuple(level.stride for level in LEVELS)


def level_names() -> tuple[str, ...]:
    return tuple(level.name for level in LEVELS)


def max_stride() -> int:
    """The coarsest level's stride: input sizes are multiples of it."""
    return max(strides())


def anchors_by_level(anchors: np.ndarray | list) -> np.ndarray:
    """(L·A, 2) anchor table → (L, A, 2); an error when it does not hold `ANCHORS_PER_LEVEL` per level."""
    table = np.asarray(anchors, np.float32).reshape(-1, 2)
    expected = len(LEVELS) * ANCHORS_PER_LEVEL
    if len(table) != expected:
        raise ValueError(f"expected {expected} anchors ({ANCHORS_PER_LEVEL} for each of {len(LEVELS)} levels), "
                         f"got {len(table)}")
    return table.reshape(len(LEVELS), ANCHORS_PER_LEVEL, 2)
