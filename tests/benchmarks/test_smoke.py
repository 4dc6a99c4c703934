"""Every script in benchmarks/ runs end to end at its smallest setting (a tiny model, one step or call, a generated
dataset), so a change to the library cannot break a benchmark unseen. These check that the scripts run and print
their tables, not any timing."""

import importlib
import sys
from pathlib import Path

import pytest

from tests.conftest import QUICKEST_BACKBONE as QUICKEST
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("*.py") if p.stem not in ("training_setup", "reference_loader"))
TINY_MODEL = ["--input-size", "64"]


def benchmark(name: str):
    sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(f"benchmarks.{name}")


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory) -> Path:
    """A generated VOC folder of 12 images and its annotation lines as `trainval.txt` and `test.txt`."""
    import voc_annotation
    from utils.data.synthetic import generate_synthetic_voc

    out = tmp_path_factory.mktemp("bench_set")
    classes = generate_synthetic_voc(out / "voc", num_images=12, seed=2, image_size=(96, 96))
    (out / "classes.txt").write_text(classes.read_text())
    assert voc_annotation.main(["--voc-root", str(out / "voc"), "--classes", str(out / "classes.txt"),
                                "--out-dir", str(out), "--val-fraction", "0", "--test-fraction", "0.25"]) == 0
    (out / "trainval.txt").write_text((out / "train.txt").read_text())
    return out


def test_every_benchmark_script_has_a_smoke_test():
    tested = {name.removeprefix("test_").removesuffix("_runs") for name in globals() if name.startswith("test_")}
    assert set(SCRIPTS) <= tested, f"benchmarks without a smoke test: {sorted(set(SCRIPTS) - tested)}"


def test_bench_backbones_runs(capsys):
    assert benchmark("bench_backbones").main(["--backbones", QUICKEST, *TINY_MODEL, "--num-classes", "2",
                                              "--warmup", "1", "--runs", "1"]) == 0
    assert f"| {QUICKEST} |" in capsys.readouterr().out


@pytest.mark.heavy
def test_bench_inference_runs(capsys):
    runtimes = ("graph", "onnxruntime", "litert")  # one of each kind (int8: tests/export/test_litert.py)
    assert benchmark("bench_inference").main(["--backbone", QUICKEST, "--necks", "yolov5", "--sizes",
                                              "64", "--num-classes", "2", "--warmup", "1", "--runs", "1",
                                              "--runtimes", *runtimes]) == 0
    printed = capsys.readouterr().out
    for runtime in runtimes:
        assert f"| {runtime} |" in printed, runtime


def test_bench_map_runs(capsys):
    assert benchmark("bench_map").main(["--images", "20", "--detections-per-image", "3", "--classes", "2",
                                        "--repeats", "1"]) == 0
    assert "pycocotools" in capsys.readouterr().out


def test_bench_pipeline_runs(tiny_set, capsys):
    assert benchmark("bench_pipeline").main(["--data", str(tiny_set / "voc"), "--classes",
                                             str(tiny_set / "classes.txt"), "--size", "64", "--batch-size", "2",
                                             "--batches", "1", "--reference-batches", "1", "--repeats", "1"]) == 0
    assert "speedup: " in capsys.readouterr().out


def test_bench_train_runs(tiny_set, capsys):
    assert benchmark("bench_train").main(["--backbones", QUICKEST, "--precisions", "float32", "--no-keras-ops",
                                          "--batch-size", "2", *TINY_MODEL, "--steps", "1", "--warmup", "1",
                                          "--annotations", str(tiny_set / "trainval.txt")]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(f"| {QUICKEST} |"))
    assert row.split(" | ")[3] == "nan" and row.split(" | ")[4] != "nan"  # Keras ops not timed; the fused step was


def test_profile_train_runs(capsys):
    assert benchmark("profile_train").main(["--backbones", QUICKEST, *TINY_MODEL, "--batch-size", "2",
                                            "--steps", "1", "--warmup", "1"]) == 0
    assert "backward" in capsys.readouterr().out


def test_peer_yolov8n_step_runs(capsys):
    pytest.importorskip("ultralytics", reason="the peer's step runs in an environment with ultralytics (see "
                                              "docs/performance.md); not a project dependency")
    assert benchmark("peer_yolov8n_step").main(["--batch-size", "2", *TINY_MODEL, "--steps", "1",
                                                "--warmup", "1"]) == 0
    assert "median" in capsys.readouterr().out


def compare_runs_defaults():
    """compare_runs.py and its arguments with every default (no file is read)."""
    compare_runs = benchmark("compare_runs")
    return compare_runs, compare_runs.parse_args(["--train", "t.txt", "--val", "v.txt", "--classes", "c.txt",
                                                  "--out", "o"])


