"""Each augmentation moves the boxes with the pixels: a filled rectangle's box still covers the rectangle."""

import numpy as np
import pytest
import tensorflow as tf

from utils.data.augment import (
    AugmentConfig,
    affine_matrix,
    horizontal_flip,
    hsv_jitter,
    mixup,
    mosaic,
    warp_boxes,
    warp_image,
)
from utils.evaluation.matching import iou_matrix

STILL = dict(hsv_h=0.0, hsv_s=0.0, hsv_v=0.0)  # geometric tests: keep colours exact


def rectangle_image(box, hw=(100, 200), channel=None) -> np.ndarray:
    """Black image with a filled rectangle: white, or full intensity in one channel only."""
    image = np.zeros((*hw, 3), np.float32)
    x1, y1, x2, y2 = box
    if channel is None:
        image[y1:y2, x1:x2] = 255
    else:
        image[y1:y2, x1:x2, channel] = 255
    return image


def extent(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)


def bright_extent(image: np.ndarray, channel=None) -> np.ndarray:
    return extent(image.mean(axis=-1) > 200 if channel is None else
                  (image[..., channel] > 200) & (np.delete(image, channel, axis=-1).max(axis=-1) < 60))


def iou(a, b) -> float:
    return float(iou_matrix(np.asarray(a, float)[None, :4], np.asarray(b, float)[None, :4])[0, 0])


@pytest.mark.parametrize("degrees, shear", [(0, 0), (10, 0), (0, 5), (8, 4)])
@pytest.mark.parametrize("seed", range(4))
def test_affine_keeps_boxes_on_the_object(degrees, shear, seed):
    box = (60, 20, 140, 70)
    image = tf.constant(rectangle_image(box))
    config = AugmentConfig(scale_min=0.6, scale_max=1.2, translate=0.1, degrees=degrees, shear=shear, **STILL)
    matrix = affine_matrix(tf.constant([seed, 1]), config, tf.constant([100, 200]), (160, 160))
    out = warp_image(image, matrix, (160, 160), axis_aligned=degrees == 0 and shear == 0).numpy()
    boxes = warp_boxes(tf.constant([[*box, 1.0]]), matrix, (160, 160), 2.0, 0.2).numpy()
    assert boxes.shape == (1, 5) and boxes[0, 4] == 1
    assert iou(bright_extent(out), boxes[0]) > 0.9


def test_axis_aligned_fast_path_is_the_same_mapping():
    image = tf.random.stateless_uniform((90, 120, 3), [1, 2], 0, 255)
    config = AugmentConfig(scale_min=0.5, scale_max=1.5, translate=0.2)
    for seed in range(5):
        matrix = affine_matrix(tf.constant([seed, 9]), config, tf.constant([90, 120]), (96, 96))
        fast = warp_image(image, matrix, (96, 96), axis_aligned=True).numpy()
        general = warp_image(image, matrix, (96, 96)).numpy()
        inside = np.abs(fast - general) < 0.05  # differs only in the half pixel at the image border
        assert inside.mean() > 0.95


def test_boxes_mostly_outside_or_tiny_are_dropped():
    identity = tf.eye(3)
    boxes = tf.constant([[10.0, 10, 50, 50, 0], [90, 10, 130, 50, 1], [60, 60, 61.5, 90, 2]])
    # Box 2 keeps 10 of 40 px width (25% ≥ 20%); box 3 is 1.5 px wide.
    kept = warp_boxes(boxes, identity, (100, 100), min_size=2.0, min_visible=0.2).numpy()
    np.testing.assert_allclose(kept, [[10, 10, 50, 50, 0], [90, 10, 100, 50, 1]])
    assert len(warp_boxes(boxes, identity, (100, 100), 2.0, min_visible=0.3).numpy()) == 1


