"""The whole user path on a tiny synthetic set: convert → train → get_map → predict."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import get_map
import predict
import train
import voc_annotation
from tests.conftest import ROOT
from utils.config.run_config import DEFAULT_ANCHORS_FILE
from utils.data.annotations import read_annotations
from utils.training.plots import read_csv_log


@pytest.mark.heavy
@pytest.mark.slow
def test_convert_train_evaluate_predict(shapes_voc, tmp_path, capsys):
    lines = tmp_path / "lines"
    classes = str(shapes_voc / "classes.txt")
    assert voc_annotation.main(["--voc-root", str(shapes_voc), "--classes", classes, "--out-dir", str(lines),
                                "--val-fraction", "0.25", "--test-fraction", "0"]) == 0
    assert len(read_annotations(lines / "train.txt")[0]) == 18 and len(read_annotations(lines / "val.txt")[0]) == 6

    run = tmp_path / "run"
    # The default head, decoupled (the anchor head's runs are trained by the tests of resume and the v5 coding).
    command = ["--train", str(lines / "train.txt"), "--val", str(lines / "val.txt"), "--classes", classes,
               "--backbone", "cspdarknet-n", "--input-size", "64", "--batch-size", "6", "--run-dir", str(run)]
    previous_umask = os.umask(0o022)
    try:  # the fine-tuning recipe: a frozen first epoch, then all; the weight average evaluated in both phases
        assert train.main([*command, "--epochs", "2", "--freeze-epochs", "1", "--ema"]) == 0
    finally:
        os.umask(previous_umask)
    for name in ("config.json", "best.keras", "last.keras", "training_log.csv", "training.png",
                 "augmented_samples.jpg"):
        assert (run / name).is_file(), name
        assert (run / name).stat().st_mode & 0o777 == 0o644, name  # the umask's mode: a shared run stays readable
    log = read_csv_log(run / "training_log.csv")
    assert log["epoch"] == [0.0, 1.0] and all(np.isfinite(log["loss"])) and all(np.isfinite(log["val_map50"]))
    assert all(np.isfinite(log["dfl_loss"])) and "objectness_loss" not in log  # the decoupled head's loss parts
    saved = json.loads((run / "config.json").read_text())
    assert (saved["model"]["head"], saved["model"]["assigner"], saved["loss"]["box_gain"]) == ("decoupled", "tal", 7.5)
    assert (run / "resume" / "ema.npz").is_file()
    # A checkpoint written by training loads in a fresh interpreter with `import nets` alone (no optimizer,
    # schedule or loss classes needed) and knows its classes.
    loaded = subprocess.run([sys.executable, "-c", "import sys, keras, nets; print(keras.saving.load_model("
                             "sys.argv[1]).class_names)", str(run / "best.keras")], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert loaded.returncode == 0 and "('circle', 'square', 'triangle')" in loaded.stdout, loaded.stderr[-2000:]
    best_before = (run / "best.keras").stat().st_mtime_ns
    saved_config = (run / "config.json").read_bytes()

    # Rerunning with other settings refuses before writing anything: other epochs, reordered classes.
    reordered = tmp_path / "reordered.txt"
    reordered.write_text("square\ncircle\ntriangle\n")
    for changed, field in ((["--epochs", "3", "--freeze-epochs", "1", "--ema"], "epochs: 2 → 3"),
                           (["--epochs", "2", "--freeze-epochs", "1", "--ema", "--classes", str(reordered)],
                            "model.class_names: ['circle', 'square', 'triangle'] → ['square', 'circle', 'triangle']")):
        with pytest.raises(ValueError, match="holds a run with other settings") as refused:
            train.main([*command, *changed])
        assert field in str(refused.value) and f"python train.py --resume {run}" in str(refused.value)
        assert (run / "config.json").read_bytes() == saved_config

    # --resume with training overrides continues: up to 5 epochs, but within a time budget spent by the first
    # epoch it trains, so only epoch 3 runs (and is evaluated as the last); the log grows by one row. A temporary
    # file left by a kill during a save is cleared first.
    orphan = run / ".best.1a2b3c4d.keras"
    orphan.write_bytes(b"partial")
    assert train.main(["--resume", str(run), "--epochs", "5", "--time-limit", "0.001"]) == 0
    assert not orphan.exists()
    resumed = read_csv_log(run / "training_log.csv")
    assert resumed["epoch"] == [0.0, 1.0, 2.0]
    assert (run / "last.keras").stat().st_mtime_ns > best_before
    # best.keras is replaced only if epoch 3 beats the best score logged before the resume.
    improved = resumed["val_map50"][2] > max(resumed["val_map50"][:2])
    assert ((run / "best.keras").stat().st_mtime_ns != best_before) == improved
    config = json.loads((run / "config.json").read_text())
    assert json.loads((run / "resume" / "time_budget.json").read_text())["epoch"] == 3
    assert config["model"]["class_names"] == ["circle", "square", "triangle"] and config["epochs"] == 5
    assert config["model"]["input_size"] == 64 and len(config["model"]["anchors"]) == 9

    assert get_map.main(["--run-dir", str(run), "--annotations", str(lines / "val.txt")]) == 0
    metrics = json.loads((run / "map" / "metrics.json").read_text())
    assert 0.0 <= metrics["map50"] <= 1.0 and 0.0 <= metrics["map50_95"] <= metrics["map50"] + 1e-9
    assert set(metrics["per_class"]) == {"circle", "square", "triangle"}
    assert all((run / "map" / name).is_file() for name in metrics["outputs"])
    # The detections it saved, scored again in --detections mode, give the same figures.
    assert get_map.main(["--detections", str(run / "map" / "detections.json"), "--annotations",
                         str(lines / "val.txt"), "--classes", classes, "--out-dir", str(tmp_path / "again"),
                         "--no-plots"]) == 0
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    for key in ("map50", "map50_95", "voc07_map50", "errors"):
        assert again[key] == pytest.approx(metrics[key], abs=1e-12), key

    image = read_annotations(lines / "val.txt")[0][0].image_path
    out = tmp_path / "pred.png"
    assert predict.main(["image", "--run-dir", str(run), "--input", image, "--output", str(out),
                         "--score-threshold", "0.0001"]) == 0
    assert out.is_file() and out.stat().st_size > 0
    assert f"-> {out}" in capsys.readouterr().out


@pytest.mark.slow
def test_one_batch_fit_loss_decreases(shapes_voc):
    """The v3 loss through the detector's own compile and fit, on real pipeline batches."""
    import keras

    from nets.detector import YoloDetector
    from nets.yolo import build_yolo
    from utils.data.annotations import read_anchors
    from utils.data.pipeline import build_dataset
    from utils.data.voc import convert_voc

    summary = convert_voc(shapes_voc, ["circle", "square", "triangle"], shapes_voc / "lines", progress=False)
    annotations = read_annotations(summary.written["train"])[0][:4]
    images, boxes = next(iter(build_dataset(annotations, (64, 64), 4, training=False)))
    anchors = read_anchors(DEFAULT_ANCHORS_FILE) * 64 / 416
    network = build_yolo("shufflenetv2-x1.0", "yolov3", 3, input_shape=(64, 64, 3))
    detector = YoloDetector.from_network(network, ["circle", "square", "triangle"], anchors, "v3")
    detector.compile(keras.optimizers.Adam(1e-3))
    history = detector.fit(images, boxes, epochs=15, batch_size=4, verbose=0).history["loss"]
    assert all(np.isfinite(history))
    assert history[-1] < 0.5 * history[0]


