"""Batched inference over annotation lines and its evaluation, shared by get_map.py and the training callback."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from utils.data.annotations import Annotation
from utils.data.pipeline import build_inference_dataset
from utils.data.sample_check import split_readable, unusable_reasons
from utils.evaluation.metrics import evaluate_detections
from utils.ops.coding import decode_outputs, select_detections
from utils.ops.detections import Detections


def detection_function(
    model: keras.Model, anchors: np.ndarray, score_threshold: float, iou_threshold: float, max_detections: int,
    box_coding: str = "v3", letterbox: bool = True, jit_compile: bool = False,
):
    """(letterboxed images, original (H, W)) → padded detections (see `bbox.postprocess`), as a plain function:
    eager as it is, or wrapped by `tf.function` or an export archive. `letterbox=False`: the images were
    stretched to the input size instead. `jit_compile`: the model and box decoding run XLA-compiled (NMS, whose
    output size depends on the data, stays outside)."""
    input_hw = tuple(int(v) for v in model.input_shape[1:3])
    anchors = tf.constant(anchors, tf.float32)

    def decode(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return decode_outputs(model(images, training=False), anchors, box_coding=box_coding)

    if jit_compile:
        decode = tf.function(decode, jit_compile=True)

    def detect(images: tf.Tensor, image_hw: tf.Tensor) -> dict[str, tf.Tensor]:
        boxes, scores = decode(images)
        return select_detections(boxes, scores, image_hw, input_hw, score_threshold, iou_threshold, max_detections,
                                 letterbox)

    return detect


def make_detect_fn(
    model: keras.Model, anchors: np.ndarray, score_threshold: float, iou_threshold: float, max_detections: int,
    box_coding: str = "v3", letterbox: bool = True, jit_compile: bool = False,
):
    """`detection_function` as a graph function."""
    return tf.function(detection_function(model, anchors, score_threshold, iou_threshold, max_detections,
                                          box_coding, letterbox, jit_compile), reduce_retracing=True)


def predict_annotations(
    model: keras.Model,
    anchors: np.ndarray,
    image_paths: list[str],
    batch_size: int = 8,
    score_threshold: float = 0.001,
    iou_threshold: float = 0.5,
    max_detections: int = 100,
    progress: bool = True,
    box_coding: str = "v3",
    letterbox: bool = True,
    jit_compile: bool = False,
) -> list[Detections]:
    """Detections for each image, in `image_paths` order."""
    input_hw = tuple(int(v) for v in model.input_shape[1:3])
    detect = make_detect_fn(model, anchors, score_threshold, iou_threshold, max_detections, box_coding, letterbox,
                            jit_compile)
    dataset = build_inference_dataset(image_paths, input_hw, batch_size, letterbox)
    detections: list[Detections | None] = [None] * len(image_paths)
    bar = tqdm(total=len(image_paths), desc="detecting", unit="img", disable=not progress, leave=False)
    for images, image_hw, indices in dataset:
        result = {key: value.numpy() for key, value in detect(images, image_hw).items()}
        for row, index in enumerate(indices.numpy()):
            count = result["count"][row]
            detections[index] = Detections(result["boxes"][row, :count], result["scores"][row, :count],
                                           result["classes"][row, :count])
        bar.update(len(indices))
    bar.close()
    return detections  # type: ignore[return-value]


def detect_annotations(
    model: keras.Model,
    anchors: np.ndarray,
    annotations: list[Annotation],
    batch_size: int = 8,
    score_threshold: float = 0.001,
    iou_threshold: float = 0.5,
    progress: bool = True,
    box_coding: str = "v3",
    max_detections: int = 100,
) -> tuple[list[Annotation], list[Detections], list[str]]:
    """Detections for every annotated image that exists and decodes.

    Returns:
        the annotations used, their detections (same order) and a `path: reason` line per image left out.
    """
    annotations, missing, unreadable = split_readable(annotations)
    missing = unusable_reasons(missing, unreadable)
    if not annotations:
        raise ValueError("none of the annotated images exist and decode")
    detections = predict_annotations(model, anchors, [a.image_path for a in annotations], batch_size,
                                        score_threshold, iou_threshold, max_detections, progress, box_coding)
    return annotations, detections, missing


def evaluate_model(
    model: keras.Model,
    anchors: np.ndarray,
    annotations: list[Annotation],
    class_names: list[str],
    batch_size: int = 8,
    score_threshold: float = 0.001,
    iou_threshold: float = 0.5,
    progress: bool = True,
    confidence: float = 0.5,
    box_coding: str = "v3",
) -> dict:
    """Run the model over annotated images (checked beforehand: see `sample_check.split_readable`) and compute
    every metric of `map.evaluate_detections`."""
    detections = predict_annotations(model, anchors, [a.image_path for a in annotations], batch_size,
                                     score_threshold, iou_threshold, progress=progress, box_coding=box_coding)
    return evaluate_detections(detections, [a.ground_truth() for a in annotations], class_names,
                               confidence=confidence)
