import keras
import pytest

import summary
from nets.model_stats import detector_parts, model_flops
from nets.yolo import build_yolo


def test_flops_hand_computed():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)  # 2 · 64 cells · 27 · 8 = 27,648
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)  # 2 · 16 cells · 9 · 8 = 2,304
    x = keras.layers.BatchNormalization()(x)  # not counted
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4)(x)  # 2 · 8 · 4 = 64
    assert model_flops(keras.Model(inputs, outputs)) == 27_648 + 2_304 + 64


@pytest.mark.slow
def test_detector_parts_add_up(capsys):
    model = build_yolo("efficientnet-b0", "yolov3", num_classes=2, input_shape=(64, 64, 3))
    parts = {p.name: p for p in detector_parts(model)}
    assert parts["backbone"].parameters + parts["neck"].parameters + parts["head"].parameters == model.count_params()
    assert parts["backbone"].flops + parts["neck"].flops + parts["head"].flops == parts["total"].flops
    assert parts["backbone"].parameters == 3_634_851
    assert summary.main(["--phi", "0", "--neck", "yolov3", "--head", "anchor", "--input-size", "64",
                         "--num-classes", "2"]) == 0
    assert f"{model.count_params():,}" in capsys.readouterr().out


@pytest.mark.slow
def test_summary_sizes_the_head_it_is_given(capsys):
    decoupled = build_yolo("cspdarknet-n", "yolov5", 2, input_shape=(64, 64, 3), head="decoupled").count_params()
    anchor = build_yolo("cspdarknet-n", "yolov5", 2, input_shape=(64, 64, 3)).count_params()
    assert decoupled != anchor
    assert summary.main(["--backbone", "cspdarknet-n", "--head", "decoupled", "--input-size", "64",
                         "--num-classes", "2"]) == 0
    printed = capsys.readouterr().out
    assert "cspdarknet-n + yolov5 + decoupled head" in printed
    total = next(line for line in printed.splitlines() if line.startswith("total"))
    assert f"{decoupled:,}" in total
