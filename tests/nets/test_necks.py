"""Necks: YOLOv5's C3 and SPPF blocks by hand-counted parameters, layer names by kind, and PAN output shapes."""

import keras
import numpy as np
import pytest

from nets.necks import build_neck, c3_block, sppf_block, yolov5_pan


def conv_bn(c_in: int, c_out: int, k: int = 1) -> int:
    """A bias-free conv plus BatchNorm (gamma, beta, moving mean, moving variance)."""
    return k * k * c_in * c_out + 4 * c_out


def test_c3_and_sppf_parameter_counts_by_hand():
    x = keras.Input((16, 16, 32))
    c3 = keras.Model(x, c3_block(x, 64, repeats=2, name="t_c3"))
    # hidden 32: cv1 and cv2 32→32 (1×1), two bottlenecks of 1×1 + 3×3 at 32, cv3 64→64.
    assert c3.count_params() == 2 * conv_bn(32, 32) + 2 * (conv_bn(32, 32) + conv_bn(32, 32, 3)) + conv_bn(64, 64)
    assert c3.count_params() == 2 * 1_152 + 2 * 10_496 + 4_352
    y = keras.Input((8, 8, 64))
    sppf = keras.Model(y, sppf_block(y, 128, name="t_sppf"))
    assert sppf.count_params() == conv_bn(64, 32) + conv_bn(4 * 32, 128) == 19_072


def test_sppf_pools_are_5_9_13_max_filters():
    image = np.zeros((1, 32, 32, 2), "float32")
    image[0, 16, 16, :] = 1.0
    y = keras.Input((32, 32, 2))
    sppf = keras.Model(y, sppf_block(y, 4, name="t"))
    sppf.get_layer("t_cv1_conv").kernel.assign(np.ones((1, 1, 2, 1), "float32"))  # spike stays a positive spike
    for i, size in enumerate((5, 9, 13)):  # chained 5×5 pools cover 5, 9 and 13 pixels
        out = np.asarray(keras.Model(y, sppf.get_layer(f"t_pool{i}").output)(image))[0, :, :, 0]
        assert (out > 0).sum() == size * size and out[16, 16] > 0


def test_yolov5_pan_shapes_names_and_per_phi_defaults():
    features = [keras.Input((40, 40, 40)), keras.Input((20, 20, 112)), keras.Input((10, 10, 320))]
    outputs = yolov5_pan(features, width=0.25, depth=0.33)
    assert [tuple(o.shape) for o in outputs] == [(None, 40, 40, 64), (None, 20, 20, 128), (None, 10, 10, 256)]
    model = keras.Model(features, outputs)
    names = [layer.name for layer in model.layers]
    assert "neck_p5_sppf_pool2" in names and "neck_p3_c3_m0_cv2_conv" in names and "neck_p5_pan_c3_cv3_conv" in names
    assert not any(name.startswith("neck_p3_c3_m1") for name in names)  # depth 0.33 → one bottleneck per C3
    b7 = build_neck("yolov5", features, phi=7)
    assert [o.shape[-1] for o in b7] == [320, 640, 1280]  # x-size: 1.25 × (256, 512, 1024)
    with pytest.raises(ValueError, match="unknown neck 'bifpn'"):
        build_neck("bifpn", features)
