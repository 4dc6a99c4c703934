"""COCO json and YOLO txt → annotation lines, and the dataset doctor."""

import json

import numpy as np
import pytest

import convert_annotations
import voc_annotation
from tests.conftest import write_image
from utils.data.annotations import format_line, read_annotations
from utils.data.doctor import diagnose
from utils.data.formats import convert_coco, convert_yolo


def write_coco(tmp_path):
    images = tmp_path / "images"
    write_image(images / "a.jpg", 100, 200)
    write_image(images / "b.jpg", 50, 60)
    data = {
        "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],
        "images": [{"id": 1, "file_name": "a.jpg", "width": 200, "height": 100},
                   {"id": 2, "file_name": "b.jpg"},  # no size: read from the file
                   {"id": 5, "file_name": "gone.jpg", "width": 10, "height": 10}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 3, "bbox": [10.4, 20, 30, 40], "iscrowd": 0},
            {"id": 11, "image_id": 1, "category_id": 7, "bbox": [180, 90, 50, 30], "iscrowd": 0},  # clipped
            {"id": 12, "image_id": 1, "category_id": 7, "bbox": [0, 0, 50, 50], "iscrowd": 1},  # crowd
            {"id": 13, "image_id": 1, "category_id": 99, "bbox": [0, 0, 5, 5]},
            {"id": 14, "image_id": 8, "category_id": 3, "bbox": [0, 0, 5, 5]},
        ],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return path, images


def test_coco_conversion(tmp_path):
    path, images = write_coco(tmp_path)
    conversion = convert_coco(path, images)
    assert conversion.class_names == ["cat", "dog"]  # category id order: 3, 7
    a, b = conversion.annotations
    np.testing.assert_array_equal(a.boxes, [[10, 20, 40, 60, 0], [180, 90, 200, 100, 1]])
    np.testing.assert_array_equal(a.difficult_boxes, [[0, 0, 50, 50, 1]])
    assert len(b.boxes) == 0 and b.image_path.endswith("b.jpg")  # a negative image
    assert conversion.counts["boxes clipped to the image"] == 1
    assert conversion.counts["crowd regions marked difficult"] == 1
    assert conversion.problems == [f"{path}: annotation 13 has unknown category_id 99",
                                   f"{path}: annotation 14 refers to unknown image_id 8",
                                   f"{images / 'gone.jpg'}: image file not found (image id 5)"]


def test_coco_cli_writes_lines_and_classes(tmp_path):
    path, images = write_coco(tmp_path)
    out = tmp_path / "lines" / "train.txt"
    assert convert_annotations.main(["coco", "--coco-json", str(path), "--images", str(images),
                                     "--out", str(out)]) == 1  # the problems above make it exit 1
    assert (tmp_path / "lines" / "train.classes.txt").read_text() == "cat\ndog\n"
    first = read_annotations(out)[0][0]
    assert first.boxes.shape == (2, 5) and first.difficult_boxes.shape == (1, 5)


def test_yolo_conversion(tmp_path):
    images, labels = tmp_path / "data" / "images", tmp_path / "data" / "labels"
    write_image(images / "train" / "x.jpg", 100, 200)
    write_image(images / "train" / "y.png", 40, 40)
    (labels / "train").mkdir(parents=True)
    (labels / "train" / "x.txt").write_text("1 0.5 0.5 0.2 0.4\n0 0.95 0.1 0.2 0.4\nbroken line\n5 0.5 0.5 0.1 0.1\n")
    conversion = convert_yolo(images, ["cat", "dog"])
    x, y = conversion.annotations
    # (0.5 ± 0.1) · 200, (0.5 ± 0.2) · 100; the second box clipped at the right and top edges.
    np.testing.assert_array_equal(x.boxes, [[80, 30, 120, 70, 1], [170, 0, 200, 30, 0]])
    assert len(y.boxes) == 0 and conversion.counts["images without a label file"] == 1
    label = labels / "train" / "x.txt"
    assert conversion.problems == [f"{label}:3: expected 'class cx cy w h', got 'broken line'",
                                   f"{label}:4: class 5 is not in the 2-class list"]
    classes = tmp_path / "classes.txt"
    classes.write_text("cat\ndog\n")
    out = tmp_path / "yolo.txt"
    assert convert_annotations.main(["yolo", "--images", str(images), "--classes", str(classes),
                                     "--out", str(out)]) == 1
    assert len(read_annotations(out)[0]) == 2


