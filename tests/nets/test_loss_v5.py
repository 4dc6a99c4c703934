"""YOLOv5 assignment and loss: hand-worked matches, encode ↔ decode, CIoU values, and a one-batch overfit."""

import numpy as np
import pytest
import tensorflow as tf

from nets.loss_v5 import YoloV5Loss, assign_v5_targets
from utils.ops.boxes import xyxy_to_cxcywh
from utils.ops.coding import decode_xywh, encode_xywh

COCO_ANCHORS = np.array([[10, 13], [16, 30], [33, 23], [30, 61], [62, 45], [59, 119], [116, 90], [156, 198],
                         [373, 326]], "float32")  # model_data/yolo_anchors.txt, pixels of a 416 input
LEVEL0 = COCO_ANCHORS[:3]


def positions_of(boxes: np.ndarray, anchors: np.ndarray = LEVEL0, grid: int = 16) -> set[tuple[int, ...]]:
    positions, _ = assign_v5_targets(tf.constant(boxes, tf.float32), tf.constant(anchors), tf.constant([grid, grid]),
                                     stride=8)
    return {tuple(int(v) for v in row) for row in positions.numpy()}


def test_v5_matches_by_hand():
    boxes = np.full((2, 3, 5), -1.0, "float32")
    # Image 0: centre (19, 29) px = cell (2.375, 3.625): x fraction < 0.5 → also the cell to the left;
    # y fraction > 0.5 → also the cell below. 6×8 px: ratios to (33, 23) reach 5.5 > 4, so anchors 0 and 1 only.
    boxes[0, 0] = [16, 25, 22, 33, 0]
    # Image 1: centre (30, 21) = cell (3.75, 2.625) → right and below. 40×40 against anchor (10, 13) is exactly
    # 4.0 — not < 4 — so only anchors 1 and 2.
    boxes[1, 0] = [10, 1, 50, 41, 1]
    # Image 1: centre (3, 61) = cell (0.375, 7.625): x fraction < 0.5 but no cell left of 0; y → below.
    boxes[1, 1] = [0, 56, 6, 66, 0]
    expected = {(0, y, x, a) for a in (0, 1) for x, y in ((2, 3), (1, 3), (2, 4))}
    expected |= {(1, y, x, a) for a in (1, 2) for x, y in ((3, 2), (4, 2), (3, 3))}
    expected |= {(1, y, 0, a) for a in (0, 1) for y in (7, 8)}
    assert positions_of(boxes) == expected


def test_v5_neighbours_stop_at_the_far_edge_and_padding_matches_nothing():
    boxes = np.full((1, 2, 5), -1.0, "float32")
    boxes[0, 0] = [116, 116, 124, 124, 0]  # centre (120, 120) = cell (15.0, 15.0): fraction 0 → left and above
    assert positions_of(boxes, LEVEL0[:1]) == {(0, 15, 15, 0), (0, 15, 14, 0), (0, 14, 15, 0)}
    boxes[0, 0] = [117, 117, 127, 127, 0]  # centre 122 = cell 15.25 → fraction < .5 again; no cell 16 anyway
    assert positions_of(boxes, LEVEL0[:1]) == {(0, 15, 15, 0), (0, 15, 14, 0), (0, 14, 15, 0)}
    boxes[0, 0] = -1.0
    assert positions_of(boxes) == set()


@pytest.mark.parametrize("coding", ["v3", "v5"])
def test_decode_of_encode_returns_the_box(coding):
    rng = np.random.default_rng(0)
    cells = rng.integers(0, 10, (50, 2)).astype("float32")
    anchors = rng.uniform(5, 60, (50, 2)).astype("float32")
    # Centres within the coding's reach of the cell (v3: (0, 1), v5: (−0.5, 1.5)), sizes within v5's 4× bound.
    low, high = (0.05, 0.95) if coding == "v3" else (-0.4, 1.4)
    centre = (cells + rng.uniform(low, high, (50, 2))) * 16
    size = anchors * rng.uniform(0.3, 3.5, (50, 2))
    xywh = np.concatenate([centre, size], -1).astype("float32")
    raw = encode_xywh(xywh, cells, anchors, 16, coding)
    np.testing.assert_allclose(decode_xywh(raw, cells, anchors, 16, coding).numpy(), xywh, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="unknown box coding 'v4'"):
        decode_xywh(raw, cells, anchors, 16, "v4")


