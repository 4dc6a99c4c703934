"""Structured pruning: which convolutions may lose channels, how many they keep, that exactly the weights of the
kept channels are copied (a network whose cut channels are silent computes the same after pruning), and that a
pruned detector is an ordinary one (loads, trains)."""

import keras
import numpy as np
import pytest

from nets.pruning import Graph, channels_to_keep, prune_network


def test_the_channels_kept_are_the_largest_gammas_rounded_up_to_eights():
    gamma = np.array([0.1, -0.9, 0.5, 0.05, 0.3, -0.02, 0.7, 0.2, 0.01, 0.6, -0.4, 0.15, 0.03, 0.8, 0.25, 0.35])
    assert channels_to_keep(gamma, 0.5).tolist() == [1, 2, 4, 6, 9, 10, 13, 15]  # |γ| ≥ 0.3: eight of sixteen
    assert len(channels_to_keep(gamma, 0.4)) == 16  # 9.6 rounds up to 16
    assert len(channels_to_keep(np.ones(64), 0.9)) == 8 and len(channels_to_keep(np.ones(4), 0.5)) == 4


def block(x, filters: int, name: str, kernel: int = 3):
    x = keras.layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_act")(x)


def squeeze_excite(x, name: str):
    se = keras.layers.GlobalAveragePooling2D(name=f"{name}_squeeze")(x)
    se = keras.layers.Reshape((1, 1, x.shape[-1]), name=f"{name}_reshape")(se)
    se = keras.layers.Conv2D(4, 1, activation="relu", name=f"{name}_reduce")(se)
    se = keras.layers.Conv2D(x.shape[-1], 1, activation="sigmoid", name=f"{name}_expand")(se)
    return keras.layers.Multiply(name=f"{name}_excite")([x, se])


def test_only_convolutions_whose_channels_end_in_plain_convolutions_are_prunable():
    images = keras.Input((16, 16, 3))
    a = block(images, 16, "a")  # → concat → conv: prunable
    b = block(images, 16, "b")  # → concat, and → an Add with `c`: not
    c = block(images, 16, "c")  # → the Add: not
    joined = keras.layers.Concatenate(name="joined")([a, b])
    d = block(joined, 16, "d")  # → depthwise conv → BatchNorm → squeeze-excite → conv: prunable, with its gate
    e = keras.layers.DepthwiseConv2D(3, padding="same", name="e")(d)
    e = squeeze_excite(keras.layers.BatchNormalization(name="e_bn")(e), "se")
    g = block(a, 16, "g")  # → a Multiply whose other input is not a gate conv: not
    gated = keras.layers.Multiply(name="gated")([g, keras.layers.Activation("sigmoid", name="gate")(b)])
    added = keras.layers.Add(name="added")([b, c])
    f = block(keras.layers.MaxPooling2D(2, name="pool")(added), 8, "f")  # → the output: not
    model = keras.Model(images, [keras.layers.Conv2D(4, 1, name="out_pred")(e),
                                 keras.layers.Conv2D(4, 1, name="gated_pred")(gated), f])
    found = Graph(model).prunable()
    assert sorted(found) == ["a_conv", "d_conv"]
    assert found["d_conv"] == ("d_bn", ["se_expand"])


def silence_odd_channels(network: keras.Model) -> None:
    """Every BatchNorm's odd channels output exactly 0 (γ = β = 0) and its even ones vary (distinct |γ| ≥ 0.5), so
    pruning at 0.5 cuts only silent channels: the pruned network must compute what the original does."""
    rng = np.random.default_rng(1)
    layers = list(network.layers) + [layer for sub in network.layers if isinstance(sub, keras.Model)
                                     for layer in sub.layers]
    for layer in layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma = rng.uniform(0.5, 1.5, layer.gamma.shape)
            beta = rng.uniform(-0.2, 0.2, layer.beta.shape)
            gamma[1::2] = beta[1::2] = 0.0
            layer.gamma.assign(gamma)
            layer.beta.assign(beta)