def test_a_folder_without_splits_is_split_at_random_into_train_val_and_test(tmp_path):
    images = tmp_path / "photos" / "images"
    (tmp_path / "photos" / "labels").mkdir(parents=True)
    for i in range(20):
        write_image(images / f"{i:02d}.jpg", 40, 40)
        (tmp_path / "photos" / "labels" / f"{i:02d}.txt").write_text("0 0.5 0.5 0.2 0.4\n")
    classes = tmp_path / "classes.txt"
    classes.write_text("cat\n")

    def split(out: str, *extra: str) -> dict[str, list[str]]:
        assert convert_annotations.main(["yolo", "--images", str(images), "--classes", str(classes),
                                         "--out-dir", str(tmp_path / out), *extra]) == 0
        return {path.stem: [a.image_path for a in read_annotations(path)[0]]
                for path in sorted((tmp_path / out).glob("*.txt"))}

    first = split("a")
    assert {name: len(paths) for name, paths in first.items()} == {"test": 2, "train": 16, "val": 2}
    assert sorted(sum(first.values(), [])) == sorted(str(p) for p in images.glob("*.jpg"))  # each image once
    assert split("b") == first  # seeded
    assert split("c", "--seed", "1") != first
    assert sorted(split("d", "--test-fraction", "0", "--val-fraction", "0.25")) == ["train", "val"]
    with pytest.raises(ValueError, match="sum below 1"):
        split("e", "--val-fraction", "0.6", "--test-fraction", "0.5")
    assert not (tmp_path / "e").exists()


def test_yolo_labels_are_found_by_ultralytics_rule_from_a_split_folder(tmp_path):
    """`--images datasets/x/images/train` (one split): the labels are in `datasets/x/labels/train`."""
    images = tmp_path / "datasets" / "x" / "images" / "train"
    write_image(images / "a.jpg", 100, 200)
    (tmp_path / "datasets" / "x" / "labels" / "train").mkdir(parents=True)
    (tmp_path / "datasets" / "x" / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.4\n")
    (only,) = convert_yolo(images, ["cat"]).annotations
    np.testing.assert_array_equal(only.boxes, [[80, 30, 120, 70, 0]])
    elsewhere = tmp_path / "photos"
    write_image(elsewhere / "b.jpg", 40, 40)
    with pytest.raises(FileNotFoundError, match=r"none of its 1 images has a label file .*photos/b\.txt\); give "
                                                r"--labels"):
        convert_yolo(elsewhere, ["cat"])


def test_doctor_finds_each_kind_of_problem(tmp_path, capsys):
    image = str(write_image(tmp_path / "a.jpg", 100, 200))
    lines = [
        format_line(image, np.array([[10, 10, 50, 50, 0], [10, 10, 50, 50, 0], [150, 50, 210, 90, 1]])),
        format_line(image, np.array([[5, 5, 6, 20, 0], [30, 30, 30, 40, 1], [0, 0, 20, 20, 4]])),
        format_line(str(tmp_path / "gone.jpg"), np.zeros((0, 5))),
        format_line(image, np.array([[60, 10, 160, 90, 1]]), np.array([[0, 0, 40, 40, 0]])),
    ]
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(lines) + "\n")
    annotations = read_annotations(path)[0]
    report = diagnose(annotations, ["cat", "dog"], input_size=200)
    kinds = {kind: len(entries) for kind, entries in report.problems.items()}
    assert kinds == {"images listed more than once": 1, "missing or unreadable images": 1, "duplicate boxes": 1,
                     "boxes outside the image": 1, "unknown class ids": 1, "zero-area boxes": 1,
                     "tiny boxes (< 4 px at 200)": 1}
    assert (report.images, report.boxes, report.without_boxes) == (4, 8, 1)
    assert report.per_class == {"cat": 3, "dog": 3} and report.difficult_per_class == {"cat": 1}
    assert voc_annotation.main(["--check", str(path), "--classes", str(write_classes(tmp_path))]) == 1
    printed = capsys.readouterr().out
    assert "1 boxes outside the image:" in printed and "[150.0, 50.0, 210.0, 90.0] in 200×100" in printed
    clean = tmp_path / "clean.txt"
    clean.write_text(format_line(image, np.array([[10, 10, 90, 60, 0]])) + "\n")
    assert voc_annotation.main(["--check", str(clean), "--classes", str(write_classes(tmp_path)),
                                "--input-size", "200"]) == 0
    assert "no problems found" in capsys.readouterr().out


def test_doctor_anchor_recall(tmp_path):
    image = str(write_image(tmp_path / "a.jpg", 100, 100))
    path = tmp_path / "lines.txt"
    path.write_text(format_line(image, np.array([[0, 0, 10, 10, 0], [0, 0, 90, 30, 0]])) + "\n")
    annotations = read_annotations(path)[0]
    # At input 100 the boxes are 10×10 and 90×30. One 10×10 anchor matches the first (ratio 1) but not the second
    # (ratio 9 > 4): recall 1/2; adding a 60×20 anchor (ratios 1.5) reaches both.
    assert diagnose(annotations, ["a"], 100, np.array([[10.0, 10.0]])).anchor_recall == 0.5
    assert diagnose(annotations, ["a"], 100, np.array([[10.0, 10.0], [60.0, 20.0]])).anchor_recall == 1.0


def write_classes(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("cat\ndog\n")
    return path
