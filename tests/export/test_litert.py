"""LiteRT export (float and int8), exported models run by predict.py and get_map.py, and --xla."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

import get_map
import predict
from tests.conftest import spread_untrained_logits, write_image
from tests.scripts.test_predict_modes import tiny_run  # noqa: F401  (module fixture shared with the other export tests)


@pytest.mark.slow
def test_litert_export_matches_and_runs_in_predict_and_get_map(tiny_run, tmp_path, capsys):  # noqa: F811
    images = [str(write_image(tmp_path / f"{i}.jpg", 60 + 8 * i, 80, seed=i)) for i in range(3)]
    out = tmp_path / "model.tflite"
    code = predict.main(["export", "--run-dir", str(tiny_run), "--format", "litert", "--output", str(out),
                         "--score-threshold", "1e-6", "--max-detections", "5", "--check-images", *images])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "parity on 3 images" in printed and "-> passed" in printed and f"exported {out} (litert)" in printed
    meta = json.loads((tmp_path / "model.tflite.json").read_text())
    assert meta["class_names"] == ["cat", "dog"] and meta["format"] == "litert"
    assert meta["settings"]["max_detections"] == 5 and meta["settings"]["score_threshold"] == 1e-6
    # predict.py runs the export: the same detections as the Keras run, written as annotation lines.
    for model, name in ((tiny_run, "keras"), (out, "litert")):
        assert predict.main(["image", "--model", str(model), "--input", *images, "--output", str(tmp_path / name),
                             "--score-threshold", "1e-6", "--max-detections", "5", "--save-txt",
                             str(tmp_path / f"{name}.txt")]) == 0
    keras_lines = (tmp_path / "keras.txt").read_text().split("\n")
    litert_lines = (tmp_path / "litert.txt").read_text().split("\n")
    assert len(keras_lines) == len(litert_lines) and sum(line.count(",") for line in litert_lines) == 3 * 5 * 4
    # get_map.py evaluates the export on annotation lines (its own detections count as the truth here: mAP 1).
    truth = tmp_path / "truth.txt"
    truth.write_text((tmp_path / "litert.txt").read_text())
    assert get_map.main(["--model", str(out), "--annotations", str(truth), "--no-plots",
                         "--out-dir", str(tmp_path / "map"), "--pr-score", "0"]) == 0
    metrics = json.loads((tmp_path / "map" / "metrics.json").read_text())
    assert metrics["map50"] == pytest.approx(1.0)
    capsys.readouterr()
    assert predict.main(["fps", "--run-dir", str(tiny_run), "--runtimes", "graph", "--batch-sizes", "1",
                         "--runs", "2", "--litert", str(out)]) == 0
    rows = [line.split("|")[1:3] for line in capsys.readouterr().out.splitlines() if line.startswith("| litert")]
    assert rows == [[" litert ", " 1 "]]


def export_map(printed: str) -> float:
    """The export's mAP@.5 from `predict.py export --annotations`' summary line."""
    return float(re.search(r"export (\d\.\d+) /", printed).group(1))


@pytest.mark.heavy
@pytest.mark.slow
def test_quantized_litert_exports_keep_the_keras_detections(tiny_run, tmp_path, capsys):  # noqa: F811
    images = [str(write_image(tmp_path / "calib" / f"{i}.jpg", 60 + 8 * i, 80, seed=i)) for i in range(6)]
    calibration = tmp_path / "calibration.txt"
    calibration.write_text("\n".join(images) + "\n")
    common = ["--run-dir", str(tiny_run), "--score-threshold", "1e-6", "--max-detections", "5"]
    # The Keras model's own top-5 detections are the truth each export is scored against (Keras: mAP 1).
    truth = tmp_path / "keras.txt"
    assert predict.main(["image", *common, "--input", *images, "--output", str(tmp_path / "keras"),
                         "--save-txt", str(truth)]) == 0
    from utils.inference.loading import load_detector

    float_bytes = 4 * load_detector(tiny_run).count_params()
    capsys.readouterr()
    out = tmp_path / "fp16.tflite"
    assert predict.main(["export", *common, "--format", "litert", "--output", str(out), "--check-images", images[0],
                         "--quantize", "fp16", "--annotations", str(truth)]) == 0
    printed = capsys.readouterr().out
    assert "Keras 1.0000 / 1.0000" in printed and export_map(printed) > 0.99, printed
    assert out.stat().st_size < 0.6 * float_bytes  # float16 weights

    out = tmp_path / "int8.tflite"
    code = predict.main(["export", *common, "--format", "litert", "--output", str(out), "--check-images", images[0],
                         "--quantize", "int8", "--calibration", str(calibration), "--annotations", str(truth),
                         "--max-map-drop", "0.5"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "calibrating int8 on 6 images" in printed and "reported (quantized: judged by mAP)" in printed
    # int8 inside the model only: 0.70 on this untrained model with deliberately spread logits. Quantising the
    # decoding as well (box sizes in steps of thousands of pixels) gave 0.26.
    assert export_map(printed) > 0.5, printed
    assert out.stat().st_size < 0.35 * float_bytes  # int8 weights
    assert json.loads((tmp_path / "int8.tflite.json").read_text())["quantize"] == "int8"
    assert not list(tmp_path.glob(".*partial*"))  # checked beside, then moved into place
    # A quantized export has a verdict only from labelled images: without them it is refused (or explicitly
    # unchecked), before any conversion.
    with pytest.raises(ValueError, match="give --annotations FILE"):
        predict.main(["export", "--run-dir", str(tiny_run), "--format", "litert", "--output",
                      str(tmp_path / "x.tflite"), "--quantize", "fp16"])
    with pytest.raises(ValueError, match="needs --calibration"):
        predict.main(["export", "--run-dir", str(tiny_run), "--format", "litert", "--output",
                      str(tmp_path / "x.tflite"), "--quantize", "int8", "--no-check"])
    assert not (tmp_path / "x.tflite").exists()


def test_xla_and_graph_detectors_agree(tiny_run):  # noqa: F811
    from utils.inference.loading import load_detector

    image = np.random.default_rng(3).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    detector = load_detector(tiny_run)
    settings = detector.settings.replace(score_threshold=1e-6, max_detections=5)
    (graph,) = detector.detect(image, settings)
    (xla,) = detector.detect(image, settings.replace(xla=True))
    assert len(graph.scores) == 5
    np.testing.assert_allclose(xla.boxes, graph.boxes, atol=1e-3)
    np.testing.assert_array_equal(xla.classes, graph.classes)


def export_with_parity(detector, tmp_path, capsys, name: str) -> Path:
    """Save `detector` as a run, export it to LiteRT through predict.py with its parity check on three images, and
    assert the check found the Keras detections again to 0 px; the export's path."""
    run = tmp_path / f"{name}_run"
    run.mkdir()
    detector.save(run / "best.keras")
    images = [str(write_image(tmp_path / f"{i}.jpg", 60 + 8 * i, 80, seed=i)) for i in range(3)]
    out = tmp_path / f"{name}.tflite"
    assert predict.main(["export", "--run-dir", str(run), "--format", "litert", "--output", str(out),
                         "--score-threshold", "1e-5", "--max-det", "5", "--check-images", *images]) == 0
    printed = capsys.readouterr().out
    assert "max box difference 0.000 px" in printed and "-> passed" in printed, printed
    return out


