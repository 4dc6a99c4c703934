"""Image arrays handed to a detector in Python, checked and brought to what it runs on: uint8 RGB (H, W, 3).

Accepted as they are: uint8 RGB. Converted, because the meaning is unambiguous:
- grayscale (H, W) or (H, W, 1) → the gray value in all three channels; RGBA (H, W, 4) → its RGB (alpha dropped);
- float arrays with values in [0, 1] → × 255 (the float-image convention of scikit-image and matplotlib); float
  arrays with values in [0, 255], some above 1 → rounded (already on the 8-bit scale);
- wider or signed integer arrays with values in [0, 255] → the same values; uint16 arrays with values above 255 →
  the 16-bit scale brought to 8 bits (÷ 257).
Refused, with an error naming the dtype, shape or value range: other value ranges (negative values, normalised
inputs), NaN or infinity, boolean or complex arrays, channels-first arrays (3, H, W), empty images, file paths
(those go to `utils.inference.files.detect_images`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHANNELS = (1, 3, 4)


class ImageArrayError(ValueError):
    """An array a detector cannot take as an image."""


def _range(array: np.ndarray) -> tuple[float, float]:
    return (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)


def _as_uint8(array: np.ndarray, what: str) -> np.ndarray:
    """Values on the 8-bit scale, as uint8 (see the module docstring for the rules)."""
    dtype = array.dtype
    if dtype == np.uint8:
        return array
    if dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ImageArrayError(f"{what}: an image of dtype {dtype} with NaN or infinite values")
        low, high = _range(array)
        if low < 0 or high > 255:
            raise ImageArrayError(f"{what}: an image of dtype {dtype} with values in [{low:g}, {high:g}]; expected [0, 1] or "
                                  f"[0, 255] (undo any normalisation first)")
        scaled = array * 255.0 if high <= 1.0 else array
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    if dtype.kind in "iu":
        low, high = _range(array)
        if low < 0:
            raise ImageArrayError(f"{what}: an image of dtype {dtype} with negative values (down to {low:g}); expected 0–255")
        if high <= 255:
            return array.astype(np.uint8)
        if dtype == np.uint16:
            return np.rint(array / 257.0).astype(np.uint8)
        raise ImageArrayError(f"{what}: an image of dtype {dtype} with values up to {high:g}; expected 0–255 (or uint16 "
                              f"for 16-bit images)")
    raise ImageArrayError(f"{what}: an array of dtype {dtype} is not an image; expected uint8 RGB (H, W, 3)")


def _as_rgb(array: np.ndarray, what: str) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) → (H, W, 3)."""
    shape = array.shape
    if array.ndim == 2:
        array = array[..., None]
    elif array.ndim != 3 or shape[-1] not in CHANNELS:
        if array.ndim == 3 and shape[0] in CHANNELS:
            raise ImageArrayError(f"{what}: shape {shape} looks channels-first; expected (H, W, 3): transpose it "
                                  f"with np.transpose(image, (1, 2, 0))")
        raise ImageArrayError(f"{what}: shape {shape} is not an image; expected (H, W, 3) RGB, (H, W) or (H, W, 1) "
                              f"grayscale, or (H, W, 4) RGBA")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageArrayError(f"{what}: an empty image (shape {shape})")
    if array.shape[-1] == 1:
        return np.repeat(array, 3, axis=-1)
    return array[..., :3]


def rgb_image(image: object, what: str = "image") -> np.ndarray:
    """One image as uint8 RGB (H, W, 3), or an `ImageArrayError` (see the module docstring)."""
    if isinstance(image, (str, Path, bytes)):
        raise ImageArrayError(f"{what}: {str(image)!r} is a path; detect() takes image arrays: read files with "
                              f"utils.inference.files.detect_images(detector, paths)")
    array = np.asarray(image.numpy() if hasattr(image, "numpy") else image)
    return np.ascontiguousarray(_as_rgb(_as_uint8(array, what), what))


def rgb_images(images: object) -> list[np.ndarray]:
    """One image (H, W[, C]), a batch (B, H, W, C) or a list of images of any sizes → a list of uint8 RGB images
    (an empty batch or list → [])."""
    if isinstance(images, (list, tuple)):
        return [rgb_image(image, f"image {i}") for i, image in enumerate(images)]
    if isinstance(images, (str, Path, bytes)):
        return [rgb_image(images)]
    array = np.asarray(images.numpy() if hasattr(images, "numpy") else images)
    if array.ndim == 4:
        return [rgb_image(image, f"image {i}") for i, image in enumerate(array)]
    return [rgb_image(array)]


def same_size_batches(images: list[np.ndarray], max_batch: int | None = None) -> list[np.ndarray]:
    """Consecutive images of one size stacked into batches (of at most `max_batch`), in order."""
    runs: list[list[np.ndarray]] = []
    for image in images:
        if runs and runs[-1][0].shape == image.shape and (max_batch is None or len(runs[-1]) < max_batch):
            runs[-1].append(image)
        else:
            runs.append([image])
    return [np.stack(run) for run in runs]
