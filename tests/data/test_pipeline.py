import logging

import cv2
import numpy as np
import pytest
import tensorflow as tf

from utils.data.annotations import Annotation
from utils.config.run_config import AugmentConfig
from utils.data.pipeline import build_dataset, letterbox_sample
from utils.evaluation.matching import iou_matrix


def rectangle_image(box=(40, 10, 120, 50), hw=(100, 200)) -> np.ndarray:
    image = np.zeros((*hw, 3), np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = 255
    return image


def bright_extent(image: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(image.mean(axis=-1) > 200)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)


def test_letterbox_moves_boxes_with_pixels():
    image = tf.constant(rectangle_image())
    boxes = tf.constant([[40.0, 10.0, 120.0, 50.0, 1.0]])
    out_image, out_boxes = letterbox_sample(image, boxes, (64, 64))
    # scale 0.32, y offset 16 → (12.8, 19.2, 38.4, 32.0)
    np.testing.assert_allclose(out_boxes.numpy(), [[12.8, 19.2, 38.4, 32.0, 1.0]], rtol=1e-5)
    assert iou_matrix(bright_extent(out_image.numpy())[None], out_boxes.numpy()[:, :4])[0, 0] > 0.85


@pytest.mark.parametrize("mosaic_probability", [0.0, 1.0])
def test_training_samples_keep_boxes_on_the_rectangles(tmp_path, mosaic_probability):
    """Whole training transform (fit, mosaic, affine, flip) on white rectangles: every box lies on white.
    (Mixup's geometry is checked in test_augment: blended with grey fill, white is no longer separable here.)"""
    annotations = write_rectangles(tmp_path, 6)
    config = AugmentConfig(mosaic=mosaic_probability, hsv_h=0, hsv_s=0, hsv_v=0, min_box_visible=0.5,
                           min_box_size=4)
    images, boxes = next(iter(build_dataset(annotations, (96, 96), 6, training=True, augment=config, seed=4)))
    checked = 0
    for image, rows in zip(images.numpy(), boxes.numpy(), strict=True):
        bright = image.mean(axis=-1) > 200
        for x1, y1, x2, y2, _ in rows[rows[:, 4] >= 0]:
            inner = bright[int(np.ceil(y1)) + 1:int(y2) - 1, int(np.ceil(x1)) + 1:int(x2) - 1]
            assert inner.size and inner.mean() > 0.9
            checked += 1
    assert checked >= 6


def test_close_mosaic_switch_turns_mosaic_off(tmp_path):
    """One rectangle per image: a mosaic sample usually shows several boxes, a single image never more than one."""
    import tensorflow as tf

    annotations = write_rectangles(tmp_path, 8)
    switch = tf.Variable(1.0, trainable=False)
    config = AugmentConfig(mosaic=1.0, scale_min=0.5, scale_max=0.5, translate=0)
    dataset = build_dataset(annotations, (64, 64), 8, training=True, augment=config, seed=0, mosaic_enabled=switch)
    with_mosaic = np.sum(next(iter(dataset))[1].numpy()[..., 4] >= 0, axis=1)
    switch.assign(0.0)
    without = np.sum(next(iter(dataset))[1].numpy()[..., 4] >= 0, axis=1)
    assert with_mosaic.max() >= 3 and without.max() == 1


def test_ram_cache_gives_the_same_batches_as_files(tmp_path):
    annotations = write_rectangles(tmp_path, 6)
    config = AugmentConfig(mixup=0.5)
    from_files = next(iter(build_dataset(annotations, (64, 64), 6, training=True, augment=config, seed=2)))
    cached = next(iter(build_dataset(annotations, (64, 64), 6, training=True, augment=config, seed=2,
                                     cache="ram")))
    np.testing.assert_array_equal(from_files[0].numpy(), cached[0].numpy())
    np.testing.assert_array_equal(from_files[1].numpy(), cached[1].numpy())


def write_rectangles(tmp_path, count: int) -> list[Annotation]:
    annotations = []
    for index in range(count):
        path = tmp_path / f"img{index}.png"
        box = (10 + index, 10, 60 + index, 40)
        cv2.imwrite(str(path), rectangle_image(box, (80, 100)))
        annotations.append(Annotation(str(path), np.array([[*box, index % 2]], np.float32)))
    return annotations


def test_batches_are_padded_and_seeded(tmp_path):
    annotations = write_rectangles(tmp_path, 6)
    first = next(iter(build_dataset(annotations, (64, 64), 4, training=True, seed=1, max_boxes=5)))
    again = next(iter(build_dataset(annotations, (64, 64), 4, training=True, seed=1, max_boxes=5)))
    other = next(iter(build_dataset(annotations, (64, 64), 4, training=True, seed=2, max_boxes=5)))
    images, boxes = first
    assert images.shape == (4, 64, 64, 3) and images.dtype == tf.float32
    assert boxes.shape == (4, 5, 5)
    valid = boxes.numpy()[..., 4] >= 0
    assert valid.any(axis=1).all() and np.all(boxes.numpy()[~valid] == -1)  # padding rows are −1
    np.testing.assert_array_equal(first[0].numpy(), again[0].numpy())
    assert not np.array_equal(first[0].numpy(), other[0].numpy())


def test_bad_samples_are_skipped(tmp_path, caplog):
    annotations = write_rectangles(tmp_path, 4)
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    annotations.append(Annotation(str(tmp_path / "corrupt.jpg"), np.zeros((0, 5), np.float32)))
    annotations.append(Annotation(str(tmp_path / "missing.jpg"), np.zeros((0, 5), np.float32)))
    with caplog.at_level(logging.WARNING):
        dataset = build_dataset(annotations, (64, 64), 1, training=False)
    assert f"skipping {tmp_path / 'missing.jpg'}: image file not found" in caplog.text
    assert sum(1 for _ in dataset) == 4


def test_boxes_beyond_max_boxes_after_mixup_are_counted(tmp_path):
    """Mixup keeps both samples' boxes: two images of 30 boxes make 60, and with --max-boxes 40 the 20 beyond it
    are cut from every sample — and counted for the trainer to report, never dropped silently."""
    annotations = []
    grid = [(2 + 10 * i, 2 + 10 * j) for i in range(6) for j in range(5)]
    for index in range(2):
        path = tmp_path / f"many{index}.png"
        cv2.imwrite(str(path), np.full((64, 64, 3), 90, np.uint8))
        annotations.append(Annotation(str(path), np.array([[x, y, x + 6, y + 6, 0] for x, y in grid], np.float32)))
    config = AugmentConfig(mosaic=0, mixup=1, scale_min=1, scale_max=1, aspect_jitter=0, translate=0,
                           flip_probability=0, hsv_h=0, hsv_s=0, hsv_v=0)
    dropped = tf.Variable(0, dtype=tf.int64)
    dataset = build_dataset(annotations, (64, 64), 2, training=True, augment=config, max_boxes=40,
                            dropped_boxes=dropped)
    _, boxes = next(iter(dataset))
    assert (boxes.numpy()[..., 4] >= 0).sum(axis=1).tolist() == [40, 40]
    counted = int(dropped.numpy())  # samples prefetched beyond this batch are counted too: 20 each
    assert counted >= 40 and counted % 20 == 0
