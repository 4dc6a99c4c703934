"""Pascal VOC XML → records, and VOCdevkit → annotation-line files, with every problem counted or reported."""

from __future__ import annotations

import logging
import math
import random
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from utils.data.anchors import image_size
from utils.data.annotations import format_line
from utils.io.files import atomic_write_text, read_user_text

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG")
DIFFICULT_POLICIES = {  # what happens to VOC `difficult` objects
    "mark": "marked: not trained on, ignored by mAP",
    "keep": "kept as ordinary boxes",
    "drop": "dropped",
}


@dataclass
class VocRecord:
    """One parsed XML file: the image, its boxes (N, 5) and what was fixed or dropped on the way."""

    image_path: Path
    boxes: np.ndarray
    difficult_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.float32))
    counts: Counter = field(default_factory=Counter)
    unknown_classes: Counter = field(default_factory=Counter)


def find_image(image_dir: Path, stem: str, filename: str | None = None) -> Path:
    """The image for an annotation: the XML's `<filename>` if present, else `stem` with a known extension."""
    candidates = [image_dir / filename] if filename else []
    candidates += [image_dir / f"{stem}{ext}" for ext in IMAGE_EXTENSIONS]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no image for {stem} in {image_dir} (tried {', '.join(c.name for c in candidates)})")


def _number(obj: ET.Element, tag: str, xml_path: Path, index: int) -> float:
    node = obj.find(f"bndbox/{tag}")
    if node is None or node.text is None:
        raise ValueError(f"{xml_path}: object {index} has no bndbox/{tag}")
    try:
        value = float(node.text)
    except ValueError:
        raise ValueError(f"{xml_path}: object {index} has non-numeric {tag} {node.text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{xml_path}: object {index} has {tag} {node.text.strip()!r}, not a finite number")
    return value


def _size(root: ET.Element, xml_path: Path) -> tuple[float, float] | None:
    """`<size>` width and height, or None when absent or zero (then the image header is read)."""
    texts = [(root.findtext(f"size/{tag}") or "").strip() for tag in ("width", "height")]
    if not all(texts):
        return None
    try:
        width, height = (float(text) for text in texts)
    except ValueError:
        raise ValueError(f"{xml_path}: <size> has non-numeric width/height {texts[0]!r} × {texts[1]!r}") from None
    if not (math.isfinite(width) and math.isfinite(height)) or width < 0 or height < 0:
        raise ValueError(f"{xml_path}: <size> has invalid width/height {texts[0]!r} × {texts[1]!r}")
    return (width, height) if width > 0 and height > 0 else None


def _image_frame(declared: tuple[float, float] | None, image_path: Path, xml_path: Path,
                 record: VocRecord) -> tuple[float, float]:
    """The (width, height) boxes are clipped to: the image's own, as viewed (its header only). A `<size>` that
    disagrees is reported (counted as `size_mismatch`, a warning naming both files); without a readable header the
    `<size>` is used, and the image is left for the training-time check."""
    try:
        actual = image_size(str(image_path))
    except (FileNotFoundError, ValueError):
        if declared is None:
            raise
        return declared
    if declared is not None and tuple(round(v) for v in declared) != tuple(actual):
        record.counts["size_mismatch"] += 1
        log.warning("%s: <size> %g×%g differs from its image %s (%d×%d as viewed); the image's size is used",
                    xml_path, *declared, image_path, *actual)
    return float(actual[0]), float(actual[1])


