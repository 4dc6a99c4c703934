"""`YoloDetector`: the whole detector as one Keras model, self-contained in its `.keras` file.

It is the functional network (image → [p3, p4, p5] raw outputs; what `model.fit` trains with one loss per level)
plus what is needed to use it: class names and a `Decoder` (anchors, box coding, input size, score and NMS
settings). `keras.saving.load_model("best.keras")` (after `import nets`, which registers EffYOLO's classes) gives a
model whose `detect` takes uint8 images of any size and returns boxes in those images' pixels.

    >>> import keras, nets
    >>> detector = keras.saving.load_model("logs/demo/best.keras")
    >>> found = detector.detect(image)          # (H, W, 3) uint8 → [Detections]
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from utils.ops.decoder import Decoder
from utils.ops.detections import Detections


@keras.saving.register_keras_serializable(package="effyolo")
class YoloDetector(keras.Model):
    """A functional model sharing the layers of `network`, with `class_names` and a `decoder`."""

    def __init__(self, network: keras.Model, class_names: Sequence[str], decoder: Decoder | dict, **kwargs) -> None:
        kwargs.setdefault("name", network.name)
        super().__init__(inputs=network.inputs, outputs=network.outputs, **kwargs)
        self.class_names = tuple(class_names)
        self.decoder = decoder if isinstance(decoder, Decoder) else Decoder.from_config(decoder)
        input_hw = tuple(int(v) for v in network.input_shape[1:3])
        if self.decoder.input_hw != input_hw:
            raise ValueError(f"decoder input size {self.decoder.input_hw} differs from the network's {input_hw}")
        classes = int(network.outputs[0].shape[-1]) - 5
        if classes != len(self.class_names):
            raise ValueError(f"{len(self.class_names)} class names for a head of {classes} classes")
        self._functions = _FunctionCache()

    @classmethod
    def from_network(cls, network: keras.Model, class_names: Sequence[str], anchors, box_coding: str = "v3",
                     **settings) -> YoloDetector:
        """Wrap a functional network (`nets.yolo.build_yolo`) with its class names, anchors (input pixels) and box
        coding; `settings` are other `Decoder` fields."""
        decoder = Decoder(anchors=anchors, input_hw=tuple(network.input_shape[1:3]), box_coding=box_coding,
                          **settings)
        return cls(network, class_names, decoder)

    def for_inference(self) -> YoloDetector:
        """The same detector (the same layers and weights) without the training setup: what a `.keras` file holds,
        so loading it needs no optimizer, schedule or loss classes."""
        return YoloDetector(keras.Model(self.inputs, self.outputs, name=self.name), self.class_names, self.decoder)

    def get_config(self) -> dict:
        network = keras.Model(self.inputs, self.outputs, name=self.name)
        return {"name": self.name, "trainable": self.trainable,
                "network": keras.saving.serialize_keras_object(network),
                "class_names": list(self.class_names), "decoder": self.decoder.get_config()}

    @classmethod
    def from_config(cls, config: dict) -> YoloDetector:
        config = dict(config)
        network = keras.saving.deserialize_keras_object(config.pop("network"))
        return cls(network, **config)

    def detection_function(self, decoder: Decoder | None = None, jit_compile: bool = False):
        """(model-input images (B, h, w, 3), original sizes (B, 2)) → padded detections, as a plain function (eager,
        or wrapped by `tf.function` or an export archive). `decoder`: other settings than the model's own.
        `jit_compile`: model and box decoding run XLA-compiled (NMS, whose output size depends on the data, stays
        outside)."""
        decoder = decoder or self.decoder

        def decode(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return decoder.decode(self(images, training=False))

        if jit_compile:
            decode = tf.function(decode, jit_compile=True)

        def detect(images: tf.Tensor, image_hw: tf.Tensor) -> dict[str, tf.Tensor]:
            return decoder.select(*decode(images), image_hw)

        return detect

    def serving_function(self, decoder: Decoder | None = None, jit_compile: bool = False):
        """uint8 images (B, H, W, 3) of one size → padded detections in their pixels: letterbox (or stretch), the
        model, decoding, NMS — the exported `serve` endpoint, as a plain function."""
        decoder = decoder or self.decoder
        detect = self.detection_function(decoder, jit_compile)

        def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
            return detect(*decoder.prepare(images))

        return serve

    def compiled_detection(self, decoder: Decoder | None = None, jit_compile: bool = False):
        """`detection_function` as a graph function, cached per settings."""
        key = ("detect", decoder or self.decoder, jit_compile)
        return self._functions.get(key, lambda: tf.function(self.detection_function(decoder, jit_compile),
                                                            reduce_retracing=True))

    def detect(self, images, decoder: Decoder | None = None, jit_compile: bool = False) -> list[Detections]:
        """Detections of one uint8 RGB image (H, W, 3), a batch (B, H, W, 3) or a list of images of any sizes, in
        those images' pixels (one graph per image-size class: video frames never retrace)."""
        key = ("serve", decoder or self.decoder, jit_compile)
        serve = self._functions.get(key, lambda: tf.function(
            self.serving_function(decoder, jit_compile),
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)]))
        if isinstance(images, (list, tuple)):
            return [found for image in images for found in self.detect(image, decoder, jit_compile)]
        batch = tf.convert_to_tensor(images, tf.uint8)
        if batch.shape.rank == 3:
            batch = batch[None]
        result = {name: value.numpy() for name, value in serve(batch).items()}
        return [Detections(result["boxes"][i, :n], result["scores"][i, :n], result["classes"][i, :n])
                for i, n in enumerate(result["count"])]


class _FunctionCache:
    """Graph functions by settings. A plain object: Keras and TensorFlow track dicts assigned to a model (and would
    try to save these functions with it), not the insides of other objects."""

    def __init__(self) -> None:
        self._functions: dict = {}

    def get(self, key, make):
        if key not in self._functions:
            self._functions[key] = make()
        return self._functions[key]

