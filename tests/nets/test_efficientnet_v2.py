"""EfficientNetV2 B0–B3 and S/M/L: layer for layer keras.applications, checked by counts, names and outputs."""

import keras
import numpy as np
import pytest

from nets.backbones import last_layer_of_stage, parse_backbone_name
from nets.efficientnet_v2 import build_efficientnet_v2, round_filters_v2, stage_repeats
from nets.pretrained import copy_weights_by_name, keras_name

KERAS_CONSTRUCTORS = {"b0": "EfficientNetV2B0", "b1": "EfficientNetV2B1", "b2": "EfficientNetV2B2",
                      "b3": "EfficientNetV2B3", "s": "EfficientNetV2S", "m": "EfficientNetV2M", "l": "EfficientNetV2L"}


def weight_counts(model: keras.Model) -> tuple[int, int]:
    return (sum(int(np.prod(w.shape)) for w in model.trainable_weights),
            sum(int(np.prod(w.shape)) for w in model.non_trainable_weights))


def test_v2_rounding_and_depth_scaling():
    assert round_filters_v2(32, 1.1) == 32 and round_filters_v2(16, 1.2) == 16
    assert round_filters_v2(1280, 1.2) == 1536 and round_filters_v2(192, 1.1) == 208
    assert stage_repeats("b0") == [1, 2, 2, 3, 5, 8]
    assert stage_repeats("b3") == [2, 3, 3, 5, 7, 12]  # ceil(1.4 × repeats)
    assert stage_repeats("l") == [4, 7, 7, 10, 19, 25, 7]


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(KERAS_CONSTRUCTORS))
def test_v2_equals_keras_applications(variant):
    ours = build_efficientnet_v2(variant, input_shape=(64, 64, 3))
    reference = getattr(keras.applications, KERAS_CONSTRUCTORS[variant])(
        include_top=False, weights=None, input_shape=(64, 64, 3))
    assert weight_counts(ours) == weight_counts(reference)
    assert [layer.name for layer in ours.layers[1:]] == [keras_name(layer.name) for layer in reference.layers[1:]]

    copy_weights_by_name(reference, ours)
    stages = parse_backbone_name(f"efficientnetv2-{variant}").feature_stages
    names = [last_layer_of_stage(ours, stage).name for stage in stages]
    ours_ends = keras.Model(ours.input, [ours.get_layer(n).output for n in names])
    reference_ends = keras.Model(reference.input, [reference.get_layer(n).output for n in names])
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    for mine, theirs in zip(ours_ends(images), reference_ends(images), strict=True):
        assert np.max(np.abs(np.asarray(mine) - np.asarray(theirs))) < 1e-4


def test_v2_b0_published_size_and_stage_ends():
    model = build_efficientnet_v2("b0", input_shape=(64, 64, 3))
    assert weight_counts(model) == (5_858_704, 60_608)  # keras.applications EfficientNetV2B0, include_top=False
    assert [last_layer_of_stage(model, s).name for s in (3, 5, 6)] == ["block3b_add", "block5e_add", "block6h_add"]
    with pytest.raises(ValueError, match="unknown EfficientNetV2 variant 'b9'"):
        build_efficientnet_v2("b9")
