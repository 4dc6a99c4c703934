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


@pytest.fixture
def offline(monkeypatch):
    """Keras' downloader fails as it does without a network."""
    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(file_utils, "get_file", no_network)


def test_offline_imagenet_names_the_file_and_where_to_put_it(offline):
    with pytest.raises(OSError, match=r"efficientnetb0_notop\.h5 .*network unreachable.*\.keras/models/"
                                      r"efficientnetb0_notop\.h5.*--backbone-weights none trains from scratch"):
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


def perturbed(model: keras.Model, seed: int = 0) -> keras.Model:
    """Move every weight (statistics included) off its initial value, so a layer loaded wrongly shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) if w.ndim else w
                               for w in layer.get_weights()])
    return model


@pytest.mark.slow
@pytest.mark.parametrize(("constructor", "backbone", "ends"), [
    ("EfficientNetB0", "efficientnet-b0", ("block3b_add", "block5c_add", "block7a_project_bn")),
    ("EfficientNetV2B0", "efficientnetv2-b0", ("block3b_add", "block5e_add", "block6h_add")),
])
def test_imagenet_path_gives_the_features_of_keras_built_for_imagenet(monkeypatch, tmp_path, constructor, backbone,
                                                                      ends):
    """Offline stand-in for the download: Keras' own `weights="imagenet"` build (V1 adds its 1/sqrt(std)
    Rescaling there) loads the same file as ours, so any difference in input scaling or loading shows."""
    source = perturbed(getattr(keras.applications, constructor)(include_top=False, weights=None,
                                                                input_shape=(64, 64, 3)))
    path = tmp_path / "imagenet_notop.weights.h5"
    source.save_weights(path)
    monkeypatch.setattr(file_utils, "get_file", lambda *args, **kwargs: str(path))

    keras_imagenet = getattr(keras.applications, constructor)(include_top=False, weights="imagenet",
                                                              input_shape=(64, 64, 3))
    ours = build_backbone(backbone, input_shape=(64, 64, 3), weights="imagenet")
    keras_ends = keras.Model(keras_imagenet.input, [keras_imagenet.get_layer(n).output for n in ends])
    images = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    for mine, theirs in zip(ours(images), keras_ends(images), strict=True):
        assert np.max(np.abs(np.asarray(mine) - np.asarray(theirs))) < 1e-4


def test_shufflenet_weights_come_from_a_file_of_our_own_model(tmp_path):
    from nets.shufflenet_v2 import build_shufflenet_v2

    source = perturbed(build_shufflenet_v2(0.5, input_shape=(64, 64, 3), stem="stemblock"))
    path = tmp_path / "shufflenet.weights.h5"
    source.save_weights(path)
    backbone = build_backbone("shufflenetv2-x0.5-stemblock", input_shape=(64, 64, 3), weights=str(path))
    ends = keras.Model(source.input, [source.get_layer(f"stage{s}_unit{u}_shuffle").output
                                      for s, u in ((2, 4), (3, 8), (4, 4))])
    images = np.random.default_rng(2).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    for mine, theirs in zip(backbone(images), ends(images), strict=True):
        np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), atol=1e-4)
    with pytest.raises(ValueError, match="no ImageNet weights are published for this backbone.*--backbone-weights "
                                         "none to train from scratch"):
        build_backbone("shufflenetv2-x0.5", weights="imagenet")
    with pytest.raises(ValueError, match=r"shufflenet\.weights\.h5: not weights of shufflenetv2-x1\.0"):
        build_backbone("shufflenetv2-x1.0", input_shape=(64, 64, 3), weights=str(path))


def test_offline_v2_imagenet_names_its_file(offline):
    with pytest.raises(OSError, match=r"efficientnetv2-s_notop\.h5 .*tensorflow/keras-applications/efficientnet_v2/"
                                      r"efficientnetv2-s_notop\.h5 .*\.keras/models/efficientnetv2-s_notop\.h5"):
        build_backbone("efficientnetv2-s", input_shape=(64, 64, 3), weights="imagenet")