def parse_voc_xml(
    xml_path: Path, image_dir: Path, class_names: list[str], difficult: str = "mark"
) -> VocRecord:
    """Parse one VOC annotation.

    Boxes are clipped to the image (counted as `clipped`); boxes with no area after clipping are dropped (counted
    as `zero_area`); unknown class names are collected. `difficult` objects (counted) are, by `difficult`:
    `mark` — kept apart in `difficult_boxes` (written with a `,1` marker: not trained on, ignored by the mAP code
    as VOC's devkit does), `keep` — ordinary boxes, `drop` — left out. A `<size>` that disagrees with the image is
    reported and the image's size used (see `_image_frame`). A file that is not well-formed XML, or lacks what a box
    needs, raises ValueError naming the file.
    """
    if difficult not in DIFFICULT_POLICIES:
        raise ValueError(f"difficult must be one of {', '.join(DIFFICULT_POLICIES)}, got {difficult!r}")
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as error:
        raise ValueError(f"{xml_path}: malformed XML ({error})") from None
    filename = root.findtext("filename")
    image_path = find_image(image_dir, xml_path.stem, filename.strip() if filename else None)
    record = VocRecord(image_path, np.zeros((0, 5), np.float32))
    width, height = _image_frame(_size(root, xml_path), image_path, xml_path, record)
    rows, difficult_rows = [], []
    for index, obj in enumerate(root.iter("object")):
        name = (obj.findtext("name") or "").strip()
        if name not in class_names:
            record.unknown_classes[name] += 1
            continue
        is_difficult = (obj.findtext("difficult") or "0").strip() == "1"
        if is_difficult:
            record.counts["difficult"] += 1
            if difficult == "drop":
                continue
        x1, y1, x2, y2 = (_number(obj, tag, xml_path, index) for tag in ("xmin", "ymin", "xmax", "ymax"))
        if x1 > x2 or y1 > y2:
            raise ValueError(f"{xml_path}: object {index} ({name}) has xmin > xmax or ymin > ymax "
                             f"({x1:g}, {y1:g}, {x2:g}, {y2:g})")
        clipped = (min(max(x1, 0), width), min(max(y1, 0), height), min(max(x2, 0), width), min(max(y2, 0), height))
        if clipped != (x1, y1, x2, y2):
            record.counts["clipped"] += 1
        x1, y1, x2, y2 = (round(v) for v in clipped)
        if x2 <= x1 or y2 <= y1:
            record.counts["zero_area"] += 1
            continue
        marked = is_difficult and difficult == "mark"
        (difficult_rows if marked else rows).append([x1, y1, x2, y2, class_names.index(name)])
        record.counts["kept"] += 1
    record.boxes = np.asarray(rows, dtype=np.float32).reshape(-1, 5)
    record.difficult_boxes = np.asarray(difficult_rows, dtype=np.float32).reshape(-1, 5)
    return record


def find_voc_dirs(voc_root: Path) -> list[Path]:
    """The VOC dataset folders under a root: the root itself if it has `Annotations/`, else its children that do."""
    if not voc_root.is_dir():
        raise FileNotFoundError(f"{voc_root}: VOC folder not found")
    if (voc_root / "Annotations").is_dir():
        return [voc_root]
    found = sorted(child for child in voc_root.iterdir() if (child / "Annotations").is_dir())
    if not found:
        raise FileNotFoundError(f"{voc_root}: no Annotations/ folder here or in its subfolders")
    return found


def read_split_files(voc_dir: Path) -> dict[str, list[str]]:
    """`ImageSets/Main/<split>.txt` → {split: [ids]}; class-specific lists like `dog_train.txt` are ignored."""
    main = voc_dir / "ImageSets" / "Main"
    splits: dict[str, list[str]] = {}
    if main.is_dir():
        for path in sorted(main.glob("*.txt")):
            if "_" in path.stem:
                continue
            splits[path.stem] = [line.split()[0] for line in read_user_text(path).splitlines() if line.strip()]
    return splits


