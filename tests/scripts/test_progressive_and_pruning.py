"""Progressive learning, multi-scale batches and pruning through the ordinary commands: train, resume, evaluate,
fine-tune, export."""

import json

import pytest

import get_map
import predict
import prune
import train
import voc_annotation
from utils.data.annotations import read_annotations
from utils.training.plots import read_csv_log

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lines(shapes_voc, tmp_path_factory):
    out = tmp_path_factory.mktemp("stage_lines")
    assert voc_annotation.main(["--voc-root", str(shapes_voc), "--classes", str(shapes_voc / "classes.txt"),
                                "--out-dir", str(out), "--val-fraction", "0.25", "--test-fraction", "0"]) == 0
    return out


def flags(lines, shapes_voc, run) -> list[str]:
    return ["--train", str(lines / "train.txt"), "--val", str(lines / "val.txt"), "--classes",
            str(shapes_voc / "classes.txt"), "--backbone", "cspdarknet-n", "--input-size", "64",
            "--batch-size", "6", "--run-dir", str(run)]


@pytest.mark.heavy
def test_progressive_stages_resume_in_their_stage_and_evaluate_at_the_input_size(lines, shapes_voc, tmp_path,
                                                                                 capsys):
    run = tmp_path / "progressive"
    assert train.main([*flags(lines, shapes_voc, run), "--progressive", "--progressive-stages", "2",
                       "--progressive-min-size", "32", "--epochs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "epochs 1–1: batch 6, backbone trained, stage 1 of 2: 32²" in printed
    assert "epochs 2–2: batch 6, backbone trained, stage 2 of 2: 64²" in printed
    stages = json.loads((run / "manifest.json").read_text())["resolved"]["stages"]
    assert [stage["input_size"] for stage in stages] == [32, 64] and stages[0]["mosaic"] == 0
    assert json.loads((run / "resume" / "progress.json").read_text())["stage"] == 1
    assert train.main(["--resume", str(run), "--epochs", "3"]) == 0  # the plan grows: the stage does not go back
    printed = capsys.readouterr().out
    assert "epochs 3–3: batch 6, backbone trained, stage 2 of 2: 64²" in printed and "stage 1 of 2" not in printed
    assert read_csv_log(run / "training_log.csv")["epoch"] == [0.0, 1.0, 2.0]
    assert get_map.main(["--run-dir", str(run), "--annotations", str(lines / "val.txt"), "--no-plots"]) == 0
    from utils.inference.loading import load_detector

    detector = load_detector(run)
    assert detector.input_hw == (64, 64) and detector.input_shape[1:3] == (None, None)


@pytest.mark.heavy
def test_multi_scale_training_then_a_pruned_model_fine_tuned_and_exported(lines, shapes_voc, tmp_path, capsys):
    run = tmp_path / "multi_scale"
    assert train.main([*flags(lines, shapes_voc, run), "--multi-scale", "--epochs", "1"]) == 0
    assert json.loads((run / "config.json").read_text())["multi_scale"] is True
    pruned = tmp_path / "pruned.keras"
    assert prune.main(["--run-dir", str(run), "--ratio", "0.5", "--output", str(pruned)]) == 0
    printed = capsys.readouterr().out
    assert "pruned " in printed and f"--init-model {pruned}" in printed
    tuned = tmp_path / "tuned"
    assert train.main(["--config", str(run / "config.json"), "--init-model", str(pruned), "--run-dir", str(tuned),
                       "--epochs", "1"]) == 0
    from utils.inference.loading import load_keras_detector

    original, fine_tuned = load_keras_detector(run), load_keras_detector(tuned)
    assert fine_tuned.count_params() < original.count_params()
    assert fine_tuned.get_layer("neck_p3_c3_cv3_conv").filters < original.get_layer("neck_p3_c3_cv3_conv").filters
    images = [a.image_path for a in read_annotations(lines / "val.txt")[0]][:3]
    assert predict.main(["export", "--run-dir", str(tuned), "--output", str(tmp_path / "exported"),
                         "--score-threshold", "1e-5", "--check-images", *images]) == 0
    assert "-> passed" in capsys.readouterr().out
