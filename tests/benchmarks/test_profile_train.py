"""The training profiler's reading of TensorFlow traces: op names to phases and families, and a real trace."""

import keras
import numpy as np
import tensorflow as tf

from benchmarks.profile_train import profile, summarise
from nets.layers import conv_bn_act

STEP = "StatefulPartitionedCall"


def test_names_map_to_phases_and_families():
    rows = {
        f"{STEP}/det/backbone/block2a_dwconv/depthwise:_MklNativeDepthwiseConv2dNative": ("forward", "depthwise conv"),
        f"{STEP}/gradient_tape/det/backbone/block2a_dwconv/depthwise/DepthwiseConv2dNativeBackpropFilter:"
        "_MklNativeDepthwiseConv2dNativeBackpropFilter": ("backward", "depthwise conv"),
        f"{STEP}/gradient_tape/det/neck_p3_conv/convolution/Conv2DBackpropInput:_MklNativeConv2DBackpropInput":
            ("backward", "convolution"),
        f"{STEP}/det/backbone/stem_bn/FusedBatchNormV3:_MklNativeFusedBatchNormV3": ("forward", "batch norm"),
        f"{STEP}/det/backbone/block2a_expand_bn/moments/mean:Mean": ("forward", "batch norm"),
        f"{STEP}/det/backbone/stem_activation/mul_1:_MklSwish": ("forward", "activation"),
        f"{STEP}/Sigmoid_70:Sigmoid": ("backward", "activation"),  # tf.nn.silu's own gradient, at top level
        "CpuExecutable::ExecuteAsyncOnStream": ("backward", "activation"),  # the fused swish gradient (XLA)
        f"{STEP}/AddN_208:AddN": ("backward", "other layers"),
        f"{STEP}/det/backbone/block2a_se_excite/mul:Mul": ("forward", "other layers"),
        f"{STEP}/detector_loss/Maximum_2:Maximum": ("forward", "loss"),
        f"{STEP}/gradient_tape/detector_loss/Tile:Tile": ("backward", "loss"),
        f"{STEP}/compile_loss/mse/Mean:Mean": ("forward", "loss"),
        f"{STEP}/adamw/mul_835:Mul": ("forward", "optimizer"),
    }
    _, by_family, by_type = summarise({name: 1.0 for name in rows}, "adamw")
    expected = {}
    for phase, family in rows.values():
        key = (family, "backward" if phase == "backward" else "forward")
        expected[key] = expected.get(key, 0) + 1.0
    assert dict(by_family) == expected
    assert by_type[("DepthwiseConv2dNativeBackpropFilter", "backward")] == 1.0
    assert by_type[("Mul", "optimizer")] == 1.0


def test_profile_reads_a_real_training_trace():
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, name="head")(conv_bn_act(inputs, 8, 3, "stem")))
    model.compile(keras.optimizers.AdamW(1e-3), loss="mse", jit_compile=False)
    data = tf.data.Dataset.from_tensors((np.ones((4, 32, 32, 3), "float32"), np.zeros((4, 32, 32, 2), "float32")))
    wall, times = profile(model, data.repeat(), steps=2, warmup=1)
    by_phase, by_family, by_type = summarise(times, model.optimizer.name)
    assert wall > 0 and set(by_phase) == {"forward", "backward", "optimizer", "loss"}
    assert by_type[("Conv2DBackpropFilter", "backward")] > 0  # oneDNN's kernel, "_MklNative" prefix removed
    assert by_type[("FusedBatchNormGradV3", "backward")] > 0  # nets.fused.BatchNormalization while training
    assert by_family[("activation", "backward")] > 0  # the fused swish gradient runs as XLA code
    assert by_family[("convolution", "forward")] > 0
