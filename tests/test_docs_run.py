"""`make docs-check`: every command of the README and the how-to pages run as written, in document order, in one
sandbox folder laid out as the docs assume (generated photos where the docs name a user's photos, a video, a class
list), so a reader copying them gets what the docs promise.

Run by `make docs-check` (about ten minutes on two CPU cores), not by `make test`: the suite's fast docs test
parses every command and import instead. Three kinds of change keep it that short, and only these: `--epochs N`
runs at most `MAX_EPOCHS`, `--time-limit M` at most `MAX_MINUTES`, and an export that names no score threshold
exports at `SHORT_RUN_SCORE` (its check needs detections, and a model trained for a minute scores low). Commands
that set up an environment (`pip`, `venv`, `make`), need a second machine (`TF_CONFIG`) or time a benchmark
(`benchmarks/`, covered by the suite's smoke test) are listed as skipped, not run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs_commands import ROOT, Command, all_commands

pytestmark = pytest.mark.docs_run

HOW_TO = ["README.md", "data.md", "training.md", "inference.md", "evaluation.md", "models.md", "troubleshooting.md"]
MAX_EPOCHS = 12
MAX_MINUTES = 1.5
SHORT_RUN_SCORE = "0.01"
PROJECT = ["nets", "utils", "model_data", "train.py", "predict.py", "get_map.py", "voc_annotation.py",
           "convert_annotations.py", "kmeans_for_anchors.py", "summary.py", "synthetic_data.py", "prune.py"]
SHAPES = ("circle", "square", "triangle")


def skip_reason(command: Command) -> str | None:
    words = command.words
    if words[0] == "make":
        return "make targets are what CI and the demo run"
    if "pip" in words or "venv" in words:
        return "sets up the environment"
    if command.text.startswith("TF_CONFIG="):
        return "needs a second machine"
    if (command.python_script or "").startswith("benchmarks/"):
        return "a benchmark (the suite smoke-tests every one)"
    if words[0] in ("tensorboard",):
        return "a server"
    return None


def shortened(words: list[str]) -> list[str]:
    """At most MAX_EPOCHS epochs and MAX_MINUTES of budget, exports at SHORT_RUN_SCORE unless the command sets a
    threshold; everything else as written."""
    out = list(words)
    if "predict.py" in out and "export" in out and not {"--score-threshold", "--conf"} & set(out):
        out += ["--score-threshold", SHORT_RUN_SCORE]
    for index, word in enumerate(out[:-1]):
        if word == "--epochs":
            out[index + 1] = str(min(int(out[index + 1]), MAX_EPOCHS))
        elif word == "--time-limit":
            out[index + 1] = str(min(float(out[index + 1]), MAX_MINUTES))
    return [sys.executable if word.endswith("/bin/python") else word for word in out]


def write_coco(images: list[Path], annotations: dict[str, list], path: Path) -> None:
    """A COCO detection file of `images` (their boxes from the VOC conversion's lines)."""
    data = {"categories": [{"id": i, "name": name} for i, name in enumerate(SHAPES)], "images": [],
            "annotations": []}
    for image_id, image in enumerate(images):
        data["images"].append({"id": image_id, "file_name": image.name})
        for x1, y1, x2, y2, c in annotations[image.name]:
            data["annotations"].append({"id": len(data["annotations"]), "image_id": image_id, "category_id": c,
                                        "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0})
    path.write_text(json.dumps(data))


def write_yolo_labels(images: list[Path], annotations: dict[str, list], labels: Path, size: int) -> None:
    labels.mkdir(parents=True, exist_ok=True)
    for image in images:
        rows = [f"{c} {(x1 + x2) / 2 / size} {(y1 + y2) / 2 / size} {(x2 - x1) / size} {(y2 - y1) / size}"
                for x1, y1, x2, y2, c in annotations[image.name]]
        (labels / f"{image.stem}.txt").write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """The folder the docs' commands run in: the project (linked) and the inputs they name."""
    import cv2

    from utils.data.annotations import read_annotations
    from utils.data.synthetic import generate_synthetic_voc
    from utils.data.voc import convert_voc

    root = tmp_path_factory.mktemp("docs")
    for name in PROJECT:
        (root / name).symlink_to(ROOT / name)
    size = 256
    photos = root / "my_photos"
    generate_synthetic_voc(photos, num_images=32, seed=5, image_size=(size, size))
    (root / "data" / "mine").mkdir(parents=True)
    shutil.copy(photos / "classes.txt", root / "data" / "mine" / "classes.txt")  # README step 2, by hand
    lines = convert_voc(photos, list(SHAPES), root / "lines", progress=False).written
    boxes = {Path(a.image_path).name: a.boxes.astype(int).tolist()
             for split in lines.values() for a in read_annotations(split)[0]}
    jpegs = sorted((photos / "JPEGImages").glob("*.jpg"))
    (photos / "images").mkdir()
    for image in jpegs:
        shutil.copy(image, photos / "images" / image.name)
    write_coco(jpegs, boxes, photos / "instances.json")
    write_yolo_labels(jpegs, boxes, photos / "labels", size)
    # data.md: a VOCdevkit of VOC classes, a COCO export and an Ultralytics dataset
    devkit = root / "VOCdevkit" / "VOC2007"
    shutil.copytree(photos, devkit, ignore=shutil.ignore_patterns("images", "labels", "*.json"))
    for xml in (devkit / "Annotations").glob("*.xml"):
        text = xml.read_text()
        for shape, voc_class in zip(SHAPES, ("dog", "cat", "bird"), strict=True):
            text = text.replace(f"<name>{shape}</name>", f"<name>{voc_class}</name>")
        xml.write_text(text)
    shutil.copytree(photos / "images", root / "images" / "train")
    (root / "annotations").mkdir()
    write_coco(jpegs, boxes, root / "annotations" / "instances_train.json")
    shutil.copytree(photos / "images", root / "datasets" / "x" / "images" / "train")
    write_yolo_labels(jpegs, boxes, root / "datasets" / "x" / "labels" / "train", size)
    shutil.copy(photos / "classes.txt", root / "classes.txt")
    # Photos and a video to predict on
    for name in ("photo.jpg", "street.jpg", "cat.jpg"):
        shutil.copy(jpegs[0], root / name)
    for folder in ("new_photos", "photos"):
        (root / folder).mkdir()
        for image in jpegs[:3]:
            shutil.copy(image, root / folder / image.name)
    writer = cv2.VideoWriter(str(root / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (size, size))
    for image in jpegs[:6]:
        writer.write(cv2.imread(str(image)))
    writer.release()
    return root


LATER_INPUTS = {  # inputs a document uses that an earlier command of it produces elsewhere
    "results.json": lambda root: shutil.copy(root / "logs" / "voc" / "map" / "detections.json",
                                             root / "results.json"),
}


def documented(document: str) -> list[Command]:
    return [command for command in all_commands() if command.block.document.name == document]


@pytest.mark.parametrize("document", HOW_TO)
def test_every_command_runs_as_written(sandbox, document):
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    ran, skipped = [], []
    for command in documented(document):
        reason = skip_reason(command)
        if reason:
            skipped.append(f"{command.text}  ({reason})")
            continue
        for name, make in LATER_INPUTS.items():
            if name in command.words and not (sandbox / name).exists():
                make(sandbox)
        words = shortened(list(command.words))
        result = subprocess.run(words, cwd=sandbox, env=environment, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, (f"{command.where}: {command.text}\nexit {result.returncode}\n"
                                        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        ran.append(command.text)
    print(f"{document}: ran {len(ran)}, skipped {len(skipped)}:\n  " + "\n  ".join(skipped))
    assert ran or not documented(document)
