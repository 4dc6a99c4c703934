import keras
import numpy as np
import pytest

from nets.backbones import backbone_names, build_backbone, last_layer_of_stage
from nets.efficientnet import build_efficientnet, round_filters, round_repeats
from nets.pretrained import copy_weights_by_name, keras_name
from nets.yolo import build_yolo


def test_round_filters_and_repeats():
    assert round_filters(32, 1.0) == 32
    assert round_filters(32, 1.1) == 32  # 35.2 → 32, within 10%
    assert round_filters(1280, 1.4) == 1792
    assert round_filters(40, 1.8) == 72
    assert round_repeats(3, 1.8) == 6 and round_repeats(1, 3.1) == 4


@pytest.mark.slow
def test_b0_equals_keras_applications_by_count_names_and_outputs():
    ours = build_efficientnet(0, input_shape=(64, 64, 3))
    reference = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(64, 64, 3))
    assert ours.count_params() == reference.count_params() == 4_049_571
    non_trainable = sum(int(np.prod(w.shape)) for w in ours.non_trainable_weights)
    assert non_trainable == sum(int(np.prod(w.shape)) for w in reference.non_trainable_weights) == 42_023
    assert [layer.name for layer in ours.layers[1:]] == [unsuffixed(layer.name) for layer in reference.layers[1:]]
    copy_weights_by_name(reference, ours)  # by name, Normalization statistics included
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(ours.predict(images, verbose=0), reference.predict(images, verbose=0), atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("phi", range(1, 8))
def test_b1_to_b7_equal_keras_applications_in_counts_and_names(phi):
    ours = build_efficientnet(phi, input_shape=(64, 64, 3))
    reference = getattr(keras.applications, f"EfficientNetB{phi}")(include_top=False, weights=None,
                                                                   input_shape=(64, 64, 3))
    assert ours.count_params() == reference.count_params()
    assert [(unsuffixed(w.path), tuple(w.shape)) for w in ours.weights] == [
        (unsuffixed(w.path), tuple(w.shape)) for w in reference.weights]
    assert [layer.name for layer in ours.layers[1:]] == [unsuffixed(layer.name) for layer in reference.layers[1:]]


def unsuffixed(path: str) -> str:
    """A layer name or weight path with Keras' per-process suffix (`normalization_2/mean`) taken off its layer."""
    layer, slash, rest = path.partition("/")
    return keras_name(layer) + slash + rest


def test_backbone_returns_stride_8_16_32_stage_ends():
    backbone = build_backbone("efficientnet-b0", input_shape=(64, 64, 3))
    assert [tuple(o.shape) for o in backbone.outputs] == [(None, 8, 8, 40), (None, 4, 4, 112), (None, 2, 2, 320)]
    full = build_efficientnet(0, input_shape=(64, 64, 3))
    assert [last_layer_of_stage(full, stage).name for stage in (3, 5, 7)] == [
        "block3b_add", "block5c_add", "block7a_project_bn"]
    with pytest.raises(ValueError, match="unknown backbone 'resnet50'"):
        build_backbone("resnet50")


def head_parameters(width: int, num_classes: int, anchors: int = 3) -> int:
    """One level of the head: 3×3 conv width→2·width (no bias), BN (4 per channel), 1×1 conv with bias."""
    return 9 * width * 2 * width + 4 * 2 * width + (2 * width + 1) * anchors * (5 + num_classes)


@pytest.mark.slow
def test_detector_shapes_parameter_split_and_save_round_trip(tmp_path):
    model = build_yolo("efficientnet-b0", "yolov3", num_classes=2, input_shape=(64, 64, 3))
    assert [tuple(o.shape) for o in model.outputs] == [(None, 8, 8, 3, 7), (None, 4, 4, 3, 7), (None, 2, 2, 3, 7)]
    backbone = model.get_layer("backbone")
    assert backbone.count_params() == 3_634_844 + 7  # B0 up to block7a (keras' 4,049,571 minus the top conv + BN)
    head = sum(layer.count_params() for layer in model.layers if layer.name.startswith("head_"))
    assert head == sum(head_parameters(w, 2) for w in (64, 128, 256))  # B0 neck widths 0.5 × (128, 256, 512)
    images = np.random.default_rng(1).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    for before, after in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    # oneDNN may pick other kernels for the reloaded graph: equal up to float32 summation order.
    for before, after in zip(model.predict(images, verbose=0), loaded.predict(images, verbose=0), strict=True):
        np.testing.assert_allclose(before, after, atol=2e-3)


def test_bad_input_size_is_rejected():
    with pytest.raises(ValueError, match="multiple of 32, got 100x100"):
        build_yolo("efficientnet-b0", "yolov3", num_classes=2, input_shape=(100, 100, 3))


def test_imagenet_normalization_is_live_in_memory():
    """Regression: Normalization reads tensors made by `finalize_state`, so setting its variables is not enough."""
    model = build_efficientnet(0, input_shape=(32, 32, 3))
    normalization = keras.Model(model.input, model.get_layer("normalization").output)
    white = np.full((1, 32, 32, 3), 255.0, "float32")
    expected = (1.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(normalization.predict(white, verbose=0)[0, 0, 0], expected, rtol=1e-5)


@pytest.mark.slow
def test_frozen_backbone_keeps_weights_and_batchnorm_statistics():
    from nets.loss import YoloV3Loss
    from nets.yolo import freeze_backbone

    model = build_yolo("cspdarknet-n", "yolov3", num_classes=2, input_shape=(64, 64, 3))  # the quickest to train
    freeze_backbone(model)
    backbone = model.get_layer("backbone")
    backbone_ids = {id(w) for w in backbone.weights}
    assert model.trainable_weights and not any(id(w) in backbone_ids for w in model.trainable_weights)
    assert not any(w.trainable for w in backbone.weights)
    before = [w.numpy().copy() for w in backbone.weights]  # moving mean/variance included
    head_before = model.get_layer("head_p3_pred").kernel.numpy().copy()
    anchors = np.array([[4, 5], [6, 10], [12, 9], [11, 23], [24, 17], [23, 45], [44, 35], [60, 76], [143, 125]])
    model.compile(keras.optimizers.Adam(1e-2), loss=[YoloV3Loss(anchors, level, 2, (64, 64)) for level in range(3)])
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    boxes = np.full((2, 4, 5), -1.0, "float32")
    boxes[:, 0] = [8, 8, 40, 40, 1]
    model.fit(images, (boxes, boxes, boxes), epochs=2, batch_size=2, verbose=0)
    for old, new in zip(before, [w.numpy() for w in backbone.weights], strict=True):
        np.testing.assert_array_equal(old, new)
    assert not np.array_equal(head_before, model.get_layer("head_p3_pred").kernel.numpy())

    # Unfrozen with frozen BatchNorm: convolutions train, every BatchNorm value (statistics included) stays.
    freeze_backbone(model, False, batchnorm_frozen=True)
    batchnorm = [w for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)
                 for w in layer.weights]
    # CSPDarknet-n: the stem, 4 downsampling convs, and 4 C3 blocks of 3 convs + 2 per bottleneck (1, 2, 3, 1)
    assert len(batchnorm) == 4 * (1 + 4 + 4 * 3 + 2 * (1 + 2 + 3 + 1)) and not any(w.trainable for w in batchnorm)
    bn_before, stem_before = [w.numpy().copy() for w in batchnorm], backbone.get_layer("stem_conv").kernel.numpy()
    model.compile(keras.optimizers.Adam(1e-2), loss=[YoloV3Loss(anchors, level, 2, (64, 64)) for level in range(3)])
    model.fit(images, (boxes, boxes, boxes), epochs=1, batch_size=2, verbose=0)
    for old, new in zip(bn_before, [w.numpy() for w in batchnorm], strict=True):
        np.testing.assert_array_equal(old, new)
    assert not np.array_equal(stem_before, backbone.get_layer("stem_conv").kernel.numpy())


@pytest.mark.slow
@pytest.mark.parametrize("backbone", backbone_names())
def test_every_backbone_with_every_neck_and_either_head_builds_and_runs_at_64(backbone):
    """Each neck and both heads on one build and one run of the backbone (its cost is most of the test's): the
    backbone's three feature maps are computed once, then every neck + head runs on them — the anchor head as
    `build_yolo` attaches it for the neck, and the decoupled head."""
    from nets.backbones import build_backbone, parse_backbone_name
    from nets.head import decoupled_head, yolo_head
    from nets.necks import NECK_NAMES, build_neck
    from nets.yolo import ANCHOR_HEAD_OF_NECK

    pixels = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    maps = [np.asarray(m) for m in build_backbone(backbone, input_shape=(64, 64, 3))(pixels, training=False)]
    assert [m.shape[1:3] for m in maps] == [(8, 8), (4, 4), (2, 2)]
    features = [keras.Input(m.shape[1:]) for m in maps]
    for neck in NECK_NAMES:
        fused = build_neck(neck, features, phi=parse_backbone_name(backbone).scale_index)
        for head in (yolo_head(fused, 3, name=f"{neck}_anchor", **ANCHOR_HEAD_OF_NECK[neck]),
                     decoupled_head(fused, 3, name=f"{neck}_decoupled")):
            results = [np.asarray(o) for o in keras.Model(features, head)(maps, training=False)]
            assert [o.shape[1:3] for o in results] == [(8, 8), (4, 4), (2, 2)], neck
            assert results[0].shape[-1] in (8, 67) and all(np.isfinite(o).all() for o in results), neck
    keras.backend.clear_session()  # 38 backbones in one process


@pytest.mark.slow
def test_the_decoupled_head_has_yolov8n_detects_parameters():
    """On the yolov5 neck at B0's widths (64, 128, 256 channels: YOLOv8n's) with 80 classes, the head's
    trainable parameters are YOLOv8n's Detect: per level, box branch 9·c·64 + 9·64·64 + 64·64 + 64 and class branch
    9·c·80 + 9·80·80 + 80·80 + 80 weights, and 2 per BatchNorm channel (64 + 64 + 80 + 80): 1296·c + 105,680 per
    level, 1296 · (64 + 128 + 256) + 3 · 105,680 = 897,648 — YOLOv8n's 897,664 less the 16 fixed weights of its DFL
    convolution (here a constant)."""
    model = build_yolo("efficientnet-b0", "yolov5", 80, input_shape=(64, 64, 3), head="decoupled")
    head = [layer for layer in model.layers if layer.name.startswith("head_")]
    assert sum(int(np.prod(w.shape)) for layer in head for w in layer.trainable_weights) == 897_648
    assert [tuple(o.shape) for o in model.outputs] == [(None, 8, 8, 144), (None, 4, 4, 144), (None, 2, 2, 144)]


def test_backbone_names_parse_to_their_families():
    from nets.backbones import parse_backbone_name

    assert len(backbone_names()) == 8 + 5 + 7 + 8 + 5
    darknet = [parse_backbone_name(f"cspdarknet-{v}") for v in "nsmlx"]
    assert [spec.scale_index for spec in darknet] == [0, 2, 4, 6, 7] and darknet[0].family == "cspdarknet"
    lite = parse_backbone_name("efficientnet-lite3")
    assert (lite.family, lite.variant, lite.feature_stages) == ("efficientnet-lite", "3", (3, 5, 7))
    assert lite.scale_index == 3
    spec = parse_backbone_name("shufflenetv2-x1.5-stemblock")
    assert (spec.family, spec.variant, spec.stem) == ("shufflenetv2", "1.5", "stemblock")
    assert spec.feature_stages == (2, 3, 4)
    assert parse_backbone_name("efficientnetv2-m").feature_stages == (3, 5, 7)
    scale = [parse_backbone_name(f"efficientnetv2-{v}").scale_index for v in ("b0", "b3", "s", "m", "l")]
    assert scale == [0, 3, 4, 6, 7]
