"""Bad training samples are found up front, reported by path, counted and skipped — or, with --strict, fatal."""

import logging
import subprocess
import sys

import pytest

import train
from tests.conftest import ROOT, write_image
from utils.data.annotations import read_annotations
from utils.data.sample_check import usable_annotations


def write_bad_lines(tmp_path):
    good = [write_image(tmp_path / f"good{i}.jpg", 40, 50, seed=i) for i in range(3)]
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 truncated, not an image")
    lines = [f"{path} 1,1,20,20,0" for path in good]
    lines += [f"{corrupt} 1,1,20,20,0", f"{tmp_path / 'missing.jpg'} 1,1,20,20,0",
              f"{good[0]} 1,1,20,20,0 1,1,20,oops,0"]
    path = tmp_path / "train.txt"
    path.write_text("\n".join(lines) + "\n")
    return path, corrupt


def test_the_three_kinds_are_found_named_and_skipped(tmp_path, caplog):
    path, corrupt = write_bad_lines(tmp_path)
    annotations, problems = read_annotations(path, strict=False)
    with caplog.at_level(logging.WARNING):
        usable, skipped = usable_annotations(annotations, problems)
    assert len(usable) == 3
    assert (skipped.missing, skipped.unreadable) == ([str(tmp_path / "missing.jpg")], [str(corrupt)])
    assert skipped.unparsable == [f"{path}:6: unparsable box '1,1,20,oops,0': expected "
                                  "x1,y1,x2,y2,class (or x1,y1,x2,y2,class,1)"]
    assert skipped.summary() == ("3 training samples skipped: 1 unparsable lines, 1 missing images, "
                                 "1 unreadable images")
    assert f"{corrupt}: corrupt or not an image" in caplog.text and "missing.jpg: image file not found" in caplog.text
    with pytest.raises(ValueError, match=r"--strict: 3 training samples skipped(.|\n)*corrupt.jpg"):
        usable_annotations(annotations, problems, strict=True)


@pytest.mark.slow
def test_training_survives_bad_samples_and_reports_them(tmp_path, capsys):
    path, _ = write_bad_lines(tmp_path)
    classes = tmp_path / "classes.txt"
    classes.write_text("thing\n")
    run = tmp_path / "run"
    args = ["--train", str(path), "--val", str(path), "--classes", str(classes), "--backbone", "cspdarknet-n",
            "--input-size", "64", "--epochs", "1", "--batch-size", "3", "--run-dir", str(run), "--close-mosaic", "0"]
    assert train.main(args) == 0
    printed = capsys.readouterr().out
    assert "epoch 1: 3 training samples skipped: 1 unparsable lines, 1 missing images, 1 unreadable images" in printed
    assert (run / "last.keras").is_file()
    with pytest.raises(ValueError, match="--strict: 3 training samples skipped"):
        train.main([*args, "--strict", "--run-dir", str(tmp_path / "strict_run")])


def test_dataset_shards_per_replica_under_mirrored_strategy():
    """Two logical CPUs: the global batch of 8 arrives as two per-replica batches of 4 (subprocess, because
    logical devices must be set before TensorFlow starts)."""
    script = f"""
import sys; sys.path.insert(0, {str(ROOT)!r})
import numpy as np, tensorflow as tf, cv2, tempfile, pathlib
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from utils.data.annotations import Annotation
from utils.data.pipeline import build_dataset
folder = pathlib.Path(tempfile.mkdtemp())
annotations = []
for i in range(8):
    path = folder / f"{{i}}.png"
    cv2.imwrite(str(path), np.full((40, 50, 3), 20 * i, np.uint8))
    annotations.append(Annotation(str(path), np.array([[5, 5, 30, 30, 0]], np.float32)))
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
dataset = build_dataset(annotations, (32, 32), 8, training=True, seed=0)
images, boxes = next(iter(strategy.experimental_distribute_dataset(dataset)))
print("replicas", [tuple(t.shape) for t in strategy.experimental_local_results(images)])
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert "replicas [(4, 32, 32, 3), (4, 32, 32, 3)]" in result.stdout, result.stderr[-2000:]
