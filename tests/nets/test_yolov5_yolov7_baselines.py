"""The source articles' baselines built here: CSPDarknet + the `yolov5` neck + the anchor head is YOLOv5 (v6.0+) and
the `yolov7-tiny` neck with its implicit anchor head is YOLOv7-tiny's, parameter for parameter at 80 classes.
Parameters count as PyTorch counts them: every weight but BatchNorm's running statistics (buffers there)."""

import keras
import numpy as np
import pytest

from nets.cspdarknet import scaled_depth, scaled_width
from nets.model_stats import parameters
from nets.yolo import build_yolo, freeze_backbone


def conv(c_in: int, c_out: int, k: int = 1) -> int:
    """A Conv of YOLOv5/v7: k·k·c_in·c_out weights, no bias, and BatchNorm's scale and offset."""
    return k * k * c_in * c_out + 2 * c_out


def c3(c_in: int, c_out: int, repeats: int) -> int:
    """C3: cv1, cv2 (1×1, c_in → c_out/2), `repeats` bottlenecks (1×1 then 3×3 at c_out/2), cv3 (1×1 → c_out)."""
    hidden = c_out // 2
    return 2 * conv(c_in, hidden) + repeats * (conv(hidden, hidden) + conv(hidden, hidden, 3)) + conv(2 * hidden,
                                                                                                        c_out)


def yolov5_parameters(depth: float, width: float, classes: int = 80) -> int:
    """yolov5{n,s,m}.yaml's layer table (v6.0+), layer by layer, as YOLOv5's own parse_model scales it."""
    w = {c: scaled_width(c, width) for c in (64, 128, 256, 512, 1024)}
    d = {n: scaled_depth(n, depth) for n in (3, 6, 9)}
    backbone = (conv(3, w[64], 6) + conv(w[64], w[128], 3) + c3(w[128], w[128], d[3])
                + conv(w[128], w[256], 3) + c3(w[256], w[256], d[6])
                + conv(w[256], w[512], 3) + c3(w[512], w[512], d[9])
                + conv(w[512], w[1024], 3) + c3(w[1024], w[1024], d[3])
                + conv(w[1024], w[512]) + conv(4 * w[512], w[1024]))  # SPPF: cv1 to half, cv2 from 4 × half
    head = (conv(w[1024], w[512]) + c3(2 * w[512], w[512], d[3])  # lateral, top-down C3 (no shortcut)
            + conv(w[512], w[256]) + c3(2 * w[256], w[256], d[3])
            + conv(w[256], w[256], 3) + c3(2 * w[256], w[512], d[3])  # bottom-up
            + conv(w[512], w[512], 3) + c3(2 * w[512], w[1024], d[3]))
    outputs = 3 * (5 + classes)
    detect = sum(c * outputs + outputs for c in (w[256], w[512], w[1024]))  # 1×1 convs with bias
    return backbone + head + detect


@pytest.mark.slow
@pytest.mark.parametrize("size, depth, width, published", [
    ("n", 0.33, 0.25, 1_872_157), ("s", 0.33, 0.50, 7_235_389), ("m", 0.67, 0.75, 21_190_557)])
def test_cspdarknet_with_the_yolov5_neck_is_yolov5(size, depth, width, published):
    """YOLOv5 reports 1,872,157 (n), 7,235,389 (s) and 21,190,557 (m) parameters; the layer table above gives the
    same, and so does the model built here (YOLOv5's SPPF ends its backbone, ours opens the neck: the same layers)."""
    assert yolov5_parameters(depth, width) == published
    model = build_yolo(f"cspdarknet-{size}", "yolov5", 80, input_shape=(64, 64, 3))
    assert parameters(model) == published
    freeze_backbone(model, False, batchnorm_frozen=True)  # as the fine-tuning recipe saves it: frozen weights count
    assert parameters(model) == published > sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    keras.backend.clear_session()


def yolov7_tiny_neck_and_head_parameters(p3: int = 128, p4: int = 256, p5: int = 512, classes: int = 80) -> int:
    """yolov7-tiny.yaml's layers 29–77 on its backbone's 128/256/512-channel maps (convs as `conv`, the same
    BatchNorm; LeakyReLU has no weights)."""

    def elan(c_in: int, c_out: int) -> int:  # two 1×1 at c_out/2, two 3×3 chained, concat of four, 1×1
        branch = c_out // 2
        return 2 * conv(c_in, branch) + 2 * conv(branch, branch, 3) + conv(4 * branch, c_out)

    pool = 2 * conv(p5, 256) + conv(4 * 256, 256) + conv(2 * 256, 256)  # layers 29–37
    top_down = (conv(256, 128) + conv(p4, 128) + elan(256, 128)  # 38–47
                + conv(128, 64) + conv(p3, 64) + elan(128, 64))  # 48–57
    bottom_up = (conv(64, 128, 3) + elan(256, 128)  # 58–65
                 + conv(128, 256, 3) + elan(512, 256))  # 66–73
    out = conv(64, 128, 3) + conv(128, 256, 3) + conv(256, 512, 3)  # 74–76
    outputs = 3 * (5 + classes)
    detect = sum(c * outputs + outputs + c + outputs for c in (128, 256, 512))  # conv, ImplicitA (c), ImplicitM
    return pool + top_down + bottom_up + out + detect


@pytest.mark.slow
def test_the_yolov7_tiny_neck_and_head_are_yolov7_tinys():
    expected = yolov7_tiny_neck_and_head_parameters()
    assert expected == 3_764_346
    features = [keras.Input((32, 32, 128)), keras.Input((16, 16, 256)), keras.Input((8, 8, 512))]
    from nets.head import yolo_head
    from nets.necks import build_neck
    from nets.yolo import ANCHOR_HEAD_OF_NECK

    outputs = yolo_head(build_neck("yolov7-tiny", features), 80, **ANCHOR_HEAD_OF_NECK["yolov7-tiny"])
    model = keras.Model(features, outputs)
    assert parameters(model) == expected
    assert [tuple(o.shape) for o in outputs] == [(None, 32, 32, 3, 85), (None, 16, 16, 3, 85), (None, 8, 8, 3, 85)]
    names = [layer.name for layer in model.layers]
    assert "neck_p5_spp_pool13" in names and "neck_p3_elan_concat" in names and "head_p5_implicit_add" in names


def test_implicit_layers_add_and_scale_per_channel_and_round_trip():
    from nets.layers import ImplicitAdd, ImplicitMultiply

    x = np.ones((1, 2, 2, 3), "float32")
    add, multiply = ImplicitAdd(), ImplicitMultiply()
    add.build(x.shape)
    multiply.build(x.shape)
    add.offset.assign([1.0, 2.0, 3.0])
    multiply.scale.assign([2.0, 3.0, 4.0])
    np.testing.assert_allclose(np.asarray(multiply(add(x)))[0, 0, 0], [4.0, 9.0, 16.0])
    assert type(ImplicitAdd.from_config(add.get_config())) is ImplicitAdd
