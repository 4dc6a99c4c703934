"""LiteRT export (float and int8), exported models run by predict.py and get_map.py, and --xla."""

import json

import numpy as np
import pytest

import get_map
import predict
from tests.conftest import write_image
from tests.test_predict_modes import tiny_run  # noqa: F401  (module fixture shared with the other export tests)


def test_litert_export_matches_and_runs_in_predict_and_get_map(tiny_run, tmp_path, capsys):  # noqa: F811
    images = [str(write_image(tmp_path / f"{i}.jpg", 60 + 8 * i, 80, seed=i)) for i in range(3)]
    out = tmp_path / "model.tflite"
    code = predict.main(["export", "--run-dir", str(tiny_run), "--format", "litert", "--output", str(out),
                         "--confidence", "1e-6", "--max-detections", "5", "--check-images", *images])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "(litert); parity on 3 images" in printed and "-> passed" in printed
    meta = json.loads((tmp_path / "model.tflite.json").read_text())
    assert meta["class_names"] == ["cat", "dog"] and meta["format"] == "litert" and meta["max_detections"] == 5
    # predict.py runs the export: the same detections as the Keras run, written as annotation lines.
    for model, name in ((tiny_run, "keras"), (out, "litert")):
        assert predict.main(["image", "--model", str(model), "--input", *images, "--output", str(tmp_path / name),
                             "--confidence", "1e-6", "--max-detections", "5", "--save-txt",
                             str(tmp_path / f"{name}.txt")]) == 0
    keras_lines = (tmp_path / "keras.txt").read_text().split("\n")
    litert_lines = (tmp_path / "litert.txt").read_text().split("\n")
    assert len(keras_lines) == len(litert_lines) and sum(line.count(",") for line in litert_lines) == 3 * 5 * 4
    # get_map.py evaluates the export on annotation lines (its own detections count as the truth here: mAP 1).
    truth = tmp_path / "truth.txt"
    truth.write_text((tmp_path / "litert.txt").read_text())
    assert get_map.main(["--model", str(out), "--annotations", str(truth), "--no-plots",
                         "--out-dir", str(tmp_path / "map"), "--confidence", "0"]) == 0
    metrics = json.loads((tmp_path / "map" / "metrics.json").read_text())
    assert metrics["map50"] == pytest.approx(1.0)
    capsys.readouterr()
    assert predict.main(["fps", "--run-dir", str(tiny_run), "--runtimes", "graph", "--batch-sizes", "1",
                         "--runs", "2", "--litert", str(out)]) == 0
    rows = [line.split("|")[1:3] for line in capsys.readouterr().out.splitlines() if line.startswith("| litert")]
    assert rows == [[" litert ", " 1 "]]


def test_int8_litert_export_completes_with_a_calibration_set(tiny_run, tmp_path, capsys):  # noqa: F811
    images = [write_image(tmp_path / "calib" / f"{i}.jpg", 64, 64, seed=i) for i in range(4)]
    calibration = tmp_path / "calibration.txt"
    calibration.write_text("\n".join(str(p) for p in images) + "\n")
    from utils.runs import load_detector

    float_bytes = 4 * load_detector(tiny_run)[0].count_params()
    out = tmp_path / "int8.tflite"
    code = predict.main(["export", "--run-dir", str(tiny_run), "--format", "litert", "--output", str(out),
                         "--check-images", str(images[0]), "--quantize", "int8", "--calibration", str(calibration)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert out.stat().st_size < 0.5 * float_bytes  # int8 weights, not float32
    assert json.loads((tmp_path / "int8.tflite.json").read_text())["quantize"] == "int8"
    assert "calibrating int8 on 4 images" in printed and "reported (quantized: judged by mAP)" in printed
    with pytest.raises(ValueError, match="needs --calibration"):
        predict.main(["export", "--run-dir", str(tiny_run), "--format", "litert", "--output",
                      str(tmp_path / "x.tflite"), "--quantize", "int8"])


def test_xla_and_graph_detectors_agree(tiny_run):  # noqa: F811
    from utils.inference import Detector

    image = np.random.default_rng(3).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    graph = Detector(tiny_run, confidence=1e-6, max_detections=5).detect_rgb(image)
    xla = Detector(tiny_run, confidence=1e-6, max_detections=5, jit_compile=True).detect_rgb(image)
    assert len(graph.scores) == 5
    np.testing.assert_allclose(xla.boxes, graph.boxes, atol=1e-3)
    np.testing.assert_array_equal(xla.classes, graph.classes)
