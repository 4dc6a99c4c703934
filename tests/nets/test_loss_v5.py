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


@pytest.mark.heavy
@pytest.mark.slow
def test_a_detector_built_in_python_trains_with_plain_compile_and_fit():
    """The detector owns its loss: `compile(optimizer)` + `fit(images, padded boxes)` overfit one batch with the
    v5 assignment, and `detect` finds every box again."""
    import keras

    from nets.detector import YoloDetector
    from nets.yolo import build_yolo
    from utils.config.detect_config import DetectConfig
    from utils.evaluation.matching import iou_matrix

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
    keras.utils.set_random_seed(0)
    network = build_yolo("shufflenetv2-x0.5", "yolov5", 2, input_shape=(size, size, 3))
    detector = YoloDetector.from_network(network, ["red", "blue"], COCO_ANCHORS * size / 416, "v5",
                                         DetectConfig(score_threshold=0.3))
    detector.compile(keras.optimizers.Adam(3e-3))
    before = detector.evaluate(images, boxes, batch_size=2, verbose=0, return_dict=True)
    # 300 steps as one epoch of the batch repeated (an epoch per step would mostly time Keras' epoch overhead).
    batches = tf.data.Dataset.from_tensors((images, boxes)).repeat(300)
    history = detector.fit(batches, epochs=1, shuffle=False, verbose=0).history
    after = detector.evaluate(images, boxes, batch_size=2, verbose=0, return_dict=True)
    assert np.isfinite(history["loss"]).all() and after["loss"] < 0.1 * before["loss"]
    parts = sum(after[f"{part}_loss"] for part in ("box", "objectness", "class"))
    assert parts == pytest.approx(after["loss"], rel=1e-4)  # the logged parts add up to the loss

    found = detector.detect(np.clip(images, 0, 255).astype(np.uint8))
    for rows, detections in zip(truth, found, strict=True):
        for row in rows:
            same_class = detections.boxes[detections.classes == int(row[4])]
            assert len(same_class) and iou_matrix(row[None, :4], same_class).max() > 0.7


def test_an_sgd_step_at_any_batch_is_yolov5s_step_per_image():
    """YOLOv5 multiplies its loss by the batch size, accumulates gradients over 64 / B batches and steps at an
    unscaled rate η with decay wd (its decay is scaled by B · accumulate / 64 = 1): one step is −η (64 ∇ℓ + wd w) for
    64 images, ℓ the per-batch mean loss. Here the rate is scaled by B / 64 and there is no accumulation, so the
    loss is scaled to the nominal 64: one step is −η (B / 64) (64 ∇ℓ + wd w) for B images — YOLOv5's per image,
    decay included. (Scaling the loss by B as well gave −η (B / 64) (B ∇ℓ + wd w): a quarter of YOLOv5's step at
    B = 16, and decay 64 / B times too strong against the loss.)"""
    from nets.detector import detector_loss
    from tests.conftest import tiny_detector
    from utils.config.run_config import LossConfig, ModelSpec, TrainConfig
    from utils.training.trainer import compile_detector, make_schedule, optimizer_with

    batch, eta, wd = 8, 0.5, 5e-4  # a large η, so the step is far above float32 rounding of the weights
    detector = tiny_detector(num_classes=2, size=64, box_coding="v5")
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch, 64, 64, 3)).astype("float32")
    boxes = np.full((batch, 3, 5), -1.0, "float32")
    boxes[:, 0] = [4, 6, 40, 30, 1]
    boxes[:, 1] = [20, 20, 60, 62, 0]
    per_batch = detector_loss(detector.decoder, 2, LossConfig(), nominal_batch_size=1)  # ℓ: the loss × 1
    with tf.GradientTape() as tape:
        mean_loss = tf.add_n(list(per_batch.parts(tf.constant(boxes), detector(images, training=True)).values()))
    gradients = tape.gradient(mean_loss, detector.trainable_variables)
    before = [v.numpy().copy() for v in detector.trainable_variables]

    spec = ModelSpec(class_names=("a", "b"), anchors=detector.decoder.anchors, input_size=64, assigner="v5")
    config = TrainConfig(train="-", val="-", run_dir="-", model=spec, optimizer="sgd", learning_rate=eta,
                         momentum=0.0, weight_decay=wd, batch_size=batch, warmup_epochs=0, lr_limits=(1e-6, 1.0))
    compile_detector(detector, config, optimizer_with(config, make_schedule(config, 100, 0)))
    detector.train_on_batch(images, boxes)
    for variable, old, gradient in zip(detector.trainable_variables, before, gradients, strict=True):
        decay = wd * old if "kernel" in variable.path else 0.0  # biases are not decayed
        yolov5_step = -eta * (64 * gradient.numpy() + decay)  # per 64 images
        np.testing.assert_allclose(variable.numpy() - old, batch / 64 * yolov5_step, rtol=2e-3, atol=1e-8)
