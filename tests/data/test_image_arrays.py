"""Image arrays given to a detector in Python: taken where their meaning is unambiguous, refused with one sentence
otherwise (never silently cast: a float image in [0, 1] used to become all black, a uint16 one to wrap mod 256)."""

import numpy as np
import pytest

from utils.data.image_arrays import ImageArrayError, rgb_image, rgb_images, same_size_batches

RGB = np.array([[[0, 128, 255], [10, 20, 30]]], np.uint8)  # (1, 2, 3)


def test_uint8_rgb_is_taken_as_it_is_and_other_layouts_are_converted():
    np.testing.assert_array_equal(rgb_image(RGB), RGB)
    gray = np.array([[0, 200]], np.uint8)
    np.testing.assert_array_equal(rgb_image(gray), [[[0, 0, 0], [200, 200, 200]]])
    np.testing.assert_array_equal(rgb_image(gray[..., None]), rgb_image(gray))
    rgba = np.concatenate([RGB, np.full((1, 2, 1), 7, np.uint8)], axis=-1)
    np.testing.assert_array_equal(rgb_image(rgba), RGB)


def test_float_and_wide_integer_images_are_read_on_their_unambiguous_scale():
    np.testing.assert_array_equal(rgb_image(RGB / 255.0), RGB)  # [0, 1] floats: fractions of full scale
    np.testing.assert_array_equal(rgb_image(RGB.astype(np.float32)), RGB)  # [0, 255] floats with values above 1
    np.testing.assert_array_equal(rgb_image(RGB.astype(np.int64)), RGB)  # wide integers within 0–255
    sixteen_bit = RGB.astype(np.uint16) * 257  # 0 → 0, 128 → 32896, 255 → 65535
    np.testing.assert_array_equal(rgb_image(sixteen_bit), RGB)


@pytest.mark.parametrize("image, message", [
    (np.full((4, 4, 3), -0.5, np.float32), r"dtype float32 with values in \[-0.5, -0.5\]; expected \[0, 1\] or "
                                           r"\[0, 255\]"),
    (np.full((4, 4, 3), 300.0), r"dtype float64 with values in \[300, 300\]"),
    (np.full((4, 4, 3), np.nan), "NaN or infinite"),
    (np.full((4, 4, 3), 1000, np.int32), "dtype int32 with values up to 1000; expected 0–255"),
    (np.full((4, 4, 3), -1, np.int16), "dtype int16 with negative values"),
    (np.ones((4, 4, 3), bool), "an array of dtype bool is not an image"),
    (np.zeros((3, 40, 50), np.uint8), r"shape \(3, 40, 50\) looks channels-first; expected \(H, W, 3\)"),
    (np.zeros((40, 50, 5), np.uint8), r"shape \(40, 50, 5\) is not an image"),
    (np.zeros((0, 50, 3), np.uint8), r"an empty image \(shape \(0, 50, 3\)\)"),
    ("photo.jpg", "'photo.jpg' is a path; detect\\(\\) takes image arrays: read files with "
                  "utils.inference.files.detect_images"),
])
def test_ambiguous_or_wrong_arrays_are_refused_in_one_sentence(image, message):
    with pytest.raises(ImageArrayError, match=message):
        rgb_image(image)


def test_batches_lists_and_empty_inputs():
    batch = np.stack([RGB, RGB])
    assert len(rgb_images(batch)) == 2 and rgb_images(np.zeros((0, 4, 4, 3), np.uint8)) == [] and rgb_images([]) == []
    with pytest.raises(ImageArrayError, match=r"image 1: shape \(3, 8, 8\) looks channels-first"):
        rgb_images([RGB, np.zeros((3, 8, 8), np.uint8)])
    small, large = np.zeros((2, 2, 3), np.uint8), np.zeros((4, 4, 3), np.uint8)
    assert [b.shape for b in same_size_batches([small, small, large, small])] == [(2, 2, 2, 3), (1, 4, 4, 3),
                                                                                  (1, 2, 2, 3)]
    assert [b.shape[0] for b in same_size_batches([small] * 3, max_batch=1)] == [1, 1, 1]