def test_compare_runs_variants_override_the_base_recipe():
    """A variant's flags come after the base recipe's, so they win (argparse keeps the last)."""
    from utils.cli.parsers import train_parser

    compare_runs, args = compare_runs_defaults()
    parsed = {variant: train_parser().parse_args(compare_runs.train_command(args, flags, 0, Path("run"))[2:])
              for variant, flags in compare_runs.VARIANTS.items()}
    assert (parsed["fixed"].backbone, parsed["fixed"].backbone_weights) == ("efficientnet-lite0", "imagenet")
    assert (parsed["b0-scratch"].backbone, parsed["b0-scratch"].backbone_weights) == ("efficientnet-b0", "none")
    assert (parsed["scratch"].backbone, parsed["scratch"].backbone_weights) == ("efficientnet-lite0", "none")
    assert parsed["bn-trained"].freeze_backbone_bn is False and parsed["fixed"].freeze_backbone_bn is None
    assert (parsed["v3-iou"].assigner, parsed["v3-iou"].iou_objectness) == ("v3", True)


def test_compare_runs_resumes_a_run_stopped_mid_training(tmp_path):
    compare_runs, args = compare_runs_defaults()
    run = tmp_path / "v5-seed0"
    assert "--resume" not in compare_runs.start_or_resume(args, ["--assigner", "v5"], 0, run)
    (run / "resume").mkdir(parents=True)
    (run / "resume" / "training_metadata.json").write_text('{"epoch": 4, "batch": -1}')
    assert compare_runs.start_or_resume(args, ["--assigner", "v5"], 0, run)[-2:] == ["--resume", str(run)]


@pytest.fixture(scope="session")
def compared_runs(tiny_set, tmp_path_factory) -> tuple[Path, str]:
    """compare_runs.py's one tiny run and what it printed (the pruning comparison prunes that run). Session-wide: a
    module fixture is built again whenever the worker has run another module's tests in between."""
    import contextlib
    import io

    out, printed = tmp_path_factory.mktemp("runs"), io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert benchmark("compare_runs").main(["--train", str(tiny_set / "trainval.txt"), "--val",
                                               str(tiny_set / "test.txt"), "--classes", str(tiny_set / "classes.txt"),
                                               "--out", str(out), "--variants", "decoupled", "--backbone",
                                               QUICKEST, "--backbone-weights", "none", *TINY_MODEL,
                                               "--batch-size", "3", "--epochs", "1", "--time-limit", "1",
                                               "--peer", "0.8", "0.5"]) == 0
    return out / "decoupled-seed0", printed.getvalue()


@pytest.mark.xdist_group("compared_runs")
def test_the_compared_runs_group_shares_one_worker(request):
    """`make test` runs with --dist loadgroup, which sends a group's tests to one worker by suffixing their ids: if
    a pytest or pytest-xdist release breaks that, the runs above are built once per worker and the suite slows."""
    if request.config.getoption("dist", "no") == "loadgroup":
        assert request.node.nodeid.endswith("@compared_runs"), request.node.nodeid


@pytest.mark.xdist_group("compared_runs")
def test_compare_runs_runs(compared_runs):
    assert "| decoupled | 0 | 1 | 1 |" in compared_runs[1]


@pytest.mark.xdist_group("compared_runs")
def test_compare_pruning_runs(compared_runs, tiny_set, tmp_path, capsys):
    assert benchmark("compare_pruning").main(["--run-dir", str(compared_runs[0]), "--val", str(tiny_set / "test.txt"),
                                              "--out", str(tmp_path / "pruning"), "--ratios", "0.5",
                                              "--fine-tune-minutes", "0", "--latency-runs", "1",
                                              "--runtimes", "onnxruntime"]) == 0
    printed = capsys.readouterr().out
    assert "| unpruned |" in printed and "LiteRT" not in printed
    # the fine-tune is `train.py --init-model`, run by tests/scripts/test_progressive_and_pruning.py
    pruned_row = next(line for line in printed.splitlines() if line.startswith("| pruned 50%, not fine-tuned |"))
    parameters_ratio = float(pruned_row.split("|")[-4])
    assert 0.2 < parameters_ratio < 0.9  # half the prunable channels go; the fixed ones stay


def test_compare_backbones_trains_every_row_with_yolov5s_head_and_its_own_backbone_and_weights():
    """Every row's train.py command parses, and the row's flags win over the base recipe's (argparse keeps the
    last): the comparison changes only the backbone, neck and weights, on YOLOv5's head and assigner."""
    from utils.cli.parsers import train_parser

    compare_backbones = benchmark("compare_backbones")
    compare_runs = benchmark("compare_runs")
    args = compare_backbones.parse_args(["--train", "t.txt", "--val", "v.txt", "--classes", "c.txt", "--out", "o",
                                         "--pretrained"])
    rows = compare_backbones.chosen_rows(args)
    assert len(rows) == 8 + 3 and rows[0][1:] == ("cspdarknet-n", "yolov5", "none")
    for _, backbone, neck, weights in rows:
        command = compare_runs.train_command(args, compare_backbones.row_flags(backbone, neck, weights), 0,
                                             Path("run"))
        parsed = train_parser().parse_args(command[2:])
        assert (parsed.backbone, parsed.neck, parsed.backbone_weights) == (backbone, neck, weights)
        assert (parsed.head, parsed.assigner, parsed.input_size, parsed.time_limit) == ("anchor", "v5", 416, 20.0)
    assert {backbone for _, backbone, _, weights in rows if weights == "imagenet"} == set(compare_backbones.PRETRAINED)


