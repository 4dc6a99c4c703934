"""A straightforward per-image loader with PIL and numpy, as the ancestor project writes it: the yardstick that
`bench_pipeline.py` measures the tf.data pipeline against. Same augmentations (fit, mosaic of four, random affine
with scale / aspect / shift / rotation / shear, mixup of two such views, HSV, flip), one image at a time in Python.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from utils.config.run_config import AugmentConfig
from utils.data.annotations import Annotation
from utils.data.augment import FILL_VALUE

FILL = int(FILL_VALUE)


class ReferenceLoader:
    """`batch()` returns (images (B, H, W, 3) float32, boxes (B, max_boxes, 5)) like the tf.data pipeline."""

    def __init__(self, annotations: list[Annotation], size: int, config: AugmentConfig, seed: int = 0,
                 max_boxes: int = 100) -> None:
        self.annotations, self.size, self.config, self.max_boxes = annotations, size, config, max_boxes
        self.rng = np.random.default_rng(seed)

    def fitted(self, index: int) -> tuple[Image.Image, np.ndarray]:
        annotation = self.annotations[index]
        image = Image.open(annotation.image_path).convert("RGB")
        scale = min(self.size / image.width, self.size / image.height)
        new_w, new_h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
        boxes = annotation.boxes.copy()
        boxes[:, [0, 2]] *= new_w / image.width
        boxes[:, [1, 3]] *= new_h / image.height
        return image.resize((new_w, new_h), Image.BILINEAR), boxes

    def mosaic(self, index: int) -> tuple[Image.Image, np.ndarray]:
        size = self.size
        canvas = Image.new("RGB", (2 * size, 2 * size), (FILL, FILL, FILL))
        xc, yc = (int(self.rng.integers(size // 2, size * 3 // 2 + 1)) for _ in range(2))
        indices = [index, *self.rng.integers(0, len(self.annotations), 3)]
        placed = []
        for k, i in enumerate(indices):
            image, boxes = self.fitted(int(i))
            x1 = xc - image.width if k in (0, 2) else xc
            y1 = yc - image.height if k in (0, 1) else yc
            region = (0 if k in (0, 2) else xc, 0 if k in (0, 1) else yc,
                      xc if k in (0, 2) else 2 * size, yc if k in (0, 1) else 2 * size)
            crop = (max(region[0] - x1, 0), max(region[1] - y1, 0), min(region[2] - x1, image.width),
                    min(region[3] - y1, image.height))
            canvas.paste(image.crop(crop), (x1 + crop[0], y1 + crop[1]))
            placed.append(boxes + [x1, y1, x1, y1, 0])
        return canvas, np.concatenate(placed)

    def affine(self, image: Image.Image, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, size = self.config, self.size
        aspect = self.rng.uniform(1 - c.aspect_jitter, 1 + c.aspect_jitter) / self.rng.uniform(
            1 - c.aspect_jitter, 1 + c.aspect_jitter)
        scale = self.rng.uniform(c.scale_min, c.scale_max)
        angle = math.radians(self.rng.uniform(-c.degrees, c.degrees))
        shear_x, shear_y = (math.tan(math.radians(self.rng.uniform(-c.shear, c.shear))) for _ in range(2))
        shift = self.rng.uniform(-c.translate, c.translate, 2) * size
        centre = np.array([[1, 0, -image.width / 2], [0, 1, -image.height / 2], [0, 0, 1]])
        rotate = np.array([[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]])
        zoom = np.diag([scale * math.sqrt(aspect), scale / math.sqrt(aspect), 1])
        shear = np.array([[1, shear_x, 0], [shear_y, 1, 0], [0, 0, 1]])
        place = np.array([[1, 0, size / 2 + shift[0]], [0, 1, size / 2 + shift[1]], [0, 0, 1]])
        matrix = place @ shear @ zoom @ rotate @ centre
        inverse = np.linalg.inv(matrix)
        warped = image.transform((size, size), Image.AFFINE, tuple(inverse[:2].ravel()), Image.BILINEAR,
                                 fillcolor=(FILL, FILL, FILL))
        corners = boxes[:, [0, 1, 2, 1, 0, 3, 2, 3]].reshape(-1, 4, 2)
        moved = corners @ matrix[:2, :2].T + matrix[:2, 2]
        enclosing = np.concatenate([moved.min(axis=1), moved.max(axis=1)], axis=1)
        clipped = np.clip(enclosing, 0, size)
        area = np.prod(np.maximum(clipped[:, 2:] - clipped[:, :2], 0), axis=1)
        keep = ((clipped[:, 2:] - clipped[:, :2] >= c.min_box_size).all(axis=1)
                & (area >= c.min_box_visible * np.prod(enclosing[:, 2:] - enclosing[:, :2], axis=1)))
        return np.asarray(warped, np.float32), np.concatenate([clipped, boxes[:, 4:]], axis=1)[keep]

    def view(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self.rng.random() < self.config.mosaic:
            return self.affine(*self.mosaic(index))
        return self.affine(*self.fitted(index))

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        c = self.config
        image, boxes = self.view(index)
        if self.rng.random() < c.mixup:
            other, other_boxes = self.view(int(self.rng.integers(0, len(self.annotations))))
            ratio = self.rng.beta(32.0, 32.0)
            image, boxes = image * ratio + other * (1 - ratio), np.concatenate([boxes, other_boxes])
        gains = self.rng.uniform(-1, 1, 3) * [c.hsv_h, c.hsv_s, c.hsv_v]
        hsv = np.asarray(Image.fromarray(image.clip(0, 255).astype(np.uint8)).convert("HSV"), np.float32)
        hsv[..., 0] = (hsv[..., 0] + gains[0] * 255) % 255
        hsv[..., 1:] = np.clip(hsv[..., 1:] * (1 + gains[1:]), 0, 255)
        image = np.asarray(Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB"), np.float32)
        if self.rng.random() < c.flip_probability:
            image = image[:, ::-1]
            boxes[:, [0, 2]] = self.size - boxes[:, [2, 0]]
        padded = np.full((self.max_boxes, 5), -1, np.float32)
        padded[:len(boxes[:self.max_boxes])] = boxes[:self.max_boxes]
        return image, padded

    def batch(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        indices = self.rng.integers(0, len(self.annotations), batch_size)
        images, boxes = zip(*(self.sample(int(i)) for i in indices), strict=True)
        return np.stack(images), np.stack(boxes)