def test_mosaic_keeps_every_box_on_its_image_and_inside_the_canvas():
    boxes_in = [(5, 5, 40, 30), (50, 10, 90, 60), (10, 40, 60, 90), (30, 20, 70, 70)]
    images, sizes, boxes = [], [], []
    for k, box in enumerate(boxes_in):
        image = rectangle_image(box, (96, 96), channel=k % 3)
        images.append(image)
        sizes.append([96, 96])
        boxes.append(np.vstack([[*box, k], -np.ones((2, 5))]).astype(np.float32))  # padding rows −1
    for seed in range(5):
        canvas, placed = mosaic(tf.constant(np.stack(images)), tf.constant(sizes), tf.constant(np.stack(boxes)),
                                tf.constant([seed, 3]))
        canvas, placed = canvas.numpy(), placed.numpy()
        assert canvas.shape == (192, 192, 3)
        np.testing.assert_array_equal(placed[:, 4], [0, 1, 2, 3])  # the union of the four images' boxes
        # Clipped to the canvas (as YOLOv5's load_mosaic): no part of a label lies beyond it on the grey fill.
        assert placed[:, :4].min() >= 0 and placed[:, :4].max() <= 192
        visible = 0
        for k in range(4):
            clipped = np.clip(placed[k, :4], 0, 192)
            assert np.all(clipped[2:] >= clipped[:2])
            if k == 3 or min(clipped[2:] - clipped[:2]) < 3:
                continue  # channel 0 again (image 3 shares image 0's colour) or cut off at the canvas edge
            mask = (canvas[..., k % 3] > 200) & (np.delete(canvas, k % 3, axis=-1).max(axis=-1) < 60)
            region = np.zeros_like(mask)
            x1, y1, x2, y2 = np.round(clipped).astype(int)
            region[y1:y2, x1:x2] = True
            assert mask[region].mean() > 0.95  # the box lies on its own rectangle
            visible += 1
        assert visible >= 2


def test_mixup_keeps_both_images_boxes():
    first = rectangle_image((10, 10, 50, 40), (64, 64), channel=0)
    second = rectangle_image((30, 20, 60, 60), (64, 64), channel=1)
    blended, boxes = mixup(tf.constant(first), tf.constant([[10.0, 10, 50, 40, 0]]), tf.constant(second),
                           tf.constant([[30.0, 20, 60, 60, 1]]), tf.constant([4, 2]))
    blended = blended.numpy()
    np.testing.assert_array_equal(boxes.numpy()[:, 4], [0, 1])
    ratio = blended[15, 15, 0] / 255  # inside the first rectangle only
    assert 0.3 < ratio < 0.7
    assert iou(extent(blended[..., 0] > 255 * ratio - 1), boxes.numpy()[0]) > 0.9
    assert iou(extent(blended[..., 1] > 255 * (1 - ratio) - 1), boxes.numpy()[1]) > 0.9


def test_flip_moves_boxes_and_twice_is_identity():
    image = tf.constant(rectangle_image((20, 10, 70, 40), (50, 100)))
    boxes = tf.constant([[20.0, 10, 70, 40, 1]])
    flipped, flipped_boxes = horizontal_flip(image, boxes)
    np.testing.assert_allclose(flipped_boxes.numpy(), [[30, 10, 80, 40, 1]])
    assert iou(bright_extent(flipped.numpy()), flipped_boxes.numpy()[0]) == 1.0
    back, back_boxes = horizontal_flip(flipped, flipped_boxes)
    np.testing.assert_array_equal(back.numpy(), image.numpy())
    np.testing.assert_array_equal(back_boxes.numpy(), boxes.numpy())


def test_hsv_changes_colours_not_geometry():
    image = tf.constant(rectangle_image((20, 10, 70, 40), (50, 100), channel=2) * 0.8 + 20)
    changed = hsv_jitter(image, tf.constant([5, 5]), 0.1, 0.7, 0.4).numpy()
    assert not np.allclose(changed, image.numpy())
    inside = changed[10:40, 20:70].reshape(-1, 3)
    outside = changed[:, :20].reshape(-1, 3)
    assert np.ptp(inside, axis=0).max() < 1e-3 and np.ptp(outside, axis=0).max() < 1e-3  # flat regions stay flat
    assert np.abs(inside.mean(axis=0) - outside.mean(axis=0)).max() > 50  # and the rectangle still stands out
    assert changed.min() >= 0 and changed.max() <= 255 + 1e-3
    np.testing.assert_array_equal(hsv_jitter(image, tf.constant([5, 5]), 0, 0, 0).numpy(), image.numpy())


def test_config_rejects_impossible_values():
    with pytest.raises(ValueError, match="mosaic: must be at most 1, got 1.5"):
        AugmentConfig(mosaic=1.5)
    with pytest.raises(ValueError, match="zoom range"):
        AugmentConfig(scale_min=1.2, scale_max=1.0)
