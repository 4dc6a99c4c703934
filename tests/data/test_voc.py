from pathlib import Path

import numpy as np
import pytest

import voc_annotation
from tests.conftest import shared_dataset, write_image
from utils.data.annotations import read_annotations
from utils.data.voc import convert_voc, parse_voc_xml, random_split

CLASSES = ["cat", "dog"]


def voc_object(name: str, box: tuple, difficult: int = 0) -> str:
    x1, y1, x2, y2 = box
    return (f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{x1}</xmin>"
            f"<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")


def write_voc(root: Path, stem: str, objects: list[str], size: tuple | None = (60, 80), ext: str = ".jpg") -> None:
    write_image(root / "JPEGImages" / f"{stem}{ext}", *(size or (60, 80)))
    size_xml = f"<size><width>{size[1]}</width><height>{size[0]}</height></size>" if size else ""
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations" / f"{stem}.xml").write_text(f"<annotation>{size_xml}{''.join(objects)}</annotation>")


def test_parse_fixes_and_counts(tmp_path):
    write_voc(tmp_path, "a", [
        voc_object("cat", (1, 2, 30.6, 40)),           # float coordinate, rounded
        voc_object("dog", (70, 10, 95, 50)),           # xmax beyond width 80: clipped
        voc_object("dog", (5, 5, 5, 20)),              # zero width: dropped
        voc_object("cat", (2, 2, 10, 10), difficult=1),
        voc_object("horse", (2, 2, 10, 10)),
    ])
    record = parse_voc_xml(tmp_path / "Annotations" / "a.xml", tmp_path / "JPEGImages", CLASSES)
    np.testing.assert_array_equal(record.boxes, [[1, 2, 31, 40, 0], [70, 10, 80, 50, 1]])
    assert record.counts == {"kept": 3, "clipped": 1, "zero_area": 1, "difficult": 1}
    assert record.unknown_classes == {"horse": 1}
    np.testing.assert_array_equal(record.difficult_boxes, [[2, 2, 10, 10, 0]])
    kept = parse_voc_xml(tmp_path / "Annotations" / "a.xml", tmp_path / "JPEGImages", CLASSES, difficult="keep")
    assert len(kept.boxes) == 3 and len(kept.difficult_boxes) == 0
    dropped = parse_voc_xml(tmp_path / "Annotations" / "a.xml", tmp_path / "JPEGImages", CLASSES, difficult="drop")
    assert len(dropped.boxes) == 2 and len(dropped.difficult_boxes) == 0


def test_missing_size_reads_the_image_and_png_is_found(tmp_path):
    write_voc(tmp_path, "b", [voc_object("dog", (10, 10, 200, 50))], size=None, ext=".png")
    record = parse_voc_xml(tmp_path / "Annotations" / "b.xml", tmp_path / "JPEGImages", CLASSES)
    assert record.image_path.name == "b.png"
    np.testing.assert_array_equal(record.boxes, [[10, 10, 80, 50, 1]])  # clipped to the real 80 px width


def test_a_size_that_disagrees_with_the_image_is_reported_and_the_images_size_used(tmp_path, caplog):
    write_image(tmp_path / "JPEGImages" / "c.jpg", 60, 80)
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "c.xml").write_text(  # <size> says 800×600; the image is 80×60
        "<annotation><size><width>800</width><height>600</height></size>"
        + voc_object("cat", (10, 10, 300, 50)) + "</annotation>")
    with caplog.at_level("WARNING"):
        record = parse_voc_xml(tmp_path / "Annotations" / "c.xml", tmp_path / "JPEGImages", CLASSES)
    np.testing.assert_array_equal(record.boxes, [[10, 10, 80, 50, 0]])  # clipped to the image, not to <size>
    assert record.counts["size_mismatch"] == 1
    assert "c.xml: <size> 800×600 differs from its image" in caplog.text and "(80×60 as viewed)" in caplog.text


def test_malformed_xml_is_reported_and_conversion_goes_on(tmp_path, capsys):
    root = tmp_path / "VOCdevkit" / "VOC2007"
    for index in range(10):
        write_voc(root, f"img{index}", [voc_object("cat", (1, 1, 20, 20))])
    (root / "Annotations" / "img3.xml").write_text("<annotation><object>")
    (root / "JPEGImages" / "img5.jpg").unlink()
    out = tmp_path / "lines"
    code = voc_annotation.main(["--voc-root", str(tmp_path / "VOCdevkit"), "--classes", str(write_classes(tmp_path)),
                                "--out-dir", str(out), "--val-fraction", "0.2", "--test-fraction", "0.1"])
    printed = capsys.readouterr().out
    assert code == 1
    assert f"{root / 'Annotations' / 'img3.xml'}: malformed XML" in printed
    assert "no image for img5" in printed
    expected = random_split([f"img{i}" for i in range(10)], 0.2, 0.1, seed=0)
    for split in ("train", "val", "test"):
        written = [Path(a.image_path).stem for a in read_annotations(out / f"{split}.txt")[0]]
        assert written == [i for i in expected[split] if i not in ("img3", "img5")]


