"""`YoloDetector`: the whole detector as one Keras model, self-contained in its `.keras` file.

It is the functional network (image → [p3, p4, p5] raw outputs) plus what is needed to use and to train it: class
names, the head's box geometry (anchors, box coding, input size), its own inference settings (`DetectConfig`) and its
loss (`compile(optimizer, loss_config=...)`; `fit` takes (images, padded boxes) batches and needs nothing else).
`keras.saving.load_model("best.keras")` (after `import nets`, which registers EffYOLO's classes) gives a model whose
`detect` takes images of any size and returns boxes in those images' pixels.

    >>> import keras, nets
    >>> detector = keras.saving.load_model("logs/demo/best.keras")
    >>> found = detector.detect(image)          # (H, W, 3) uint8 RGB → [Detections]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import tensorflow as tf
from tqdm import tqdm

from nets.loss import YoloV3Loss
from nets.loss_tal import TaskAlignedLoss
from nets.loss_v5 import YoloV5Loss
from utils.config.detect_config import DetectConfig
from utils.config.run_config import LossConfig
from utils.data.image_arrays import rgb_images, same_size_batches
from utils.data.pipeline import build_inference_dataset
from utils.ops import levels
from utils.ops.coding import DEFAULT_REG_MAX
from utils.ops.decoder import Decoder
from utils.ops.detections import Detections

# Keys of the settings an earlier version kept in its saved decoder, and their names now.
EARLIER_SETTING_KEYS = {"score_threshold": "score_threshold", "iou_threshold": "nms_iou",
                        "max_detections": "max_detections", "letterbox": "letterbox"}


@keras.saving.register_keras_serializable(package="effyolo")
class YoloDetector(keras.Model):
    """A functional model sharing the layers of `network`, with `class_names`, its box geometry (`decoder`: a
    `Decoder` or its `geometry()`) and its own inference `settings`."""

    def __init__(self, network: keras.Model, class_names: Sequence[str], decoder: Decoder | dict,
                 settings: DetectConfig | dict | None = None, **kwargs) -> None:
        kwargs.setdefault("name", network.name)
        super().__init__(inputs=network.inputs, outputs=network.outputs, **kwargs)
        self.class_names = tuple(class_names)
        geometry = decoder.geometry() if isinstance(decoder, Decoder) else dict(decoder)
        self.settings = settings if isinstance(settings, DetectConfig) else DetectConfig.from_dict(settings or {})
        self.decoder = Decoder(**geometry, settings=self.settings)
        input_hw = tuple(network.input_shape[1:3])
        if None not in input_hw and self.decoder.input_hw != input_hw:  # a network of any input size takes any
            raise ValueError(f"decoder input size {self.decoder.input_hw} differs from the network's {input_hw}")
        classes = self.decoder.class_count(network.outputs[0].shape)
        if classes != len(self.class_names):
            raise ValueError(f"{len(self.class_names)} class names for a head of {classes} classes")
        self.decoder_for(self.settings)  # its class filter names classes of this model
        self._functions = _Cache()
        self._training = _Cache()

    @classmethod
    def from_network(cls, network: keras.Model, class_names: Sequence[str], anchors=(), box_coding: str = "v5",
                     settings: DetectConfig | None = None, reg_max: int = DEFAULT_REG_MAX,
                     input_hw: tuple[int, int] | None = None) -> YoloDetector:
        """Wrap a functional network (`nets.yolo.build_yolo`) with its class names, anchors (input pixels; none for
        the decoupled head's box coding "dfl", with `reg_max` bins), box coding and inference settings (default:
        `DetectConfig()`). `input_hw`: the size images are letterboxed to (default: the network's input size; needed
        for a network of any input size)."""
        input_hw = input_hw or tuple(network.input_shape[1:3])
        if None in input_hw:
            raise ValueError("the network takes any input size: give input_hw, the size to letterbox images to")
        decoder = Decoder(anchors=anchors, input_hw=input_hw, box_coding=box_coding, reg_max=reg_max)
        return cls(network, class_names, decoder, settings)

    @property
    def input_hw(self) -> tuple[int, int]:
        return self.decoder.input_hw

    def with_settings(self, settings: DetectConfig) -> YoloDetector:
        """The same detector (the same layers and weights) carrying other inference settings (saved with it)."""
        return YoloDetector(keras.Model(self.inputs, self.outputs, name=self.name), self.class_names, self.decoder,
                            settings)

    def for_inference(self) -> YoloDetector:
        """The same detector (the same layers and weights) without the training setup: what a `.keras` file holds,
        so loading it needs no optimizer, schedule or loss classes."""
        return self.with_settings(self.settings)

    def get_config(self) -> dict:
        network = keras.Model(self.inputs, self.outputs, name=self.name)
        return {"name": self.name, "trainable": self.trainable,
                "network": keras.saving.serialize_keras_object(network), "class_names": list(self.class_names),
                "decoder": self.decoder.geometry(), "settings": self.settings.to_dict()}

    @classmethod
    def from_config(cls, config: dict) -> YoloDetector:
        config = dict(config)
        network = keras.saving.deserialize_keras_object(config.pop("network"))
        decoder = dict(config.pop("decoder"))
        # An earlier version saved the inference settings inside its decoder.
        earlier = {new: decoder.pop(old) for old, new in EARLIER_SETTING_KEYS.items() if old in decoder}
        settings = config.pop("settings", None) or earlier
        return cls(network, decoder=decoder, settings=settings, **config)

    # Inference.

    def decoder_for(self, settings: DetectConfig | None = None) -> Decoder:
        """The decoder of these settings (default: the detector's own), its class filter as class indices."""
        settings = settings or self.settings
        return Decoder(**self.decoder.geometry(), settings=settings,
                       class_ids=class_indices(self.class_names, settings.classes))

    def detection_function(self, settings: DetectConfig | None = None):
        """(model-input images (B, h, w, 3), original sizes (B, 2)) → padded detections, as a plain function (eager,
        or wrapped by `tf.function` or an export archive). With `settings.xla` the model and box decoding run
        XLA-compiled (NMS, whose output size depends on the data, stays outside)."""
        decoder = self.decoder_for(settings)

        def decode(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return decoder.decode(self(images, training=False))

        if decoder.settings.xla:
            decode = tf.function(decode, jit_compile=True)

        def detect(images: tf.Tensor, image_hw: tf.Tensor) -> dict[str, tf.Tensor]:
            return decoder.select(*decode(images), image_hw)

        return detect

    def serving_function(self, settings: DetectConfig | None = None):
        """uint8 images (B, H, W, 3) of one size → padded detections in their pixels: letterbox (or stretch), the
        model, decoding, NMS — the exported `serve` endpoint, as a plain function."""
        decoder = self.decoder_for(settings)
        detect = self.detection_function(settings)

        def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
            return detect(*decoder.prepare(images))

        return serve

    def compiled_detection(self, settings: DetectConfig | None = None):
        """`detection_function` as a graph function, cached per settings."""
        settings = settings or self.settings
        return self._functions.get(("detect", settings), lambda: tf.function(
            self.detection_function(settings), reduce_retracing=True, autograph=False))

    def detect(self, images, settings: DetectConfig | None = None) -> list[Detections]:
        """Detections of one image (H, W, 3), a batch (B, H, W, 3) or a list of images of any sizes, in those
        images' pixels (images checked and converted by `utils.data.image_arrays`: uint8 RGB as it is; grayscale,
        RGBA, float and wider integer images where their range is unambiguous). One graph per image-size class, so
        video frames never retrace."""
        settings = settings or self.settings
        serve = self._functions.get(("serve", settings), lambda: tf.function(
            self.serving_function(settings), input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)],
            autograph=False))
        found: list[Detections] = []
        for batch in same_size_batches(rgb_images(images)):
            result = {name: value.numpy() for name, value in serve(tf.constant(batch)).items()}
            found += _unpadded(result)
        return found

    def detect_paths(self, paths: Sequence[str], settings: DetectConfig | None = None,
                     progress: bool = False) -> list[Detections]:
        """Detections for image files that exist and decode (`utils.inference.files.detect_files` checks them
        first), in order: decoding and letterbox in tf.data, `settings.batch_size` images a forward pass."""
        settings = settings or self.settings
        detect = self.compiled_detection(settings)
        dataset = build_inference_dataset(list(paths), self.input_hw, settings.batch_size, settings.letterbox)
        detections: list[Detections | None] = [None] * len(paths)
        bar = tqdm(total=len(paths), desc="detecting", unit="img", disable=not progress, leave=False)
        for images, image_hw, indices in dataset:
            result = {key: value.numpy() for key, value in detect(images, image_hw).items()}
            for index, found in zip(indices.numpy(), _unpadded(result), strict=True):
                detections[index] = found
            bar.update(len(indices))
        bar.close()
        return detections  # type: ignore[return-value]

    # Training.

    def compile(self, optimizer="adamw", loss_config: LossConfig | None = None,
                nominal_batch_size: int | None = None, **kwargs) -> None:
        """Compile with the detector's own loss (`detector_loss`: from its box coding, anchors and the level table,
        with `loss_config`'s settings). `nominal_batch_size`: the v5 and task-aligned losses are scaled to this
        batch, as YOLOv5 scales its loss to the nominal 64 by gradient accumulation (None: the batch's own size)."""
        if kwargs.get("loss") is not None:
            raise ValueError("YoloDetector computes its own loss: give loss_config=LossConfig(...), not loss=")
        kwargs.pop("loss", None)
        super().compile(optimizer=optimizer, **kwargs)
        loss_config = loss_config or LossConfig()
        self._training.set("loss_settings", {"loss_config": dataclasses.asdict(loss_config),
                                             "nominal_batch_size": nominal_batch_size})
        loss = detector_loss(self.decoder, len(self.class_names), loss_config, nominal_batch_size)
        self._training.set("loss", loss)
        self._training.set("trackers", {part: keras.metrics.Mean(name=f"{part}_loss") for part in loss.part_names})

    def get_compile_config(self) -> dict:
        """Keras' compile config (optimizer, …) with the loss settings, so a compiled detector saved and loaded
        comes back compiled the same way."""
        config = super().get_compile_config()
        return {**config, **self._training.values.get("loss_settings", {})} if config else config

    def compile_from_config(self, config: dict) -> None:
        config = dict(config)
        loss_config = LossConfig(**config.pop("loss_config", {}))
        nominal_batch_size = config.pop("nominal_batch_size", None)
        self.compile(**keras.saving.deserialize_keras_object(config), loss_config=loss_config,
                     nominal_batch_size=nominal_batch_size)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    @tf.autograph.experimental.do_not_convert  # graph ops only: AutoGraph's conversion would only slow tracing
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The sum of the loss parts (box, objectness and class for the anchor heads; box, class and DFL for the
        decoupled head) for padded boxes `y` (B, max_boxes, 5), x1, y1, x2, y2, class in input pixels (−1 rows pad);
        the parts are logged as `box_loss`, ….

        The sum is divided by the replica count, as Keras' own losses are, so replicas' gradients add up to the
        global batch's."""
        loss = self._training.values.get("loss")
        if loss is None:
            raise ValueError("compile the detector first: detector.compile(optimizer)")
        with tf.name_scope("detector_loss"):  # what benchmarks/profile_train.py counts as the loss
            totals = loss.parts(y, list(y_pred))
        for part, tracker in self._training.values.get("trackers", {}).items():
            tracker.update_state(totals[part])
        total = tf.add_n(list(totals.values()))
        if self.losses:  # regularisation losses of layers, if any
            total = total + tf.add_n([tf.cast(tf.reduce_sum(value), total.dtype) for value in self.losses])
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return total / replicas if replicas > 1 else total

    @property
    def metrics(self) -> list:
        training = getattr(self, "_training", None)  # Keras reads this while the model is being built
        return super().metrics + (list(training.values.get("trackers", {}).values()) if training else [])


