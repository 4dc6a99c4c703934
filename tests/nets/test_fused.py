"""The fused training kernels equal Keras' layers: outputs, every gradient and the moving statistics."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nets.fused import BatchNormalization, Swish, set_fused_kernels
from nets.layers import conv_bn_act


def run_step(layer_factory, fused: bool, x: tf.Tensor, training: bool = True):
    layer = layer_factory(fused)
    if not layer.built:
        layer.build(x.shape)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(tf.cast(y, "float32") * tf.sin(tf.cast(y, "float32")))  # a non-trivial upstream
    gradients = tape.gradient(loss, [x, *layer.trainable_weights])
    return layer, [y.numpy(), *(g.numpy() for g in gradients)]


def batchnorm(trainable: bool, dtype: str = "float32"):
    def make(fused: bool) -> BatchNormalization:
        layer = BatchNormalization(momentum=0.9, epsilon=1e-3, fused=fused, dtype=dtype)
        layer.build((4, 9, 7, 5))
        layer.gamma.assign(np.arange(1, 6) / 3)
        layer.beta.assign(np.arange(5) / 7)
        layer.moving_mean.assign(np.full(5, 0.5))
        layer.moving_variance.assign(np.full(5, 2.0))
        layer.trainable = trainable
        return layer
    return make


def assert_close_to_bfloat16(ours: np.ndarray, theirs: np.ndarray, relative: float) -> None:
    ours, theirs = np.float32(ours), np.float32(theirs)
    np.testing.assert_allclose(ours, theirs, atol=relative * np.abs(theirs).max())


@pytest.fixture
def features() -> tf.Tensor:
    return tf.constant(np.random.default_rng(0).normal(2.0, 3.0, (4, 9, 7, 5)).astype("float32"))


@pytest.mark.parametrize("trainable", [True, False], ids=["training", "frozen"])
def test_fused_batchnorm_equals_keras(features, trainable):
    fused_layer, fused = run_step(batchnorm(trainable), True, features)
    keras_layer, reference = run_step(batchnorm(trainable), False, features)
    assert len(fused) == len(reference) == (4 if trainable else 2)  # y, dx (, dgamma, dbeta)
    for ours, theirs in zip(fused, reference, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())
    np.testing.assert_allclose(fused_layer.moving_mean.numpy(), keras_layer.moving_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(fused_layer.moving_variance.numpy(), keras_layer.moving_variance.numpy(), rtol=1e-6)
    if trainable:  # the biased batch variance, by hand: 0.9 · 2 + 0.1 · var
        expected = 0.9 * 2.0 + 0.1 * features.numpy().var(axis=(0, 1, 2))
        np.testing.assert_allclose(fused_layer.moving_variance.numpy(), expected, rtol=1e-5)
    else:
        np.testing.assert_array_equal(fused_layer.moving_variance.numpy(), np.full(5, 2.0))


def test_fused_batchnorm_in_mixed_bfloat16_stays_within_bfloat16_precision(features):
    _, fused = run_step(batchnorm(True, "mixed_bfloat16"), True, features)
    _, reference = run_step(batchnorm(True, "mixed_bfloat16"), False, features)
    assert fused[0].dtype == reference[0].dtype
    for ours, theirs in zip(fused, reference, strict=True):
        assert_close_to_bfloat16(ours, theirs, 2 ** -5)


def test_batchnorm_for_inference_is_keras_layer(features):
    fused_layer, fused = run_step(batchnorm(True), True, features, training=False)
    _, reference = run_step(batchnorm(True), False, features, training=False)
    for ours, theirs in zip(fused, reference, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(fused_layer.moving_mean.numpy(), np.full(5, 0.5))


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_swish_fused_gradient_equals_silu(features, dtype):
    _, fused = run_step(lambda fused: Swish(fused=fused, dtype=dtype), True, features)
    _, reference = run_step(lambda fused: Swish(fused=fused, dtype=dtype), False, features)
    tolerance = 1e-6 if dtype == "float32" else 2 ** -5  # Keras' gradient rounds each op to bfloat16; ours once
    for ours, theirs in zip(fused, reference, strict=True):
        assert_close_to_bfloat16(ours, theirs, tolerance)
    x = features.numpy()
    sigmoid = 1 / (1 + np.exp(-x))
    if dtype == "float32":  # dy/dx of x·σ(x) = σ + x·σ·(1 − σ), times the upstream (sin y + y cos y)
        y = x * sigmoid
        np.testing.assert_allclose(fused[1], (sigmoid + x * sigmoid * (1 - sigmoid)) * (np.sin(y) + y * np.cos(y)),
                                   rtol=1e-4, atol=1e-5)


def test_fused_layers_save_load_and_switch(tmp_path):
    inputs = keras.Input((16, 16, 3))
    inner = keras.Model(inputs, conv_bn_act(inputs, 4, 3, "inner"), name="inner")
    outer_inputs = keras.Input((16, 16, 3))
    model = keras.Model(outer_inputs, conv_bn_act(inner(outer_inputs), 6, 1, "outer"))
    assert set_fused_kernels(model, False) == 4  # two BatchNormalization, two Swish, one level nested
    assert not model.get_layer("inner").get_layer("inner_bn").fused
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("outer_bn")) is BatchNormalization and not loaded.get_layer("outer_bn").fused
    assert type(loaded.get_layer("outer_act")) is Swish
    images = np.random.default_rng(1).uniform(size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), model.predict(images, verbose=0))