def test_predict_names_a_corrupt_image_before_loading_any_model(tmp_path):
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(ValueError, match=f"no readable image among the inputs:\n  {corrupt}: corrupt or not an image"):
        predict.main(["image", "--run-dir", str(tmp_path / "no_run"), "--input", str(corrupt),
                      "--output", str(tmp_path / "out.png")])
    with pytest.raises(ValueError, match="missing.jpg: image file not found"):
        predict.main(["image", "--run-dir", str(tmp_path), "--input", str(tmp_path / "missing.jpg"),
                      "--output", str(tmp_path / "out.png")])


@pytest.mark.heavy
@pytest.mark.slow
def test_yolov5_run_with_shufflenet_is_scored_with_its_own_box_coding(shapes_voc, tmp_path):
    lines = tmp_path / "lines"
    classes = str(shapes_voc / "classes.txt")
    assert voc_annotation.main(["--voc-root", str(shapes_voc), "--classes", classes, "--out-dir", str(lines),
                                "--val-fraction", "0.25", "--test-fraction", "0"]) == 0
    run = tmp_path / "run_v5"
    assert train.main(["--train", str(lines / "train.txt"), "--val", str(lines / "val.txt"), "--classes", classes,
                       "--backbone", "shufflenetv2-x0.5-stemblock", "--neck", "yolov5", "--assigner", "v5",
                       "--input-size", "64", "--epochs", "2", "--batch-size", "6", "--lr", "5e-3",
                       "--nominal-batch-size", "0",
                       "--run-dir", str(run)]) == 0
    model = json.loads((run / "config.json").read_text())["model"]
    assert (model["backbone"], model["neck"], model["assigner"]) == ("shufflenetv2-x0.5-stemblock", "yolov5", "v5")
    assert get_map.main(["--run-dir", str(run), "--annotations", str(lines / "val.txt")]) == 0
    metrics = json.loads((run / "map" / "metrics.json").read_text())
    # get_map (best.keras reloaded, decoded with the run's coding) reproduces the best in-training score.
    logged = read_csv_log(run / "training_log.csv")
    best_epoch = int(np.nanargmax(logged["val_map50"]))
    assert metrics["map50"] == pytest.approx(logged["val_map50"][best_epoch], abs=2e-3)
