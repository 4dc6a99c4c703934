"""get_map.py --detections: a COCO results file scored against annotation lines, with every output written."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import get_map
from tests.conftest import write_image
from tests.evaluation.test_metrics import HAND_DETECTIONS, HAND_TRUTH
from utils.data.annotations import format_line, read_annotations
from utils.evaluation.report import PLOT_FILES
from utils.ops.detections import read_results_json, results_to_json


@pytest.fixture
def hand_case(tmp_path):
    """The hand-worked case of test_map as files: two images, annotation lines with a difficult marker, a class
    list and a results file (image A by line index, image B by path)."""
    paths = [str(write_image(tmp_path / "images" / f"{name}.jpg", 80, 80, seed)) for seed, name in enumerate("AB")]
    lines = [format_line(path, truth[truth[:, 5] == 0, :5], truth[truth[:, 5] == 1, :5])
             for path, truth in zip(paths, HAND_TRUTH, strict=True)]
    annotations = tmp_path / "test.txt"
    annotations.write_text("\n".join(lines) + "\n")
    classes = tmp_path / "classes.txt"
    classes.write_text("cell\nblob\n")
    entries = results_to_json(HAND_DETECTIONS, [0, paths[1]])
    detections = tmp_path / "results.json"
    detections.write_text(json.dumps(entries))
    return {"annotations": annotations, "classes": classes, "detections": detections, "paths": paths,
            "entries": entries}


def test_detections_mode_scores_the_hand_case_and_writes_every_output(hand_case, tmp_path):
    out = tmp_path / "map"
    assert get_map.main(["--detections", str(hand_case["detections"]), "--annotations",
                         str(hand_case["annotations"]), "--classes", str(hand_case["classes"]),
                         "--out-dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["map50"] == pytest.approx(13 / 18, abs=1e-12)  # class "blob" has no ground truth: not averaged
    assert metrics["voc07_map50"] == pytest.approx(8 / 11, abs=1e-12)
    assert metrics["per_class"]["cell"]["difficult"] == 1 and metrics["per_class"]["cell"]["ground_truth"] == 3
    assert metrics["errors"] == {"true_positive": 3, "duplicate": 1, "class_confusion": 1, "localisation": 1,
                                 "background": 1, "false_positives": 4, "missed": 0}
    assert metrics["confusion_matrix"]["counts"] == [[3, 1, 0], [0, 0, 0], [3, 0, 0]]
    assert metrics["outputs"] == ["metrics.json", "per_class.md", *PLOT_FILES]
    for name in PLOT_FILES:
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[0] > 100 and image.shape[1] > 100, name
    table = (out / "per_class.md").read_text()
    assert "| cell | 3 | 0.7222 | 0.7273 |" in table and "duplicate 1 (25%)" in table


def test_line_indices_skip_blank_lines_and_paths_must_be_annotated(hand_case, tmp_path):
    paths = hand_case["paths"]
    one = [{"image_id": 2, "category_id": 0, "bbox": [0, 0, 20, 20], "score": 0.9}]
    # Line 2 (0-based) is image B when a blank line sits between the two.
    found = read_results_json(write_json(tmp_path, one), paths, 2, line_indices=[0, 2])
    assert len(found[0].scores) == 0 and found[1].boxes.tolist() == [[0, 0, 20, 20]]
    with pytest.raises(ValueError, match=r"results.json: entry 0 has image_id 1, which is neither"):
        read_results_json(write_json(tmp_path, [{**one[0], "image_id": 1}]), paths, 2, line_indices=[0, 2])


@pytest.mark.parametrize("entry, message", [
    ({"image_id": "other.jpg", "category_id": 0, "bbox": [0, 0, 1, 1], "score": 0.5}, "not an image path"),
    ({"image_id": 0, "category_id": 2, "bbox": [0, 0, 1, 1], "score": 0.5}, "category_id outside the 2 class"),
    ({"image_id": 0, "category_id": 0, "bbox": [0, 0, -1, 1], "score": 0.5}, "negative width or height"),
    ({"image_id": 0, "category_id": 0, "bbox": [0, 0, 1], "score": 0.5}, r"is not \[x, y, w, h\]"),
    ({"image_id": 0, "bbox": [0, 0, 1, 1], "score": 0.5}, "lacks category_id"),
    ({"image_id": 0, "category_id": 0, "bbox": [0, 0, 1, 1], "score": "high"}, "must be numbers"),
])
def test_bad_results_entries_name_the_file_and_the_problem(tmp_path, entry, message):
    with pytest.raises(ValueError, match=f"results.json: .*{message}"):
        read_results_json(write_json(tmp_path, [entry]), ["a.jpg"], 2)


def test_results_file_that_is_not_a_list(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{"image_id": 0}')
    with pytest.raises(ValueError, match="results.json: expected a JSON list"):
        read_results_json(path, ["a.jpg"], 2)
    path.write_text("[{")
    with pytest.raises(ValueError, match="results.json: not valid JSON"):
        read_results_json(path, ["a.jpg"], 2)


def test_round_trip_through_the_results_format(hand_case):
    found = read_results_json(hand_case["detections"], hand_case["paths"], 2)
    for ours, original in zip(found, HAND_DETECTIONS, strict=True):
        np.testing.assert_allclose(ours.boxes, original.boxes)
        np.testing.assert_allclose(ours.scores, original.scores)
        np.testing.assert_array_equal(ours.classes, original.classes)


def test_detections_mode_needs_a_class_list(hand_case):
    with pytest.raises(ValueError, match="--detections needs --classes"):
        get_map.main(["--detections", str(hand_case["detections"]), "--annotations", str(hand_case["annotations"])])


def write_json(folder, entries):
    path = folder / "results.json"
    path.write_text(json.dumps(entries))
    return path


def test_results_written_with_absolute_paths_match_lines_typed_relative_and_the_reverse(hand_case, tmp_path,
                                                                                          monkeypatch):
    """predict.py --save-json writes absolute paths; annotation lines may list paths relative to where they are
    used: both sides are resolved."""
    monkeypatch.chdir(tmp_path)
    relative = [str(Path(p).relative_to(tmp_path)) for p in hand_case["paths"]]
    lines = tmp_path / "relative.txt"
    lines.write_text(hand_case["annotations"].read_text().replace(hand_case["paths"][0], relative[0])
                     .replace(hand_case["paths"][1], relative[1]))
    entries = results_to_json(HAND_DETECTIONS, hand_case["paths"])  # absolute
    (tmp_path / "absolute.json").write_text(json.dumps(entries))
    annotations = read_annotations(lines)[0]
    assert [a.image_path for a in annotations] == relative
    by_absolute = read_results_json(tmp_path / "absolute.json", relative, 2)
    assert [len(d.scores) for d in by_absolute] == [len(d.scores) for d in HAND_DETECTIONS]
    (tmp_path / "relative.json").write_text(json.dumps(results_to_json(HAND_DETECTIONS, relative)))
    by_relative = read_results_json(tmp_path / "relative.json", hand_case["paths"], 2)
    assert [len(d.scores) for d in by_relative] == [len(d.scores) for d in HAND_DETECTIONS]


def test_a_class_id_beyond_the_class_list_is_a_named_error(hand_case, tmp_path):
    lines = tmp_path / "wrong_ids.txt"
    lines.write_text(hand_case["annotations"].read_text().replace(" 0,0,20,20,0", " 0,0,20,20,7"))
    with pytest.raises(ValueError, match=rf"{lines}:2: class id 7"):
        get_map.main(["--detections", str(hand_case["detections"]), "--annotations", str(lines), "--classes",
                      str(hand_case["classes"]), "--out-dir", str(tmp_path / "map"), "--no-plots"])