def random_split(ids: list[str], val_fraction: float, test_fraction: float, seed: int) -> dict[str, list[str]]:
    """Seeded train/val/test split of image ids (sorted first, so the result does not depend on listing order)."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(f"val and test fractions must be in [0, 1) and sum below 1, got {val_fraction}, "
                         f"{test_fraction}")
    shuffled = sorted(ids)
    random.Random(seed).shuffle(shuffled)
    n_val = round(len(shuffled) * val_fraction)
    n_test = round(len(shuffled) * test_fraction)
    return {
        "train": sorted(shuffled[n_val + n_test:]),
        "val": sorted(shuffled[:n_val]),
        "test": sorted(shuffled[n_val:n_val + n_test]),
    }


@dataclass
class ConversionSummary:
    """What a VOCdevkit conversion wrote and what it had to fix, drop or report."""

    images: dict[str, int] = field(default_factory=dict)
    boxes: dict[str, Counter] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)
    unknown_classes: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    written: dict[str, Path] = field(default_factory=dict)
    difficult: str = "mark"


def convert_voc(
    voc_root: str | Path,
    class_names: list[str],
    out_dir: str | Path,
    difficult: str = "mark",
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    progress: bool = True,
) -> ConversionSummary:
    """Convert every VOC folder under `voc_root` into `<out_dir>/<split>.txt` annotation lines.

    Splits come from `ImageSets/Main/<split>.txt`; a folder without them gets a seeded train/val/test split.
    A malformed or incomplete XML file (or a missing image) is listed in `failures` with its path and reason and
    conversion goes on.
    """
    out_dir = Path(out_dir)
    summary = ConversionSummary(difficult=DIFFICULT_POLICIES[difficult])
    lines: dict[str, list[str]] = {}
    for voc_dir in find_voc_dirs(Path(voc_root)):
        xml_ids = [p.stem for p in (voc_dir / "Annotations").glob("*.xml")]
        if not xml_ids:
            raise FileNotFoundError(f"{voc_dir / 'Annotations'}: no .xml annotation files in this folder")
        splits = read_split_files(voc_dir) or random_split(xml_ids, val_fraction, test_fraction, seed)
        records: dict[str, VocRecord | None] = {}
        all_ids = sorted({i for ids in splits.values() for i in ids})
        for image_id in tqdm(all_ids, desc=f"parsing {voc_dir.name}", unit="xml", disable=not progress):
            xml_path = voc_dir / "Annotations" / f"{image_id}.xml"
            try:
                if not xml_path.is_file():
                    raise FileNotFoundError(f"{xml_path}: annotation file not found")
                records[image_id] = parse_voc_xml(xml_path, voc_dir / "JPEGImages", class_names, difficult)
            except (ValueError, FileNotFoundError, OSError) as error:
                summary.failures.append(str(error))
                records[image_id] = None
        for split, ids in splits.items():
            split_lines = lines.setdefault(split, [])
            box_counts = summary.boxes.setdefault(split, Counter())
            for image_id in ids:
                record = records.get(image_id)
                if record is None:
                    continue
                split_lines.append(format_line(record.image_path.resolve(), record.boxes, record.difficult_boxes))
                box_counts.update(class_names[int(c)] for c in record.boxes[:, 4])
        for record in records.values():
            if record is not None:
                summary.counts.update(record.counts)
                summary.unknown_classes.update(record.unknown_classes)
    matched = summary.counts["kept"] + summary.counts["difficult"] + summary.counts["zero_area"]
    if summary.unknown_classes and not matched:
        found = ", ".join(f"{name or '<empty>'} ({count})" for name, count in summary.unknown_classes.most_common())
        raise ValueError(f"none of the dataset's object names is in the class list ({', '.join(class_names)}); "
                         f"the names found: {found}. Nothing was written.")
    for split, split_lines in lines.items():
        path = out_dir / f"{split}.txt"
        atomic_write_text(path, "\n".join(split_lines) + ("\n" if split_lines else ""))
        summary.images[split] = len(split_lines)
        summary.written[split] = path
    return summary


def format_summary(summary: ConversionSummary, class_names: list[str]) -> str:
    """A plain-text table of images and boxes per split and class, then what was fixed, dropped or failed."""
    splits = list(summary.images)
    header = f"{'split':<10}{'images':>8}" + "".join(f"{name[:12]:>13}" for name in class_names)
    rows = [header, "-" * len(header)]
    for split in splits:
        boxes = summary.boxes.get(split, Counter())
        rows.append(f"{split:<10}{summary.images[split]:>8}" + "".join(f"{boxes[n]:>13}" for n in class_names))
    notes = [
        f"{summary.counts['clipped']} boxes clipped to the image",
        f"{summary.counts['zero_area']} zero-area boxes dropped",
        f"{summary.counts['difficult']} difficult objects ({summary.difficult})",
    ]
    if summary.counts["size_mismatch"]:
        notes.append(f"{summary.counts['size_mismatch']} annotations whose <size> differs from their image (the "
                     f"image's size was used; listed above)")
    if summary.unknown_classes:
        listed = ", ".join(f"{name or '<empty>'} ({count})" for name, count in summary.unknown_classes.most_common())
        notes.append(f"unknown class names skipped: {listed}")
    rows += [""] + notes
    if summary.failures:
        rows += ["", f"{len(summary.failures)} annotation files failed:"] + [f"  {f}" for f in summary.failures]
    return "\n".join(rows)
