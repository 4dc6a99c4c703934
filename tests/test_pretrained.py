"""Pretrained weights, offline: a Keras weights file the test builds, and the message when ImageNet is unreachable."""

import keras
import numpy as np
import pytest
from keras.src.utils import file_utils

from nets.backbones import build_backbone
from nets.efficientnet import IMAGENET_STDDEV_RGB, build_efficientnet
from nets.pretrained import copy_weights_by_name


@pytest.mark.slow
def test_weights_file_loads_by_name_and_gives_keras_features(tmp_path):
    reference = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(64, 64, 3))
    rng = np.random.default_rng(0)
    for layer in reference.layers:  # move every weight off its initial value, statistics included
        if layer.weights:
            layer.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) if w.ndim else w
                               for w in layer.get_weights()])
    path = tmp_path / "b0_notop.weights.h5"
    reference.save_weights(path)

    backbone = build_backbone("efficientnet-b0", input_shape=(64, 64, 3), weights=str(path))
    # The reference rebuilt from the file: same names, so its stage ends are the backbone's outputs.
    loaded = keras.applications.EfficientNetB0(include_top=False, weights=str(path), input_shape=(64, 64, 3))
    ends = keras.Model(loaded.input, [loaded.get_layer(n).output for n in
                                      ("block3b_add", "block5c_add", "block7a_project_bn")])
    images = rng.uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    for ours, theirs in zip(backbone.predict(images, verbose=0), ends.predict(images, verbose=0), strict=True):
        assert np.max(np.abs(ours - theirs)) < 1e-4


def test_offline_imagenet_names_the_file_and_where_to_put_it(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(file_utils, "get_file", no_network)
    with pytest.raises(OSError, match=r"efficientnetb0_notop\.h5 .*network unreachable.*\.keras/models/"
                                      r"efficientnetb0_notop\.h5"):
        build_backbone("efficientnet-b0", input_shape=(64, 64, 3), weights="imagenet")
    with pytest.raises(FileNotFoundError, match="nothing.h5: backbone weights file not found"):
        build_backbone("efficientnet-b0", input_shape=(64, 64, 3), weights="nothing.h5")


def test_imagenet_rescaling_matches_keras():
    model = build_efficientnet(0, input_shape=(32, 32, 3), imagenet_rescaling=True)
    scale = model.get_layer("rescaling_1").scale
    np.testing.assert_allclose(scale, [1 / np.sqrt(s) for s in IMAGENET_STDDEV_RGB])


@pytest.mark.slow
def test_a_wrong_source_leaves_nothing_silently_unloaded():
    ours = build_efficientnet(0, input_shape=(64, 64, 3))
    other = keras.applications.EfficientNetB1(include_top=False, weights=None, input_shape=(64, 64, 3))
    # B1 has 54 weighted layers B0 lacks, block1b first (depth 1.1 gives stage 1 two blocks).
    expected = r"^54 backbone layers were left unloaded:\n  block1b_dwconv: no layer of that name in efficientnetb0"
    with pytest.raises(ValueError, match=expected):
        copy_weights_by_name(ours, other)
    assert copy_weights_by_name(ours, ours) == sum(1 for layer in ours.layers if layer.weights)
