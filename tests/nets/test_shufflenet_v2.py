"""ShuffleNetV2: published parameter counts, the channel shuffle by hand, the StemBlock, and serialisation."""

import keras
import numpy as np
import pytest

from nets.shufflenet_v2 import ChannelHalf, ChannelShuffle, build_shufflenet_v2

# torchvision's shufflenet_v2_x{0_5,1_0,1_5,2_0}: trainable parameters with the 1000-class head.
TORCHVISION_PARAMETERS = {0.5: 1_366_792, 1.0: 2_278_604, 1.5: 3_503_624, 2.0: 7_393_996}
# StemBlock − plain stem, both 24 channels out. Plain: 3×3 conv 3→24 (648) + BN (48).
# StemBlock: 3×3 s2 3→24 (648 + 48), 1×1 24→12 (288 + 24), 3×3 s2 12→24 (2,592 + 48), 1×1 48→24 (1,152 + 48).
STEMBLOCK_EXTRA = (648 + 48 + 288 + 24 + 2_592 + 48 + 1_152 + 48) - (648 + 48)


def trainable(model: keras.Model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("width", sorted(TORCHVISION_PARAMETERS))
def test_classifier_form_matches_torchvision_counts(width):
    plain = build_shufflenet_v2(width, input_shape=(224, 224, 3), include_top=True)
    assert trainable(plain) == TORCHVISION_PARAMETERS[width]
    assert plain.output_shape == (None, 1000)
    stemblock = build_shufflenet_v2(width, input_shape=(224, 224, 3), stem="stemblock", include_top=True)
    assert trainable(stemblock) == TORCHVISION_PARAMETERS[width] + STEMBLOCK_EXTRA == trainable(plain) + 4_152


def test_channel_shuffle_and_split_by_hand():
    x = np.arange(6, dtype="float32").reshape(1, 1, 1, 6)  # two groups: [0 1 2] [3 4 5]
    np.testing.assert_array_equal(np.asarray(ChannelShuffle(2)(x)).ravel(), [0, 3, 1, 4, 2, 5])
    np.testing.assert_array_equal(np.asarray(ChannelShuffle(3)(x)).ravel(), [0, 2, 4, 1, 3, 5])
    np.testing.assert_array_equal(np.asarray(ChannelHalf(1)(x)).ravel(), [3, 4, 5])
    restored = ChannelShuffle.from_config(ChannelShuffle(3, name="s").get_config())
    assert restored.groups == 3 and restored.name == "s"
    assert ChannelHalf.from_config(ChannelHalf(1).get_config()).index == 1


def test_stems_reach_stride_4_and_stages_8_16_32():
    for stem, last_stem_layer in (("plain", "stem_pool"), ("stemblock", "stem_3_relu")):
        model = build_shufflenet_v2(1.0, input_shape=(64, 96, 3), stem=stem)
        assert model.get_layer(last_stem_layer).output.shape == (None, 16, 24, 24)
        ends = [model.get_layer(f"stage{s}_unit{u}_shuffle").output.shape for s, u in ((2, 4), (3, 8), (4, 4))]
        assert ends == [(None, 8, 12, 116), (None, 4, 6, 232), (None, 2, 3, 464)]
    stemblock = build_shufflenet_v2(1.0, input_shape=(64, 64, 3), stem="stemblock")
    assert stemblock.get_layer("stem_2p_pool").output.shape == stemblock.get_layer("stem_2b_relu").output.shape
    with pytest.raises(ValueError, match="width must be one of"):
        build_shufflenet_v2(0.75)
    with pytest.raises(ValueError, match="stem must be one of"):
        build_shufflenet_v2(1.0, stem="focus")


def test_saved_and_reloaded_model_gives_the_same_output(tmp_path):
    model = build_shufflenet_v2(0.5, input_shape=(64, 64, 3), stem="stemblock")
    model.save(tmp_path / "s.keras")
    loaded = keras.saving.load_model(tmp_path / "s.keras")
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(images, verbose=0), loaded.predict(images, verbose=0), atol=1e-4)
