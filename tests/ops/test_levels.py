"""The level table is the one place strides, output names, objectness balance and anchors per level live: a change
there reaches the head, both losses, decoding, the heatmap and the input-size check. There are three levels, fixed:
every backbone and neck is built for them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nets.head import yolo_head
from nets.loss import YoloV3Loss
from nets.loss_v5 import YoloV5Loss
from utils.config.run_config import ModelSpec
from utils.inference.heatmap import BAR_WIDTH, MIN_PANEL_WIDTH, TITLE_HEIGHT, heatmap_panels
from utils.ops import levels
from utils.ops.decoder import Decoder

ANCHORS = np.linspace(4, 60, 18).reshape(9, 2)
CHANGED = (levels.Level("p3", 8, 4.0), levels.Level("p4", 16, 2.0), levels.Level("q5", 64, 0.4))


def objectness_parts(raw: tf.Tensor, level: int) -> tuple[float, float]:
    boxes = tf.constant([[[2.0, 2.0, 30.0, 30.0, 0.0]]])
    v3 = YoloV3Loss(ANCHORS, level, 1, (64, 64)).parts(boxes, raw)["objectness"]
    v5 = YoloV5Loss(ANCHORS, level, 1, (64, 64)).parts(boxes, raw)["objectness"]
    return float(v3), float(v5)


def test_a_changed_table_entry_is_seen_everywhere(monkeypatch):
    raw = tf.zeros((1, 4, 4, 3, 6))
    before = objectness_parts(raw, level=1)
    decoded_before = Decoder(ANCHORS, (64, 64)).decode([tf.zeros((1, 8, 8, 3, 6)), raw, tf.zeros((1, 1, 1, 3, 6))])
    monkeypatch.setattr(levels, "LEVELS", CHANGED)

    after = objectness_parts(raw, level=1)  # the balance of p4 doubled: both losses' objectness parts double
    np.testing.assert_allclose(after, [2 * v for v in before], rtol=1e-6)
    assert YoloV3Loss(ANCHORS, 2, 1, (64, 64)).stride == 64
    boxes, _ = Decoder(ANCHORS, (64, 64)).decode([tf.zeros((1, 8, 8, 3, 6)), raw, tf.zeros((1, 1, 1, 3, 6))])
    # p5's one cell: σ(0) = 0.5 of a 64-pixel stride puts the centre at 32 (16 at stride 32); the others unchanged.
    centre = (boxes[0, -1, :2] + boxes[0, -1, 2:]) / 2
    np.testing.assert_allclose(centre.numpy(), [32.0, 32.0], atol=1e-4)
    np.testing.assert_allclose(boxes[0, :-3].numpy(), decoded_before[0][0, :-3].numpy(), atol=1e-5)

    features = [keras.Input((8, 8, 4)), keras.Input((4, 4, 4)), keras.Input((1, 1, 4))]
    head = keras.Model(features, yolo_head(features, num_classes=1, hidden_conv=False))
    assert head.output_names == ["p3", "p4", "q5"] and head.get_layer("head_q5_pred").filters == 3 * 6

    panels = heatmap_panels(np.zeros((20, 20, 3), np.uint8), [np.zeros((20, 20), np.float32)] * 3)
    assert panels.shape == (TITLE_HEIGHT + MIN_PANEL_WIDTH, 4 * MIN_PANEL_WIDTH + BAR_WIDTH, 3)  # a 20² image, scaled


def test_three_levels_are_fixed_and_the_input_size_follows_the_coarsest_stride(monkeypatch):
    from nets.yolo import build_yolo

    model = build_yolo("shufflenetv2-x0.5", "yolov5", 1, input_shape=(64, 64, 3))
    assert model.output_names == list(levels.level_names()) == ["p3", "p4", "p5"]
    assert [64 // output.shape[1] for output in model.outputs] == list(levels.strides()) == [8, 16, 32]
    with pytest.raises(ValueError, match="expected 9 anchors \\(3 for each of 3 levels\\), got 12"):
        Decoder(np.ones((12, 2)), (64, 64))
    spec = {"class_names": ("a",), "anchors": ANCHORS}
    assert ModelSpec(**spec, input_size=96).input_size == 96
    monkeypatch.setattr(levels, "LEVELS", CHANGED)  # p5 at stride 64: inputs must be multiples of 64
    with pytest.raises(ValueError, match="input_size: must be a multiple of 64, got 96"):
        ModelSpec(**spec, input_size=96)
