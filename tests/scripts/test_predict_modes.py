"""predict.py dir and video modes and the common output flags, on a tiny untrained detector."""

import json

import cv2
import numpy as np
import pytest

import predict
from tests.conftest import spread_untrained_logits, write_image
from utils.data.annotations import read_annotations


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run directory with an untrained ShuffleNet-x0.5 + YOLOv5 detector at 64 px and two classes, saved with a
    score threshold of 1e-5 (what `predict.py` uses when no --score-threshold is given)."""
    import keras

    from nets.detector import YoloDetector
    from nets.yolo import build_yolo
    from utils.config.detect_config import DetectConfig
    from utils.config.run_config import ModelSpec, TrainConfig, save_config

    keras.utils.set_random_seed(0)  # fixed weights: the exports are compared on the same, reproducible scores
    run = tmp_path_factory.mktemp("tiny_run")
    anchors = tuple((float(w), float(h)) for w, h in np.linspace(4, 60, 18).reshape(9, 2))
    spec = ModelSpec(backbone="shufflenetv2-x0.5", neck="yolov5", class_names=("cat", "dog"), anchors=anchors,
                     input_size=64, assigner="v5")
    save_config(TrainConfig(train="-", val="-", run_dir=str(run), model=spec), run / "config.json")
    model = build_yolo(spec.backbone, spec.neck, 2, input_shape=spec.input_shape)
    spread_untrained_logits(model)
    detector = YoloDetector.from_network(model, spec.class_names, spec.anchor_array(), "v5",
                                         DetectConfig(score_threshold=1e-5))
    detector.save(run / "best.keras")
    return run


def test_dir_mode_mirrors_folders_and_writes_every_output(tiny_run, tmp_path, capsys):
    source = tmp_path / "photos"
    paths = [write_image(source / "a.jpg", 60, 80), write_image(source / "b.png", 50, 50, seed=1),
             write_image(source / "sub" / "c.jpg", 70, 40, seed=2)]
    (source / "notes.txt").write_text("not an image")
    out = tmp_path / "predicted"
    assert predict.main(["dir", "--run-dir", str(tiny_run), "--input", str(source), "--output", str(out),
                         "--score-threshold", "1e-6", "--classes", "dog", "--crop", "--count",
                         "--save-json", str(tmp_path / "d.json"), "--save-txt", str(tmp_path / "d.txt")]) == 0
    for path in paths:
        assert (out / path.relative_to(source)).is_file()
    entries = json.loads((tmp_path / "d.json").read_text())
    assert entries and {e["category_id"] for e in entries} == {1}  # only "dog"
    assert {e["image_id"] for e in entries} <= {str(p) for p in paths}
    lines = read_annotations(tmp_path / "d.txt")[0]
    assert [a.image_path for a in lines] == sorted(str(p) for p in paths)
    assert sum(len(a.boxes) for a in lines) == len(entries)
    counts = json.loads((out / "counts.json").read_text())
    assert counts["total"] == {"cat": 0, "dog": len(entries)}
    assert sum(n["dog"] for n in counts["per_image"].values()) == len(entries) and len(counts["per_image"]) == 3
    crops = list((out / "crops" / "dog").glob("*.jpg"))
    assert 0 < len(crops) <= len(entries) and not (out / "crops" / "cat").exists()
    assert f"total: dog {len(entries)}" in capsys.readouterr().out


def test_dir_mode_skips_unreadable_files_lists_them_and_fails_only_when_nothing_is_readable(tiny_run, tmp_path,
                                                                                           capsys):
    source = tmp_path / "photos"
    good = write_image(source / "a.jpg", 60, 80)
    broken = source / "b.jpg"
    broken.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # truncated: the header still reads
    (source / "c.png").write_bytes(b"not a png")
    out = tmp_path / "predicted"
    assert predict.main(["dir", "--run-dir", str(tiny_run), "--input", str(source), "--output", str(out),
                         "--score-threshold", "1e-6"]) == 0
    assert (out / "a.jpg").is_file() and not (out / "b.jpg").exists()
    printed = capsys.readouterr().out
    assert (f"skipped 2 unreadable images:\n  {broken}: corrupt or not an image (decoding failed)\n"
            f"  {source / 'c.png'}: corrupt or not an image (decoding failed)") in printed
    good.unlink()
    with pytest.raises(ValueError, match="no readable image among the inputs"):
        predict.main(["dir", "--run-dir", str(tiny_run), "--input", str(source), "--output", str(out)])


def test_video_mode_writes_every_frame_at_the_source_fps(tiny_run, tmp_path):
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 12.0, (80, 64))
    for frame in range(7):
        image = np.full((64, 80, 3), 40, np.uint8)
        cv2.rectangle(image, (5 + 5 * frame, 10), (30 + 5 * frame, 40), (0, 200, 255), -1)
        writer.write(image)
    writer.release()
    out = tmp_path / "out" / "detected.mp4"
    assert predict.main(["video", "--run-dir", str(tiny_run), "--input", str(clip), "--output", str(out),
                         "--score-threshold", "1e-6", "--show", "--count", "--max-det", "2"]) == 0
    written = cv2.VideoCapture(str(out))
    assert written.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 7
    ok, frame = written.read()
    assert ok and frame.shape == (64, 80, 3)
    assert not list(out.parent.glob(".*partial*"))  # written beside, then renamed
    counts = json.loads((out.parent / "detected_counts.json").read_text())
    assert list(counts["per_frame"]) == [str(i) for i in range(1, 8)]  # at most 2 detections a frame (--max-det)
    assert sum(counts["total"].values()) == sum(sum(frame.values()) for frame in counts["per_frame"].values()) <= 14


def test_bad_inputs_are_named(tiny_run, tmp_path):
    with pytest.raises(ValueError, match="classes horse: not among the model's classes"):
        predict.main(["dir", "--run-dir", str(tiny_run), "--input", str(write_image(tmp_path / "x" / "a.jpg").parent),
                      "--output", str(tmp_path / "o"), "--classes", "horse"])
    with pytest.raises(FileNotFoundError, match="nothing.mp4: cannot open"):
        predict.main(["video", "--run-dir", str(tiny_run), "--input", str(tmp_path / "nothing.mp4"),
                      "--output", str(tmp_path / "o.mp4")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: no images"):
        predict.main(["dir", "--run-dir", str(tiny_run), "--input", str(tmp_path / "empty"),
                      "--output", str(tmp_path / "o")])


def test_fps_prints_a_row_per_runtime_and_batch(tiny_run, capsys):
    assert predict.main(["fps", "--run-dir", str(tiny_run), "--batch-sizes", "1", "2", "--runtimes", "graph",
                         "xla", "--runs", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("| graph", "| xla"))]
    assert [row.split("|")[1:3] for row in rows] == [[" graph ", " 1 "], [" graph ", " 2 "], [" xla ", " 1 "],
                                                     [" xla ", " 2 "]]
    assert all(float(row.split("|")[3]) > 0 for row in rows)


def test_heatmap_panels_cover_the_image_per_level(tiny_run, tmp_path):
    from utils.inference.heatmap import objectness_maps
    from utils.inference.loading import load_detector

    image = write_image(tmp_path / "wide.jpg", 40, 100)
    out = tmp_path / "heat.png"
    assert predict.main(["heatmap", "--run-dir", str(tiny_run), "--input", str(image), "--output", str(out)]) == 0
    from utils.inference.heatmap import BAR_WIDTH, MIN_PANEL_WIDTH, TITLE_HEIGHT

    # The image and three levels side by side under their titles, scaled to 320 wide, and the colour bar.
    assert cv2.imread(str(out)).shape == (TITLE_HEIGHT + 128, 4 * MIN_PANEL_WIDTH + BAR_WIDTH, 3)
    maps = objectness_maps(load_detector(tiny_run), np.zeros((40, 100, 3), np.uint8))
    assert [m.shape for m in maps] == [(40, 100)] * 3
    assert all(0 <= m.min() and m.max() <= 1 for m in maps)


def test_saved_model_export_matches_the_keras_model(tiny_run, tmp_path, capsys):
    images = [str(write_image(tmp_path / f"{i}.jpg", 50 + 10 * i, 70, seed=i)) for i in range(3)]
    out = tmp_path / "exported"
    assert predict.main(["export", "--run-dir", str(tiny_run), "--output", str(out), "--score-threshold", "1e-6",
                         "--check-images", *images]) == 0
    printed = capsys.readouterr().out
    assert "parity on 3 images" in printed and "-> passed" in printed
    # The export runs on its own: a batch of two same-size uint8 images, boxes inside those images.
    import tensorflow as tf

    loaded = tf.saved_model.load(str(out))
    batch = np.stack([cv2.cvtColor(cv2.imread(images[0]), cv2.COLOR_BGR2RGB)] * 2)
    result = loaded.serve(tf.constant(batch))
    count = int(result["count"][0])
    assert count > 0 and int(result["count"][1]) == count
    boxes = result["boxes"].numpy()[0, :count]
    assert boxes.min() >= 0 and boxes[:, [0, 2]].max() <= 70 and boxes[:, [1, 3]].max() <= 50
    np.testing.assert_allclose(result["boxes"].numpy()[0], result["boxes"].numpy()[1], atol=1e-4)


def test_parity_check_fails_on_a_moved_box_or_a_changed_class():
    from utils.export.writers import compare
    from utils.ops.detections import Detections

    def found(box, class_id):
        return Detections(np.array([box], float), np.array([0.9]), np.array([class_id]))

    assert compare([found([0, 0, 10, 10], 1)], [found([0.5, 0, 10, 10], 1)]).passed()
    assert not compare([found([0, 0, 10, 10], 1)], [found([2, 0, 10, 10], 1)]).passed()  # 2 px > 1 px
    assert not compare([found([0, 0, 10, 10], 1)], [found([0, 0, 10, 10], 0)]).passed()
    assert not compare([found([0, 0, 10, 10], 1)], [Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0))]).passed()
    nothing = Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0))
    assert not compare([nothing, nothing], [nothing, nothing]).passed()  # nothing compared proves nothing


def test_export_refuses_a_vacuous_check_and_an_unwritable_path_before_converting(tiny_run, tmp_path):
    images = [str(write_image(tmp_path / f"{i}.jpg", 60, 80, seed=i)) for i in range(2)]
    with pytest.raises(ValueError, match="none of --check-images has a detection"):
        predict.main(["export", "--run-dir", str(tiny_run), "--output", str(tmp_path / "sm"), "--score-threshold",
                      "0.9999", "--check-images", *images])
    assert not (tmp_path / "sm").exists()
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OSError, match="a_file/model.onnx: cannot write here"):
        predict.main(["export", "--run-dir", str(tiny_run), "--format", "onnx", "--output",
                      str(blocker / "model.onnx"), "--check-images", *images])


@pytest.mark.slow
def test_onnx_export_runs_in_onnx_runtime_and_matches(tiny_run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    images = [str(write_image(tmp_path / f"{i}.jpg", 60, 80, seed=i)) for i in range(2)]
    out = tmp_path / "model.onnx"
    code = predict.main(["export", "--run-dir", str(tiny_run), "--format", "onnx", "--output", str(out),
                         "--score-threshold", "1e-6", "--max-detections", "3", "--check-images", *images])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert out.is_file() and "parity on 2 images" in printed and "-> passed" in printed
    assert f"exported {out} (onnx)" in printed
    assert predict.main(["fps", "--run-dir", str(tiny_run), "--runtimes", "graph", "--batch-sizes", "1", "2",
                         "--runs", "2", "--onnx", str(out)]) == 0
    rows = [line.split("|")[1:3] for line in capsys.readouterr().out.splitlines() if line.startswith("| onnx")]
    assert rows == [[" onnxruntime ", " 1 "], [" onnxruntime ", " 2 "]]


def test_parity_pairs_tied_detections_by_box_not_rank():
    from utils.export.writers import compare
    from utils.ops.detections import Detections

    boxes = np.array([[0, 0, 10, 10], [20, 20, 40, 40]], float)
    ours = Detections(boxes, np.array([0.5, 0.5]), np.array([0, 1]))
    swapped = Detections(boxes[::-1] + 0.2, np.array([0.5, 0.5]), np.array([1, 0]))
    parity = compare([ours], [swapped])
    assert parity.passed() and parity.max_box_difference == pytest.approx(0.2)


def test_export_checks_every_input_before_converting_and_leaves_nothing_when_its_check_fails(tiny_run, tmp_path,
                                                                                          monkeypatch, capsys):
    import utils.export.policy as policy
    from utils.export.writers import Parity

    images = [str(write_image(tmp_path / f"{i}.jpg", 60, 80, seed=i)) for i in range(2)]
    calibration = tmp_path / "calibration.txt"
    calibration.write_text("\n".join(images) + "\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    gone = tmp_path / "gone.txt"
    gone.write_text(f"{tmp_path / 'gone.jpg'} 1,1,9,9,0\n")
    converted = []
    monkeypatch.setattr(policy, "export_litert", lambda *a, **k: converted.append(a))
    with pytest.raises(ValueError, match=r"empty.txt: annotation file is empty"):
        predict.main(["export", "--run-dir", str(tiny_run), "--format", "litert", "--output",
                      str(tmp_path / "int8.tflite"), "--quantize", "int8", "--calibration", str(calibration),
                      "--annotations", str(empty), "--check-images", *images])
    with pytest.raises(ValueError, match=r"gone.txt \(--calibration\): no readable image listed \(1 lines parsed\)"):
        predict.main(["export", "--run-dir", str(tiny_run), "--format", "litert", "--output",
                      str(tmp_path / "int8.tflite"), "--quantize", "int8", "--calibration", str(gone), "--no-check"])
    assert not converted and not list(tmp_path.glob("*int8*"))
    monkeypatch.undo()
    # A check that fails leaves nothing at the output path (the export was written and checked beside it).
    monkeypatch.setattr(policy, "compare", lambda ours, theirs: Parity(len(ours), 5.0, True, True, 1))
    out = tmp_path / "exported"
    assert predict.main(["export", "--run-dir", str(tiny_run), "--output", str(out), "--score-threshold", "1e-6",
                         "--check-images", *images]) == 1
    assert "max box difference 5.000 px" in capsys.readouterr().out
    assert not out.exists() and not list(tmp_path.glob(".exported*"))