def box_part_for_prediction(target: list[float], predicted: list[float]) -> float:
    """The v5 box loss when every position matched to `target` predicts exactly `predicted`."""
    boxes = np.full((1, 1, 5), -1.0, "float32")
    boxes[0, 0] = [*target, 0]
    loss = YoloV5Loss(COCO_ANCHORS, level=0, num_classes=2, input_size=(128, 128))
    positions, _ = assign_v5_targets(tf.constant(boxes), tf.constant(LEVEL0), tf.constant([16, 16]), 8)
    raw = np.zeros((1, 16, 16, 3, 7), "float32")
    for _, y, x, a in positions.numpy():
        pred_xywh = xyxy_to_cxcywh(tf.constant(predicted, tf.float32))
        raw[0, y, x, a, :4] = encode_xywh(pred_xywh, tf.constant([x, y], tf.float32), LEVEL0[a], 8, "v5").numpy()
    assert len(positions) == 9  # 3 cells × all 3 anchors for a 16×16 box
    return float(loss.parts(tf.constant(boxes), tf.constant(raw))["box"])


def test_box_loss_is_one_minus_ciou():
    target = [16, 16, 32, 32]
    assert box_part_for_prediction(target, target) == pytest.approx(0.0, abs=1e-5)
    # Prediction shifted 2 px right: IoU 224/288, centre distance² 4, enclosing diagonal² 18² + 16² = 580, same
    # aspect (v = 0) → CIoU = 7/9 − 4/580 = 0.7708812; the box part is the gain 0.05 × (1 − CIoU) × batch 1.
    assert box_part_for_prediction(target, [18, 16, 34, 32]) == pytest.approx(0.05 * (1 - 0.7708812), rel=1e-4)


def test_gains_scale_with_classes_and_input_size_and_config_round_trips():
    loss = YoloV5Loss(COCO_ANCHORS, level=2, num_classes=20, input_size=(320, 320), label_smoothing=0.1)
    assert loss.scaled_gains() == pytest.approx((0.05, 0.25, 0.125))  # obj × (320/640)², cls × 20/80
    restored = YoloV5Loss.from_config(loss.get_config())
    assert (restored.level, restored.label_smoothing, restored.anchors) == (2, 0.1, loss.anchors)


@pytest.mark.slow
def test_one_batch_overfit_with_yolov5_neck_and_v5_loss():
    import keras

    from nets.yolo import build_yolo
    from utils.evaluation.matching import iou_matrix
    from utils.ops.decoder import Decoder

    size = 128
    rng = np.random.default_rng(0)
    images = np.full((2, size, size, 3), 40.0, "float32")
    boxes = np.full((2, 4, 5), -1.0, "float32")
    truth = [np.array([[10, 14, 50, 70, 0], [70, 60, 118, 100, 1]], "float32"),
             np.array([[30, 30, 90, 80, 1]], "float32")]
    for i, rows in enumerate(truth):
        boxes[i, :len(rows)] = rows
        for x1, y1, x2, y2, c in rows.astype(int):
            images[i, y1:y2, x1:x2] = (230, 60, 60) if c == 0 else (60, 60, 230)
    images += rng.normal(0, 5, images.shape).astype("float32")
    anchors = COCO_ANCHORS * size / 416  # scaled to the 128 input
    keras.utils.set_random_seed(0)
    model = build_yolo("efficientnet-b0", "yolov5", 2, input_shape=(size, size, 3))
    model.compile(keras.optimizers.Adam(3e-3), loss=[YoloV5Loss(anchors, level, 2, (size, size)) for level in range(3)])
    history = model.fit(images, (boxes, boxes, boxes), epochs=250, batch_size=2, verbose=0).history["loss"]
    assert np.isfinite(history).all() and history[-1] < 0.1 * history[0]

    decoder = Decoder(anchors, (size, size), "v5", score_threshold=0.3)
    result = decoder.detections(model(images, training=False), tf.constant([[size, size]] * 2))
    for i, rows in enumerate(truth):
        count = int(result["count"][i])
        found, classes = result["boxes"][i, :count].numpy(), result["classes"][i, :count].numpy()
        for row in rows:
            same_class = found[classes == int(row[4])]
            assert len(same_class) and iou_matrix(row[None, :4], same_class).max() > 0.7
