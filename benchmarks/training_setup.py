"""The detector and batch the training benchmarks share: a compiled detector as train.py builds it (real loss,
the run's optimizer) and one batch of the real augmentation pipeline."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import keras
import tensorflow as tf

from utils.config.run_config import ModelSpec, TrainConfig
from utils.data.annotations import Annotation, read_anchors, read_annotations, read_class_names
from utils.data.pipeline import build_dataset
from utils.data.synthetic import generate_synthetic_voc
from utils.data.voc import convert_voc
from utils.training.trainer import build_model_for, compile_detector, make_optimizer

ROOT = Path(__file__).resolve().parent.parent
NUM_CLASSES = 20


def training_annotations(workdir: Path, annotations_file: str | None = None) -> list[Annotation]:
    """The lines of `annotations_file`, or 64 generated 640×480 images written under `workdir`."""
    if annotations_file:
        return read_annotations(annotations_file)[0]
    classes = read_class_names(generate_synthetic_voc(workdir / "voc", num_images=64, seed=0, image_size=(480, 640)))
    written = convert_voc(workdir / "voc", classes, workdir / "lines", progress=False).written
    return [a for path in written.values() for a in read_annotations(path)[0]]


def training_config(backbone: str, neck: str, input_size: int, batch_size: int) -> TrainConfig:
    anchors = read_anchors(ROOT / "model_data" / "yolo_anchors.txt") * input_size / 416
    spec = ModelSpec(class_names=tuple(f"c{i}" for i in range(NUM_CLASSES)), anchors=anchors, backbone=backbone,
                     neck=neck, input_size=input_size, assigner="v5" if neck == "yolov5" else "v3")
    return TrainConfig(train="-", val="-", run_dir="-", model=spec, batch_size=batch_size, nominal_batch_size=0)


def compiled_detector(config: TrainConfig) -> keras.Model:
    """The detector compiled as train.py compiles it (loss per level, AdamW on its schedule, no XLA)."""
    keras.utils.set_random_seed(0)
    model = build_model_for(config)
    compile_detector(model, config, make_optimizer(config, 1000, 0))
    return model


def pipeline_batches(config: TrainConfig, annotations: list[Annotation]) -> tf.data.Dataset:
    size = config.model.input_size
    return build_dataset(annotations, (size, size), config.batch_size, training=True, augment=config.augment)


def in_memory(pipeline: tf.data.Dataset) -> tf.data.Dataset:
    """One pipeline batch repeated: a step timed without the pipeline."""
    return tf.data.Dataset.from_tensors(next(iter(pipeline))).repeat()


def fit_step_times(model: keras.Model, dataset: tf.data.Dataset, steps: int, warmup: int) -> list[float]:
    """Seconds of each of `steps` `model.fit` batches after `warmup` untimed ones (batch begin to batch end)."""
    times: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: times.append(-time.perf_counter()),
        on_train_batch_end=lambda batch, logs: times.__setitem__(-1, times[-1] + time.perf_counter()))
    model.fit(dataset, epochs=1, steps_per_epoch=steps + warmup, callbacks=[timer], verbose=0)
    return times[warmup:]


def median_fit_step(model: keras.Model, dataset: tf.data.Dataset, steps: int, warmup: int) -> float:
    return statistics.median(fit_step_times(model, dataset, steps, warmup))
