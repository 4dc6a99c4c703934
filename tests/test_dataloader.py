import logging

import cv2
import numpy as np
import pytest
import tensorflow as tf

from utils.annotations import Annotation
from utils.dataloader import AugmentConfig, build_dataset, jitter_sample, letterbox_sample
from utils.map import iou_matrix


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


@pytest.mark.parametrize("seed", range(6))
def test_jitter_keeps_boxes_on_the_object(seed):
    image = tf.constant(rectangle_image())
    boxes = tf.constant([[40.0, 10.0, 120.0, 50.0, 0.0]])
    config = AugmentConfig(scale_min=0.5, scale_max=1.0, aspect_jitter=0.3, flip_probability=0.5)
    out_image, out_boxes = jitter_sample(image, boxes, (128, 128), config, tf.constant([seed, 7]))
    extent = bright_extent(out_image.numpy())
    assert iou_matrix(extent[None], out_boxes.numpy()[:, :4])[0, 0] > 0.9


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
    assert np.all(boxes.numpy()[:, 1:] == -1)  # one box per image, the rest padding
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
