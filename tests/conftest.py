"""Shared fixtures: quiet TensorFlow on one op thread, the project root on sys.path, and small data written into
tmp_path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Three workers share two cores: one op thread each (and in the scripts they start) keeps both cores busy without
# TensorFlow's thread pools spinning against each other.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

SHARED_DATASETS = ROOT.parent / "shared" / "datasets"
# The backbone quickest to build and trace (177 variables against ShuffleNet x0.5's 249): a fifth less start-up
# per training run, for tests whose subject is not the backbone.
QUICKEST_BACKBONE = "cspdarknet-n"


def shared_dataset(name: str) -> Path:
    """A dataset from ../shared/datasets, or skip the test saying it is absent (as on a user's machine)."""
    path = SHARED_DATASETS / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent (development data; not on a user's machine)")
    return path


@pytest.fixture(scope="session")
def shapes_voc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic VOC set (24 images, 96×96) shared by the slower end-to-end tests."""
    from utils.data.synthetic import generate_synthetic_voc

    out = tmp_path_factory.mktemp("shapes")
    generate_synthetic_voc(out, num_images=24, seed=3, image_size=(96, 96))
    return out


def write_image(path: Path, height: int = 60, width: int = 80, seed: int = 0) -> Path:
    """Write a small random JPEG/PNG (by suffix) and return its path."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)
    return path


def spread_untrained_logits(model) -> None:
    """Scale the anchor head's prediction kernels of an untrained `model` so its detections have distinct scores:
    exports compared detection by detection then pair them without NMS ties."""
    for layer in model.layers:
        if layer.name.endswith("_pred"):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel * 30, bias])


def tiny_network(num_classes: int = 1, size: int = 32, name: str = "tiny"):
    """A functional network with the detector's output layout ([p3, p4, p5], (B, H/s, W/s, 3, 5 + C)) and few
    weights: one strided 1×1 conv per level."""
    import keras

    images = keras.Input((size, size, 3), name="images")
    outputs = []
    for level, stride in (("p3", 8), ("p4", 16), ("p5", 32)):
        x = keras.layers.AveragePooling2D(stride, name=f"{level}_pool")(images)
        x = keras.layers.Conv2D(3 * (5 + num_classes), 1, name=f"{level}_pred")(x)
        outputs.append(keras.layers.Reshape((size // stride, size // stride, 3, 5 + num_classes), name=level)(x))
    return keras.Model(images, outputs, name=name)


def tiny_detector(num_classes: int = 1, size: int = 32, box_coding: str = "v3", **settings):
    """`tiny_network` as a `YoloDetector` with the default anchors scaled to `size`; `settings`: `DetectConfig`
    fields of its own inference settings."""
    from nets.detector import YoloDetector
    from utils.config.detect_config import DetectConfig
    from utils.data.annotations import read_anchors

    anchors = read_anchors(ROOT / "model_data" / "yolo_anchors.txt") * size / 416
    names = [f"class{i}" for i in range(num_classes)]
    return YoloDetector.from_network(tiny_network(num_classes, size), names, anchors, box_coding,
                                     DetectConfig(**settings))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Heavy tests (over a minute) first, then the files with slow tests, then the rest (a stable sort: otherwise in
    collection order): the workers share the long tests and finish together instead of one starting a long test
    when the others are nearly done."""
    slow_files = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: (item.get_closest_marker("heavy") is None,
                                 item.nodeid.split("::")[0] not in slow_files))
