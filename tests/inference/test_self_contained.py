"""A trained detector's `.keras` file alone is enough to detect: classes, anchors, box coding, input size and
thresholds travel inside it."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import nets  # noqa: F401  (registers EffYOLO's classes, as a user's `import nets` does)
import predict
from nets.detector import YoloDetector
from tests.conftest import ROOT, tiny_detector, tiny_network, write_image
from tests.scripts.test_predict_modes import tiny_run  # noqa: F401  (module fixture)
from utils.config.run_config import ModelSpec, TrainConfig, save_config
from utils.data.images import read_rgb
from utils.export.writers import compare
from utils.inference.loading import load_detector
from utils.ops.detections import Detections

# A fresh interpreter with nothing of the project imported but `nets`: what a user's script has.
LOAD_ALONE = """
import json, sys
import cv2, keras, numpy as np
import nets
detector = keras.saving.load_model(sys.argv[1])
image = cv2.cvtColor(cv2.imread(sys.argv[2], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
found = detector.detect(image)[0]
print(json.dumps({"class_names": list(detector.class_names), "box_coding": detector.decoder.box_coding,
                  "score_threshold": detector.settings.score_threshold, "boxes": found.boxes.tolist(),
                  "scores": found.scores.tolist(), "classes": found.classes.tolist()}))
"""


def test_a_keras_file_alone_detects_as_predict_does_on_the_run(tiny_run, tmp_path):  # noqa: F811
    image_path = write_image(tmp_path / "photo.png", 90, 130, seed=4)  # PNG: every decoder reads the same pixels
    assert predict.main(["image", "--run-dir", str(tiny_run), "--input", str(image_path), "--output",
                         str(tmp_path / "out.png"), "--save-json", str(tmp_path / "found.json")]) == 0
    by_predict = json.loads((tmp_path / "found.json").read_text())
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(tiny_run / "best.keras", alone / "best.keras")  # no config.json beside it
    result = subprocess.run([sys.executable, "-c", LOAD_ALONE, str(alone / "best.keras"), str(image_path)],
                            capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["class_names"] == ["cat", "dog"] and loaded["box_coding"] == "v5"
    assert loaded["score_threshold"] == 1e-5  # saved in the model: predict.py above was given no --score-threshold
    found = Detections(np.array(loaded["boxes"]).reshape(-1, 4), np.array(loaded["scores"]),
                       np.array(loaded["classes"]))
    assert 0 < len(found.scores) == len(by_predict)
    listed = Detections(np.array([[x, y, x + w, y + h] for x, y, w, h in (e["bbox"] for e in by_predict)]),
                        np.array([e["score"] for e in by_predict]), np.array([e["category_id"] for e in by_predict]))
    parity = compare([listed], [found])  # pairs by class and box: tied scores may come in either order
    assert parity.paired == len(found.scores) and parity.same_classes and parity.max_box_difference < 1e-3
    assert (found.boxes[:, 2] <= 130).all() and (found.boxes[:, 3] <= 90).all()  # the image's own pixels


def test_detect_takes_one_image_a_batch_or_images_of_any_sizes(tmp_path):
    detector = tiny_detector(num_classes=2, size=32, score_threshold=0.01)
    rng = np.random.default_rng(0)
    small, large = (rng.integers(0, 255, shape, np.uint8) for shape in ((20, 30, 3), (70, 50, 3)))
    one = detector.detect(small)
    assert len(one) == 1
    batch = detector.detect(np.stack([small, small]))
    np.testing.assert_array_equal(batch[0].boxes, batch[1].boxes)
    mixed = detector.detect([small, large])
    np.testing.assert_allclose(mixed[0].boxes, one[0].boxes)
    assert (mixed[1].boxes[:, 2] <= 50).all() and (mixed[1].boxes[:, 3] <= 70).all()
    path = tmp_path / "d.keras"
    detector.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(again.detect([small, large])[1].boxes, mixed[1].boxes)


def test_a_bare_network_of_an_earlier_version_loads_with_its_config_or_says_what_to_do(tmp_path):
    run = tmp_path / "old_run"
    run.mkdir()
    tiny_network(num_classes=2).save(run / "best.keras")
    with pytest.raises(ValueError, match="no config.json beside it"):
        load_detector(run)
    anchors = tuple((float(w), float(h)) for w, h in np.linspace(2, 30, 18).reshape(9, 2))
    spec = ModelSpec(backbone="efficientnet-b0", neck="yolov3", assigner="v3", class_names=("a", "b"),
                     anchors=anchors, input_size=32)
    save_config(TrainConfig(train="-", val="-", run_dir=str(run), model=spec), run / "config.json")
    detector = load_detector(run)
    assert isinstance(detector, YoloDetector) and detector.class_names == ("a", "b")
    np.testing.assert_allclose(np.array(detector.decoder.anchors), np.array(anchors), atol=0.005)  # 2 decimals


def test_settings_are_checked_against_the_network():
    with pytest.raises(ValueError, match="2 class names for a head of 1 classes"):
        YoloDetector.from_network(tiny_network(num_classes=1), ["a", "b"], np.ones((9, 2)))
    with pytest.raises(ValueError, match="expected 9 anchors"):
        YoloDetector.from_network(tiny_network(num_classes=1), ["a"], np.ones((6, 2)))


def test_detect_images_takes_a_file_a_folder_or_a_list(tmp_path):
    from utils.inference.files import detect_images

    detector = tiny_detector(num_classes=2, size=32, score_threshold=0.01)
    paths = [write_image(tmp_path / "photos" / "a.jpg", 40, 60), write_image(tmp_path / "photos" / "sub" / "b.png",
                                                                             50, 30, seed=1)]
    found = detect_images(detector, tmp_path / "photos")
    assert list(found) == sorted(str(p) for p in paths)
    for path, detections in found.items():
        alone = detector.detect(read_rgb(path))[0]
        np.testing.assert_allclose(detections.boxes, alone.boxes, atol=1e-3)
    assert list(detect_images(detector, paths[1])) == [str(paths[1])]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: no images"):
        detect_images(detector, tmp_path / "empty")
    assert detect_images(detector, []) == {} and detect_images(detector, []).skipped == []
    # A missing and a corrupt file among good ones are skipped and reported, not raised from inside the batching.
    corrupt = tmp_path / "photos" / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    found = detect_images(detector, [str(paths[0]), str(tmp_path / "missing.jpg"), str(corrupt), str(paths[1])])
    assert list(found) == [str(paths[0]), str(paths[1])]
    assert found.skipped == [f"{tmp_path / 'missing.jpg'}: image file not found",
                             f"{corrupt}: corrupt or not an image (decoding failed)"]


def test_detect_takes_float_gray_and_rgba_images_as_their_uint8_rgb_and_refuses_a_path():
    detector = tiny_detector(num_classes=2, size=32, score_threshold=0.01)
    image = np.random.default_rng(1).integers(0, 255, (30, 40, 3), np.uint8)
    expected = detector.detect(image)[0]
    for same in (image / 255.0, image.astype(np.float32), np.dstack([image, np.full((30, 40), 9, np.uint8)])):
        np.testing.assert_allclose(detector.detect(same)[0].boxes, expected.boxes, atol=1e-4)
    gray = image[..., 0]
    np.testing.assert_allclose(detector.detect(gray)[0].boxes, detector.detect(np.dstack([gray] * 3))[0].boxes)
    assert detector.detect(np.zeros((0, 30, 40, 3), np.uint8)) == []
    with pytest.raises(ValueError, match="is a path; detect\\(\\) takes image arrays"):
        detector.detect("photo.jpg")


def test_the_class_filter_is_a_setting_applied_inside_the_graph():
    from utils.inference.exported import ExportedDetector  # noqa: F401  (the interface both satisfy)
    from utils.inference.interface import Detector

    detector = tiny_detector(num_classes=3, size=32, score_threshold=0.01)
    assert isinstance(detector, Detector)
    image = np.random.default_rng(2).integers(0, 255, (32, 32, 3), np.uint8)
    every = detector.detect(image, detector.settings.replace(max_detections=1000))[0]
    only = detector.detect(image, detector.settings.replace(max_detections=1000, classes=("class2",)))[0]
    assert len(only.scores) and set(only.classes) == {2}
    np.testing.assert_allclose(only.boxes, every.boxes[every.classes == 2])  # class-aware NMS: the same boxes
    with pytest.raises(ValueError, match="classes horse: not among the model's classes"):
        detector.decoder_for(detector.settings.replace(classes=("horse",)))