@pytest.fixture(scope="module")
def networks():
    from nets.yolo import build_yolo

    keras.utils.set_random_seed(0)
    built = {
        "shufflenet-anchor": build_yolo("shufflenetv2-x0.5", "yolov5", 2, input_shape=(64, 64, 3)),
        "shufflenet-decoupled": build_yolo("shufflenetv2-x0.5", "yolov5", 2, input_shape=(64, 64, 3),
                                           head="decoupled"),
        "b0-yolov7-tiny": build_yolo("efficientnet-b0", "yolov7-tiny", 2, input_shape=(64, 64, 3)),
        "cspdarknet-n": build_yolo("cspdarknet-n", "yolov5", 2, input_shape=(64, 64, 3)),
    }
    for network in built.values():
        silence_odd_channels(network)
    return built


@pytest.mark.parametrize("name", ["shufflenet-anchor", "shufflenet-decoupled", "b0-yolov7-tiny", "cspdarknet-n"])
def test_pruning_cuts_only_what_it_may_and_copies_the_kept_weights_exactly(networks, name):
    network = networks[name]
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    pruned, report = prune_network(network, 0.5)
    assert all(layer.kept == min(layer.channels, max(8, -(-layer.channels // 16) * 8)) for layer in report)
    backbone = pruned.get_layer("backbone")
    for layer in report:  # the kept widths are in the built model
        owner = backbone if layer.name in {sub.name for sub in backbone.layers} else pruned
        assert owner.get_layer(layer.name).filters == layer.kept
    assert [o.shape for o in pruned.outputs] == [o.shape for o in network.outputs]
    assert pruned.count_params() < 0.8 * network.count_params()
    # Only silent channels were cut, and every kept weight sits where it was: the same outputs.
    for ours, theirs in zip(pruned(images), network(images), strict=True):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=2e-4, rtol=1e-4)
    keras.backend.clear_session()


def test_what_is_cut_in_the_backbones():
    """EfficientNet: the stem and every expansion conv (through depthwise conv and squeeze-excite, the gate cut
    alike), and a projection only where no residual sum and no feature output follows (block1a's); CSPDarknet:
    the stem, the downsampling convs, each bottleneck's inner 1×1 and each C3's side branch, and stage 1's C3
    output (the stride-8/16/32 maps stay whole)."""
    from nets.yolo import build_yolo

    b0 = build_yolo("efficientnet-b0", "yolov5", 2, input_shape=(64, 64, 3))
    found = Graph(b0.get_layer("backbone")).prunable()
    expansions = [name for name in found if name.endswith("expand_conv")]
    assert len(expansions) == 15 and "stem_conv" in found  # 16 MBConv blocks, the first without expansion
    assert found["block2a_expand_conv"] == ("block2a_expand_bn", ["block2a_se_expand"])
    assert [name for name in found if "project" in name] == ["block1a_project_conv"]
    darknet = Graph(build_yolo("cspdarknet-n", "yolov5", 2, input_shape=(64, 64, 3)).get_layer("backbone"))
    assert sorted(darknet.prunable()) == sorted(
        ["stem_conv", "stage1_c3_cv3_conv"] + [f"stage{s}_down_conv" for s in (1, 2, 3, 4)]
        + [f"stage{s}_c3_m{i}_cv1_conv" for s, n in ((1, 1), (2, 2), (3, 3), (4, 1)) for i in range(n)]
        + [f"stage{s}_c3_cv2_conv" for s in (1, 2, 3, 4)])
    keras.backend.clear_session()


@pytest.mark.heavy
def test_a_pruned_detector_saves_loads_and_trains(networks, tmp_path):
    from nets.detector import YoloDetector
    from utils.config.detect_config import DetectConfig

    network = networks["shufflenet-decoupled"]  # the decoupled head: its branches are pruned too
    pruned, report = prune_network(network, 0.5)
    assert any(layer.name.startswith("head_p3_box") for layer in report)
    detector = YoloDetector.from_network(pruned, ["a", "b"], (), "dfl", DetectConfig(score_threshold=0.01))
    detector.save(tmp_path / "pruned.keras")
    loaded = keras.saving.load_model(tmp_path / "pruned.keras")
    image = np.random.default_rng(2).integers(0, 255, (64, 64, 3), np.uint8)
    np.testing.assert_allclose(loaded.detect(image)[0].boxes, detector.detect(image)[0].boxes, atol=1e-4)
    loaded.compile(keras.optimizers.Adam(1e-3))
    boxes = np.array([[[4, 4, 30, 40, 1], [-1] * 5]], "float32")
    history = loaded.fit(np.full((1, 64, 64, 3), 100, "float32"), boxes, epochs=2, verbose=0).history
    assert np.isfinite(history["loss"]).all()