def write_classes(tmp_path: Path) -> Path:
    path = tmp_path / "classes.txt"
    path.write_text("\n".join(CLASSES) + "\n")
    return path


def test_random_split_is_seeded_and_disjoint():
    ids = [f"{i:03d}" for i in range(50)]
    first, again = random_split(ids, 0.2, 0.1, seed=1), random_split(list(reversed(ids)), 0.2, 0.1, seed=1)
    assert first == again
    assert [len(first[s]) for s in ("train", "val", "test")] == [35, 10, 5]
    assert sorted(first["train"] + first["val"] + first["test"]) == ids
    assert random_split(ids, 0.2, 0.1, seed=2) != first
    with pytest.raises(ValueError, match="sum below 1"):
        random_split(ids, 0.6, 0.5, seed=0)


def test_real_voc_samples_with_float_and_late_size(tmp_path):
    root = shared_dataset("voc_samples")
    classes = tmp_path / "classes.txt"
    classes.write_text("person\ndog\nchair\n")
    record = parse_voc_xml(root / "Annotations" / "2011_003353.xml", root / "JPEGImages", ["person"])
    np.testing.assert_array_equal(record.boxes, [[130, 46, 375, 470, 0]])  # ymin 45.70000076293945 rounds to 46


def test_real_bccd_splits_and_zero_area_boxes(tmp_path):
    root = shared_dataset("bccd")
    summary = convert_voc(root, ["RBC", "WBC", "Platelets"], tmp_path, progress=False)
    assert summary.images == {"test": 72, "train": 205, "trainval": 292, "val": 87}
    assert summary.counts["zero_area"] == 2 and not summary.failures


@pytest.mark.parametrize("policy, boxes, marked", [("mark", 1, 1), ("keep", 2, 0), ("drop", 1, 0)])
def test_difficult_policy_reaches_the_written_lines(tmp_path, policy, boxes, marked):
    root = tmp_path / "VOC"
    write_voc(root, "a", [voc_object("cat", (1, 1, 20, 20)), voc_object("dog", (30, 5, 50, 40), difficult=1)])
    summary = convert_voc(root, CLASSES, tmp_path / "lines", difficult=policy, val_fraction=0, test_fraction=0,
                          progress=False)
    assert summary.counts["difficult"] == 1
    annotation = read_annotations(summary.written["train"])[0][0]
    assert (len(annotation.boxes), len(annotation.difficult_boxes)) == (boxes, marked)
    if policy == "mark":
        assert summary.written["train"].read_text().strip().endswith(" 30,5,50,40,1,1")


@pytest.mark.parametrize(("objects", "size", "message"), [
    ([voc_object("cat", ("nan", 2, 30, 40))], (60, 80), r"a\.xml: object 0 has xmin 'nan', not a finite number"),
    ([voc_object("cat", (1, 2, 30, 40))], ("sixty", 80), r"a\.xml: <size> has non-numeric width/height '80' × 'sixty'"),
    ([voc_object("cat", (1, 2, 30, 40)), voc_object("dog", (50, 2, 30, 40))], (60, 80),
     r"a\.xml: object 1 \(dog\) has xmin > xmax or ymin > ymax \(50, 2, 30, 40\)"),
])
def test_xml_errors_name_the_file_and_the_object(tmp_path, objects, size, message):
    write_image(tmp_path / "JPEGImages" / "a.jpg", 60, 80)
    height, width = size
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "a.xml").write_text(
        f"<annotation><size><width>{width}</width><height>{height}</height></size>{''.join(objects)}</annotation>")
    with pytest.raises(ValueError, match=message):
        parse_voc_xml(tmp_path / "Annotations" / "a.xml", tmp_path / "JPEGImages", CLASSES)


def test_empty_annotations_and_a_class_list_matching_nothing_are_errors(tmp_path):
    (tmp_path / "empty" / "Annotations").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"empty/Annotations: no \.xml annotation files"):
        convert_voc(tmp_path / "empty", CLASSES, tmp_path / "out", progress=False)
    write_voc(tmp_path / "voc", "a", [voc_object("Cat", (1, 1, 20, 20)), voc_object("puppy", (1, 1, 20, 20))])
    with pytest.raises(ValueError, match=r"none of the dataset's object names is in the class list \(cat, dog\); "
                                         r"the names found: Cat \(1\), puppy \(1\)"):
        convert_voc(tmp_path / "voc", CLASSES, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
