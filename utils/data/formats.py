"""Other tools' annotation formats → annotation lines: COCO json, and YOLO txt folders (Ultralytics layout).

Both return `Annotation`s plus a `Conversion` report of what was fixed, dropped or could not be read, each entry
naming the file; conversion goes on past bad entries, as `voc_annotation.py` does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from utils.data.anchors import image_size
from utils.data.annotations import NO_BOXES, Annotation
from utils.io.files import read_json, read_user_text

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif"}  # what tf.io.decode_image, and so training, reads


@dataclass
class Conversion:
    """What a conversion produced and met on the way."""

    annotations: list[Annotation] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        boxes = sum(len(a.boxes) + len(a.difficult_boxes) for a in self.annotations)
        lines = [f"{len(self.annotations)} images, {boxes} boxes, {len(self.class_names)} classes"]
        lines += [f"{count} {what}" for what, count in sorted(self.counts.items())]
        if self.problems:
            lines += [f"{len(self.problems)} problems:"] + [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def clip_boxes(rows: np.ndarray, width: float, height: float, conversion: Conversion) -> np.ndarray:
    """Clip (N, 5) boxes to the image (counted as `clipped`) and drop empty ones (counted as `zero_area`)."""
    if len(rows) == 0:
        return NO_BOXES
    clipped = rows.copy()
    clipped[:, [0, 2]] = np.clip(rows[:, [0, 2]], 0, width)
    clipped[:, [1, 3]] = np.clip(rows[:, [1, 3]], 0, height)
    conversion.counts["boxes clipped to the image"] += int(np.any(clipped != rows, axis=1).sum())
    clipped[:, :4] = np.round(clipped[:, :4])
    keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    conversion.counts["zero-area boxes dropped"] += int((~keep).sum())
    return clipped[keep].astype(np.float32)


def convert_coco(json_path: str | Path, images_dir: str | Path) -> Conversion:
    """COCO detection json → annotation lines. Categories in id order become class indices 0..C−1; `bbox`
    [x, y, w, h] becomes x1, y1, x1 + w, y1 + h; `iscrowd` regions become difficult boxes (ignored by training
    and mAP, as COCO ignores them); images without annotations become negative lines."""
    json_path, images_dir = Path(json_path), Path(images_dir)
    data = read_json(json_path, "COCO json")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{json_path}: no {key!r} list; is this a COCO detection file?")
    categories = sorted(data["categories"], key=lambda c: c["id"])
    conversion = Conversion(class_names=[str(c["name"]) for c in categories])
    class_of = {c["id"]: index for index, c in enumerate(categories)}
    rows: dict[int, list[list[float]]] = {image["id"]: [] for image in data["images"]}
    crowd: dict[int, list[list[float]]] = {image["id"]: [] for image in data["images"]}
    for entry in data["annotations"]:
        where = f"{json_path}: annotation {entry.get('id', '?')}"
        if entry.get("image_id") not in rows:
            conversion.problems.append(f"{where} refers to unknown image_id {entry.get('image_id')!r}")
            continue
        if entry.get("category_id") not in class_of:
            conversion.problems.append(f"{where} has unknown category_id {entry.get('category_id')!r}")
            continue
        x, y, w, h = (float(v) for v in entry["bbox"])
        target = crowd if entry.get("iscrowd") else rows
        target[entry["image_id"]].append([x, y, x + w, y + h, class_of[entry["category_id"]]])
    for image in data["images"]:
        path = images_dir / image["file_name"]
        if not path.is_file():
            conversion.problems.append(f"{path}: image file not found (image id {image['id']})")
            continue
        width, height = image.get("width"), image.get("height")
        if not width or not height:
            width, height = image_size(str(path))
        boxes = clip_boxes(np.asarray(rows[image["id"]], np.float64).reshape(-1, 5), width, height, conversion)
        hard = clip_boxes(np.asarray(crowd[image["id"]], np.float64).reshape(-1, 5), width, height, conversion)
        conversion.counts["crowd regions marked difficult"] += len(hard)
        conversion.annotations.append(Annotation(str(path.resolve()), boxes, hard))
    return conversion


def yolo_label_path(image_path: Path, images_root: Path, labels_root: Path | None = None) -> Path:
    """The label file of an image: at the same relative path under `labels_root` when given, else by Ultralytics'
    rule, the image path with its last `images` component replaced by `labels` (`x/images/train/a.jpg` →
    `x/labels/train/a.txt`; without an `images` component, beside the image)."""
    if labels_root is not None:
        return labels_root / image_path.relative_to(images_root).with_suffix(".txt")
    parts = list(image_path.parts)
    if "images" in parts[:-1]:
        last = len(parts) - 2 - parts[-2::-1].index("images")
        parts[last] = "labels"
    return Path(*parts).with_suffix(".txt")


def convert_yolo(images_dir: str | Path, class_names: list[str], labels_dir: str | Path | None = None
                 ) -> Conversion:
    """YOLO txt folders → annotation lines. Each image's labels are `class cx cy w h` (normalised to the image)
    in `labels_dir` at the same relative path with `.txt`, or where Ultralytics looks (`yolo_label_path`). An image
    without a label file is a negative image; when no image has one, the labels are elsewhere: an error."""
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise FileNotFoundError(f"{images_dir}: image folder not found")
    labels_dir = Path(labels_dir) if labels_dir else None
    conversion = Conversion(class_names=list(class_names))
    images = sorted(p for p in images_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f"{images_dir}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    for image_path in images:
        label_path = yolo_label_path(image_path, images_dir, labels_dir)
        try:
            width, height = image_size(str(image_path))
        except (OSError, ValueError) as error:
            conversion.problems.append(f"{image_path}: unreadable image ({error})")
            continue
        rows = []
        lines = read_user_text(label_path).splitlines() if label_path.is_file() else []
        conversion.counts["images without a label file"] += not label_path.is_file()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            fields = line.split()
            try:
                class_id, cx, cy, w, h = int(fields[0]), *(float(v) for v in fields[1:5])
                if len(fields) != 5:
                    raise ValueError
            except (ValueError, IndexError):
                conversion.problems.append(f"{label_path}:{number}: expected 'class cx cy w h', got {line!r}")
                continue
            if not 0 <= class_id < len(class_names):
                conversion.problems.append(f"{label_path}:{number}: class {class_id} is not in the "
                                           f"{len(class_names)}-class list")
                continue
            rows.append([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
                         (cy + h / 2) * height, class_id])
        boxes = clip_boxes(np.asarray(rows, np.float64).reshape(-1, 5), width, height, conversion)
        conversion.annotations.append(Annotation(str(image_path.resolve()), boxes))
    if conversion.counts["images without a label file"] == len(images):
        raise FileNotFoundError(f"{images_dir}: none of its {len(images)} images has a label file (the first was "
                                f"looked for at {yolo_label_path(images[0], images_dir, labels_dir)}); give --labels")
    return conversion
