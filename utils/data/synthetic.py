"""A synthetic detection set in VOC layout: coloured shapes on textured backgrounds, generated from a seed.

It is the bundled default data for `make demo`: several objects per image, overlaps, a range of sizes.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from utils.io.files import atomic_write_text

SHAPE_CLASSES = ("circle", "square", "triangle")


def textured_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A muted background: a colour gradient, blurred noise and a few thin lines."""
    base = rng.uniform(60, 190, size=3)
    tilt = rng.uniform(-60, 60, size=3)
    ramp = np.linspace(0, 1, width)[None, :, None] * tilt
    image = np.broadcast_to(base + ramp, (height, width, 3)).copy()
    noise = cv2.GaussianBlur(rng.normal(0, 40, (height, width, 3)), (0, 0), sigmaX=rng.uniform(1.5, 4))
    image += noise
    for _ in range(rng.integers(2, 7)):
        p1 = tuple(int(v) for v in rng.integers(0, [width, height]))
        p2 = tuple(int(v) for v in rng.integers(0, [width, height]))
        cv2.line(image, p1, p2, tuple(float(v) for v in rng.uniform(40, 220, 3)), int(rng.integers(1, 3)))
    return np.clip(image, 0, 255).astype(np.uint8)


def draw_shape(image: np.ndarray, shape: str, box: tuple[int, int, int, int], colour: tuple[int, ...]) -> None:
    """Draw a filled shape that touches every side of `box` (so the box is tight)."""
    x1, y1, x2, y2 = box
    if shape == "circle":
        cv2.ellipse(image, (((x1 + x2) / 2, (y1 + y2) / 2), (x2 - x1, y2 - y1), 0), colour, -1)
    elif shape == "square":
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), colour, -1)
    else:
        points = np.array([[(x1 + x2) // 2, y1], [x2 - 1, y2 - 1], [x1, y2 - 1]], np.int32)
        cv2.fillPoly(image, [points], colour)


def vivid_colour(rng: np.random.Generator) -> tuple[int, ...]:
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(170, 256), rng.integers(170, 256)]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def voc_xml(filename: str, width: int, height: int, objects: list[tuple[str, tuple[int, int, int, int]]]) -> str:
    parts = [
        "<annotation>", "  <folder>JPEGImages</folder>", f"  <filename>{filename}</filename>",
        f"  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>",
    ]
    for name, (x1, y1, x2, y2) in objects:
        parts += [
            "  <object>", f"    <name>{name}</name>", "    <difficult>0</difficult>",
            f"    <bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>",
            "  </object>",
        ]
    return "\n".join(parts + ["</annotation>", ""])


def make_synthetic_image(
    rng: np.random.Generator, height: int, width: int, max_objects: int = 6, max_overlap: float = 0.3
) -> tuple[np.ndarray, list[tuple[str, tuple[int, int, int, int]]]]:
    """One image and its (class name, box) list; later shapes may partly cover earlier ones."""
    image = textured_background(rng, height, width)
    objects: list[tuple[str, tuple[int, int, int, int]]] = []
    short_side = min(height, width)
    for _ in range(int(rng.integers(2, max_objects + 1))):
        for _attempt in range(20):
            size = rng.uniform(0.08, 0.4) * short_side
            w = int(size * rng.uniform(0.75, 1.33))
            h = int(size * rng.uniform(0.75, 1.33))
            x1, y1 = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            box = (x1, y1, x1 + w, y1 + h)
            if all(_overlap(box, other) <= max_overlap for _, other in objects):
                break
        else:
            continue
        shape = SHAPE_CLASSES[int(rng.integers(len(SHAPE_CLASSES)))]
        draw_shape(image, shape, box, vivid_colour(rng))
        objects.append((shape, box))
    return image, objects


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over the smaller box's area (how much of one shape another can hide)."""
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / smaller


def generate_synthetic_voc(out_dir: str | Path, num_images: int = 400, seed: int = 0,
                           image_size: tuple[int, int] = (320, 320)) -> Path:
    """Write `num_images` images with VOC XML under `out_dir` (Annotations/, JPEGImages/) and a class list.

    Returns:
        the path of the class list (`out_dir/classes.txt`).
    """
    out_dir = Path(out_dir)
    (out_dir / "Annotations").mkdir(parents=True, exist_ok=True)
    (out_dir / "JPEGImages").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in tqdm(range(num_images), desc="synthetic images", unit="img"):
        height, width = image_size
        image, objects = make_synthetic_image(rng, height, width)
        stem = f"shapes_{index:05d}"
        cv2.imwrite(str(out_dir / "JPEGImages" / f"{stem}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        atomic_write_text(out_dir / "Annotations" / f"{stem}.xml", voc_xml(f"{stem}.jpg", width, height, objects))
    classes = out_dir / "classes.txt"
    atomic_write_text(classes, "\n".join(SHAPE_CLASSES) + "\n")
    return classes
