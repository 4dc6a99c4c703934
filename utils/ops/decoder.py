"""The one decoder: raw head outputs → detections in the original images' pixels, from the head's box geometry
(anchors, box coding, input size) and one `DetectConfig` (score and NMS thresholds, detection cap, letterbox,
class filter).

`YoloDetector` builds it (`decoder_for`); `predict.py`, `get_map.py`, the exports, the training mAP callback and the
latency table all decode through it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from utils.config.detect_config import DetectConfig
from utils.ops import levels
from utils.ops.coding import ANCHOR_FREE_CODINGS, BOX_CODINGS, DEFAULT_REG_MAX, decode_dfl_outputs, decode_outputs
from utils.ops.letterbox import boxes_from_letterbox, letterbox_image, letterbox_params
from utils.ops.nms import class_aware_nms


@dataclass(frozen=True)
class Decoder:
    """The head's box geometry (anchors, input size, box coding) with one `DetectConfig` and its class filter as
    class indices (`class_ids`; None: every class). Built by `YoloDetector.decoder_for`."""

    anchors: tuple[tuple[float, float], ...]  # (L·A) w, h in input pixels, level-major, small to large; () for dfl
    input_hw: tuple[int, int]
    box_coding: str = "v5"  # the head's box parameterisation: v3 | v5 (anchor head), dfl (anchor-free head)
    settings: DetectConfig = DetectConfig()
    class_ids: tuple[int, ...] | None = None
    reg_max: int = DEFAULT_REG_MAX  # dfl: distance bins per box side

    def __post_init__(self) -> None:
        object.__setattr__(self, "anchors", tuple((float(w), float(h)) for w, h in np.reshape(self.anchors, (-1, 2))))
        object.__setattr__(self, "input_hw", tuple(int(v) for v in self.input_hw))
        if self.box_coding not in (*BOX_CODINGS, *ANCHOR_FREE_CODINGS):
            raise ValueError(f"unknown box coding {self.box_coding!r}; expected one of "
                             f"{(*BOX_CODINGS, *ANCHOR_FREE_CODINGS)}")
        if self.anchor_free:
            if self.anchors:
                raise ValueError(f"box coding {self.box_coding} is anchor-free; got {len(self.anchors)} anchors")
        else:
            levels.anchors_by_level(self.anchors)  # the right count for the level table
        if self.class_ids is not None:
            object.__setattr__(self, "class_ids", tuple(int(i) for i in self.class_ids))

    @property
    def anchor_free(self) -> bool:
        return self.box_coding in ANCHOR_FREE_CODINGS

    def geometry(self) -> dict:
        """What the head's outputs mean (saved with a detector): anchors, input size, box coding, DFL bins."""
        return {"anchors": [list(pair) for pair in self.anchors], "input_hw": list(self.input_hw),
                "box_coding": self.box_coding, "reg_max": self.reg_max}

    def class_count(self, output_shape: tuple) -> int:
        """Classes of a head whose level outputs have `output_shape`."""
        return int(output_shape[-1]) - (4 * self.reg_max if self.anchor_free else 5)

    def level_scores(self, raw: tf.Tensor) -> tf.Tensor:
        """One level's output (B, H, W, …) → (B, H, W) the cell's best score: the highest objectness over its
        anchors (anchor head) or the highest class probability (anchor-free head)."""
        raw = tf.cast(raw, tf.float32)
        if self.anchor_free:
            return tf.reduce_max(tf.sigmoid(raw[..., 4 * self.reg_max:]), axis=-1)
        return tf.reduce_max(tf.sigmoid(raw[..., 4]), axis=-1)

    def decode(self, outputs: list[tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """Raw outputs of a batch → boxes (B, N, 4) in input pixels and class scores (B, N, C)."""
        if self.anchor_free:
            return decode_dfl_outputs(outputs, self.reg_max)
        return decode_outputs(outputs, tf.constant(self.anchors, tf.float32), box_coding=self.box_coding)

    def select(self, boxes: tf.Tensor, scores: tf.Tensor, image_hw: tf.Tensor) -> dict[str, tf.Tensor]:
        """Decoded boxes and scores → class filter, score filter, class-aware NMS, back to original-image pixels
        (`image_hw` (B, 2)), clipped. Returns boxes (B, K, 4) x1, y1, x2, y2, scores (B, K), classes (B, K) int32 and
        count (B,), K = `settings.max_detections`, rows past `count` zero."""
        settings = self.settings
        k = settings.max_detections
        if self.class_ids is not None:  # the other classes' scores are zeroed: never candidates
            kept = tf.scatter_nd(tf.constant(self.class_ids, tf.int32)[:, None], tf.ones(len(self.class_ids)),
                                 tf.shape(scores)[-1:])
            scores = scores * kept
        nms_boxes, nms_scores, nms_classes, count = class_aware_nms(boxes, scores, k, settings.nms_iou,
                                                                   settings.score_threshold, self.input_hw)
        scale, offset = letterbox_params(image_hw, self.input_hw, settings.letterbox)
        boxes = boxes_from_letterbox(nms_boxes, scale[:, None, :], offset[:, None, :])
        hw = tf.cast(image_hw, tf.float32)
        limits = tf.stack([hw[:, 1], hw[:, 0], hw[:, 1], hw[:, 0]], axis=-1)[:, None, :]
        boxes = tf.clip_by_value(boxes, 0.0, limits)
        valid = tf.range(k)[None, :] < count[:, None]
        return {"boxes": tf.where(valid[..., None], boxes, 0.0), "scores": nms_scores, "classes": nms_classes,
                "count": count}

    def detections(self, outputs: list[tf.Tensor], image_hw: tf.Tensor) -> dict[str, tf.Tensor]:
        """`decode` then `select`."""
        return self.select(*self.decode(outputs), image_hw)

    def prepare(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """uint8 images (B, H, W, 3) of one size → model input (B, h, w, 3) float32 0–255 and their (B, 2) sizes."""
        image_hw = tf.tile(tf.shape(images)[1:3][None], [tf.shape(images)[0], 1])
        return letterbox_image(images, self.input_hw, letterbox=self.settings.letterbox), image_hw