def test_the_decoupled_head_exports_with_parity(tmp_path, capsys):
    """An anchor-free decoupled detector (DFL decoding, no anchors) goes through the same export: LiteRT builtins
    only (the strictest of the three converters), its parity 0 px against the Keras model."""
    import keras

    from nets.detector import YoloDetector
    from nets.yolo import build_yolo
    from utils.config.detect_config import DetectConfig

    keras.utils.set_random_seed(0)
    network = build_yolo("shufflenetv2-x0.5", "yolov5", 2, input_shape=(64, 64, 3), head="decoupled")
    detector = YoloDetector.from_network(network, ("cat", "dog"), (), "dfl", DetectConfig(score_threshold=1e-5))
    out = export_with_parity(detector, tmp_path, capsys, "decoupled")
    assert json.loads(out.with_suffix(".tflite.json").read_text())["box_coding"] == "dfl"


def test_a_cspdarknet_detector_exports_with_parity(tmp_path, capsys):
    """YOLOv5's own backbone starts with a scalar rescaling, so nothing after the letterbox's computed padding
    restated the channel count to the converter: the letterbox now reshapes its canvas to the static input size."""
    import keras

    from nets.detector import YoloDetector
    from nets.yolo import build_yolo
    from utils.config.detect_config import DetectConfig

    keras.utils.set_random_seed(0)
    network = build_yolo("cspdarknet-n", "yolov5", 2, input_shape=(64, 64, 3))
    spread_untrained_logits(network)
    detector = YoloDetector.from_network(network, ("cat", "dog"), np.linspace(4, 60, 18).reshape(9, 2), "v5",
                                         DetectConfig(score_threshold=1e-5))
    export_with_parity(detector, tmp_path, capsys, "cspdarknet")
