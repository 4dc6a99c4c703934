"""Reading images as a photo viewer and labelling tools show them: the EXIF orientation applied.

A phone stores a portrait photo as landscape pixels plus an EXIF tag (orientation 6: "rotate 90° clockwise to
view"). `tf.io.decode_image` ignores the tag, OpenCV and labelling tools apply it; boxes drawn on the photo are in
the viewed frame. Every reader in the project goes through this module, so training, evaluation, prediction,
drawing and export see the same pixels: the orientation is read once from the file header (Pillow, no decode),
and the rotation or flip runs as graph ops after the decode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

EXIF_ORIENTATION_TAG = 0x0112
UPRIGHT = 1  # EXIF orientation 1: the stored pixels are the viewed ones


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation of an open image: 1–8, 1 without a tag or for a value outside 1–8."""
    value = int(image.getexif().get(EXIF_ORIENTATION_TAG, UPRIGHT))
    return value if 1 <= value <= 8 else UPRIGHT


def exif_orientation(path: str | Path) -> int:
    """The EXIF orientation (1–8) of an image file; 1 without a tag, for a file Pillow cannot open, or for a value
    outside 1–8."""
    try:
        with Image.open(path) as image:
            return _orientation(image)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return UPRIGHT


def orientation_tensor(paths: list[str]) -> tf.Tensor:
    """`exif_orientation` of each path (header reads only), as an int32 tensor (N,) to slice beside the paths."""
    return tf.constant([exif_orientation(path) for path in paths], tf.int32, shape=[len(paths)])


def viewed_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of the image as viewed (swapped for orientations 5–8), from the header alone.

    Raises:
        ValueError naming the file when it is not an image Pillow can read.
    """
    try:
        with Image.open(path) as image:
            (width, height), orientation = image.size, _orientation(image)
    except (UnidentifiedImageError, SyntaxError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def orient(image: tf.Tensor, orientation: tf.Tensor | int) -> tf.Tensor:
    """Apply an EXIF orientation to stored pixels (H, W, C): the image as viewed. Graph ops only."""
    transposed = lambda: tf.transpose(image, [1, 0, 2])  # noqa: E731
    branches = [
        lambda: image,                                   # 1 (and anything unknown): as stored
        lambda: tf.reverse(image, [1]),                  # 2: mirrored left-right
        lambda: tf.reverse(image, [0, 1]),               # 3: rotated 180°
        lambda: tf.reverse(image, [0]),                  # 4: mirrored top-bottom
        transposed,                                      # 5: transposed
        lambda: tf.reverse(transposed(), [1]),           # 6: rotate 90° clockwise to view
        lambda: tf.reverse(transposed(), [0, 1]),        # 7: transversed
        lambda: tf.reverse(transposed(), [0]),           # 8: rotate 90° counter-clockwise to view
    ]
    index = tf.clip_by_value(tf.cast(orientation, tf.int32) - 1, 0, 7)
    oriented = tf.switch_case(index, branches)
    oriented.set_shape([None, None, image.shape[-1]])
    return oriented


def decode_image(path: tf.Tensor, orientation: tf.Tensor | int = UPRIGHT) -> tf.Tensor:
    """Read and decode a JPEG/PNG/BMP/GIF file to (H, W, 3) uint8 as viewed (`orientation` from
    `exif_orientation`)."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return orient(image, orientation)


def read_rgb(path: str | Path) -> np.ndarray:
    """One image file as viewed, (H, W, 3) uint8 RGB, through the same decoder as training and evaluation."""
    return decode_image(tf.constant(str(path)), exif_orientation(path)).numpy()


def read_bgr(path: str | Path) -> np.ndarray:
    """`read_rgb` in OpenCV's channel order, for drawing."""
    return np.ascontiguousarray(read_rgb(path)[..., ::-1])