def offline_keras_application(**kwargs):
    """What `keras.applications` raises for weights it cannot download."""
    raise Exception("URL fetch failure on https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5: "
                    "None -- [Errno -2] Name or service not known")


def test_an_imagenet_row_without_its_weights_is_named_not_run(monkeypatch):
    import keras

    compare_backbones = benchmark("compare_backbones")
    assert compare_backbones.imagenet_weights_missing("efficientnet-lite0") is None  # installed with EffYOLO
    monkeypatch.setattr(keras.applications, "EfficientNetB0", offline_keras_application)
    missing = compare_backbones.imagenet_weights_missing("efficientnet-b0")
    assert "efficientnetb0_notop.h5" in missing and "--backbone-weights PATH" in missing, missing


@pytest.mark.xdist_group("compared_runs")
def test_compare_backbones_runs(compared_runs, tiny_set, tmp_path, capsys, monkeypatch):
    """The comparison end to end on compare_runs.py's tiny run, copied in as a row already trained and scored (a
    scored run is not repeated: the resume path); the row's export, latency and the table run, and an ImageNet row
    whose weights cannot be downloaded is named under the table instead of stopping the comparison."""
    import shutil

    import keras

    compare_backbones = benchmark("compare_backbones")
    rows = compare_backbones.chosen_rows
    monkeypatch.setattr(compare_backbones, "chosen_rows", lambda args: [
        *rows(args), ("efficientnet-b0 + yolov5, ImageNet", "efficientnet-b0", "yolov5", "imagenet")])
    monkeypatch.setattr(keras.applications, "EfficientNetB0", offline_keras_application)
    out = tmp_path / "compare"
    shutil.copytree(compared_runs[0], out / f"{QUICKEST}+yolov5-seed0")
    assert compare_backbones.main(["--train", str(tiny_set / "trainval.txt"), "--val", str(tiny_set / "test.txt"),
                                   "--classes", str(tiny_set / "classes.txt"), "--out", str(out), "--rows",
                                   f"{QUICKEST}+yolov5", *TINY_MODEL, "--latency-runs", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.rstrip().splitlines()[-1].startswith("efficientnet-b0 + yolov5, ImageNet, seed 0: skipped — could "
                                                        "not get the ImageNet weights efficientnetb0_notop.h5")
    row = next(line for line in printed.splitlines() if line.startswith(f"| {QUICKEST} + yolov5 |"))
    assert row.split(" | ")[1:3] == ["0", "1"]  # seed 0, the one epoch compare_runs.py trained
    assert (out / f"{QUICKEST}+yolov5-seed0" / "model.onnx").is_file()


def test_deployment_only_measures_each_rows_detector_as_its_run_builds_it(tiny_set, tmp_path):
    """`--deployment-only` builds a row's detector from the row's own train.py flags (backbone, neck, YOLOv5's
    anchor head, input size), untrained; the figures it measures are that architecture's."""
    from nets.model_stats import model_flops, parameters
    from nets.yolo import build_yolo
    from utils.inference.loading import load_keras_detector

    compare_backbones = benchmark("compare_backbones")
    args = compare_backbones.parse_args(["--train", str(tiny_set / "trainval.txt"), "--val", str(tiny_set / "test.txt"),
                                         "--classes", str(tiny_set / "classes.txt"), "--out", str(tmp_path),
                                         *TINY_MODEL, "--deployment-only"])
    detector = load_keras_detector(compare_backbones.untrained_detector(args, QUICKEST, "yolov7-tiny"))
    classes = len((tiny_set / "classes.txt").read_text().split())
    expected = build_yolo(QUICKEST, "yolov7-tiny", classes, (64, 64, 3), head="anchor")
    assert (parameters(detector), model_flops(detector)) == (parameters(expected), model_flops(expected))
    assert detector.input_hw == (64, 64) and len(detector.decoder.anchors) == 9
    rows = [{"row": "baseline", "size_mb": 7.6, "parameters": 1.9e6, "gflops": 4.5, "latency_ms": 40.0},
            {"row": "other", "size_mb": 15.2, "parameters": 3.8e6, "gflops": 9.0, "latency_ms": 60.0}]
    last_row = compare_backbones.format_deployment_table(rows).splitlines()[-1]
    assert last_row == "| other | 15.2 | 3.80 | 9.00 | 60.0 | 1.50 |"
