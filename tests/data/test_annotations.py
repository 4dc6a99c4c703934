import numpy as np
import pytest

from utils.data.annotations import format_line, parse_line, read_anchors, read_annotations, read_class_names


def test_path_with_spaces_and_boxes():
    annotation = parse_line("/data/my images/a b.jpg 1,2,30,40,0 5,6,7,8,2")
    assert annotation.image_path == "/data/my images/a b.jpg"
    np.testing.assert_array_equal(annotation.boxes, [[1, 2, 30, 40, 0], [5, 6, 7, 8, 2]])


def test_negative_image_has_no_boxes():
    annotation = parse_line("/data/empty.jpg")
    assert annotation.image_path == "/data/empty.jpg" and annotation.boxes.shape == (0, 5)


def test_round_trip():
    boxes = np.array([[1, 2, 30, 40, 0], [5, 6, 7, 8, 2]], np.float32)
    line = format_line("/x y/z.png", boxes)
    assert line == "/x y/z.png 1,2,30,40,0 5,6,7,8,2"
    np.testing.assert_array_equal(parse_line(line).boxes, boxes)


def test_difficult_marker_round_trip_and_ground_truth():
    annotation = parse_line("/a.jpg 1,2,30,40,0 5,6,7,8,2,1 9,9,20,20,1,0")
    np.testing.assert_array_equal(annotation.boxes, [[1, 2, 30, 40, 0], [9, 9, 20, 20, 1]])
    np.testing.assert_array_equal(annotation.difficult_boxes, [[5, 6, 7, 8, 2]])
    np.testing.assert_array_equal(annotation.ground_truth(),
                                  [[1, 2, 30, 40, 0, 0], [9, 9, 20, 20, 1, 0], [5, 6, 7, 8, 2, 1]])
    line = format_line(annotation.image_path, annotation.boxes, annotation.difficult_boxes)
    assert line == "/a.jpg 1,2,30,40,0 9,9,20,20,1 5,6,7,8,2,1"
    with pytest.raises(ValueError, match="unparsable box '1,2,3,4,0,2'"):
        parse_line("/a.jpg 1,2,3,4,0 1,2,3,4,0,2")  # the marker is 0 or 1


def test_bad_token_after_boxes_names_the_source():
    with pytest.raises(ValueError, match=r"train.txt:3: unparsable box '1,2,3': expected x1,y1,x2,y2,class"):
        parse_line("/a.jpg 1,2,3,4,0 1,2,3", source="train.txt:3")


def test_read_annotations_collects_problems(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("/a.jpg 1,2,3,4,0\n/b.jpg 1,2,3,4,0 oops\n\n")
    annotations, problems = read_annotations(path, strict=False)
    assert [a.image_path for a in annotations] == ["/a.jpg"]
    assert problems == [f"{path}:2: unparsable box 'oops': expected x1,y1,x2,y2,class (or x1,y1,x2,y2,class,1)"]
    with pytest.raises(ValueError, match=":2:"):
        read_annotations(path, strict=True)


def test_empty_files_are_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ValueError, match="empty.txt: annotation file is empty"):
        read_annotations(tmp_path / "empty.txt")
    (tmp_path / "classes.txt").write_text("")
    with pytest.raises(ValueError, match="class list is empty"):
        read_class_names(tmp_path / "classes.txt")


def test_anchors_sorted_by_area(tmp_path):
    (tmp_path / "anchors.txt").write_text("30,61, 10,13\n16,30\n")
    np.testing.assert_array_equal(read_anchors(tmp_path / "anchors.txt"), [[10, 13], [16, 30], [30, 61]])


def test_a_byte_order_mark_is_not_part_of_the_first_class_or_path(tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_bytes("date\nfig\n".encode("utf-8-sig"))
    assert read_class_names(classes) == ["date", "fig"]
    lines = tmp_path / "lines.txt"
    lines.write_bytes("/a.jpg 1,2,3,4,0\n".encode("utf-8-sig"))
    assert read_annotations(lines)[0][0].image_path == "/a.jpg"
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin\.txt: not UTF-8 text"):
        read_class_names(latin)


def test_class_ids_beyond_the_class_list_name_file_line_and_id(tmp_path):
    from utils.data.annotations import check_class_ids

    lines = tmp_path / "train.txt"
    lines.write_text("/a.jpg 1,2,3,4,0\n\n/b.jpg 1,2,3,4,1 1,2,3,4,5\n")
    annotations = read_annotations(lines)[0]
    check_class_ids(annotations, 6, lines)
    with pytest.raises(ValueError, match=rf"1 boxes have a class id outside the class list of 3 classes \(ids 0–2\):"
                                         rf"\n  {lines}:3: class id 5"):
        check_class_ids(annotations, 3, lines)