class PerLevelLoss:
    """The anchor heads' loss: one `keras.losses.Loss` per level (v3 or v5 assignment), their parts summed."""

    part_names = ("box", "objectness", "class")

    def __init__(self, losses: list[keras.losses.Loss]) -> None:
        self.losses = losses

    def parts(self, boxes: tf.Tensor, outputs: list[tf.Tensor]) -> dict[str, tf.Tensor]:
        totals = dict.fromkeys(self.part_names, 0.0)
        for loss, raw in zip(self.losses, outputs, strict=True):
            for part, value in loss.parts(boxes, raw).items():
                totals[part] = totals[part] + value
        return totals


def detector_loss(decoder: Decoder, num_classes: int, config: LossConfig,
                  nominal_batch_size: int | None = None) -> PerLevelLoss | TaskAlignedLoss:
    """The loss of a head of `decoder`'s box coding: per level with v3 or v5 assignment (anchor head), or over all
    levels with task-aligned assignment (decoupled head); gains left unset take the head's defaults."""
    if decoder.anchor_free:
        config = config.for_head("decoupled")
        return TaskAlignedLoss(num_classes, decoder.reg_max, config.topk, config.alignment_alpha,
                               config.alignment_beta, config.box_gain, config.class_gain, config.dfl_gain,
                               batch_scale=nominal_batch_size)
    config = config.for_head("anchor")
    common = {"anchors": decoder.anchors, "num_classes": num_classes, "input_size": decoder.input_hw,
              "box_gain": config.box_gain, "objectness_gain": config.objectness_gain,
              "class_gain": config.class_gain}
    indices = range(len(levels.LEVELS))
    if decoder.box_coding == "v5":
        return PerLevelLoss([YoloV5Loss(level=level, anchor_t=config.anchor_t, label_smoothing=config.label_smoothing,
                                        batch_scale=nominal_batch_size, **common) for level in indices])
    return PerLevelLoss([YoloV3Loss(level=level, ignore_threshold=config.ignore_threshold,
                                    match_threshold=config.match_threshold, iou_objectness=config.iou_objectness,
                                    **common) for level in indices])


def class_indices(class_names: Sequence[str], wanted: Sequence[str] | None) -> tuple[int, ...] | None:
    """Indices of the `wanted` class names (None: every class); an error names the unknown ones."""
    if not wanted:
        return None
    unknown = sorted(set(wanted) - set(class_names))
    if unknown:
        raise ValueError(f"classes {', '.join(unknown)}: not among the model's classes ({', '.join(class_names)})")
    return tuple(list(class_names).index(name) for name in wanted)


def _unpadded(result: dict) -> list[Detections]:
    """Padded batch outputs (boxes, scores, classes, count) → one `Detections` per image."""
    return [Detections(result["boxes"][i, :n], result["scores"][i, :n], result["classes"][i, :n])
            for i, n in enumerate(result["count"])]


class _Cache:
    """Values by key, outside Keras' tracking: Keras and TensorFlow track dicts and lists assigned to a model (and
    would try to save graph functions and losses with it), not the insides of other objects."""

    def __init__(self) -> None:
        self.values: dict = {}

    def get(self, key, make):
        if key not in self.values:
            self.values[key] = make()
        return self.values[key]

    def set(self, key, value) -> None:
        self.values[key] = value
