"""`train(config)`: build data and model from a `TrainConfig`, fit with callbacks, leave a complete run directory."""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import keras
import tensorflow as tf

from nets.loss import YoloV3Loss
from nets.loss_v5 import YoloV5Loss
from nets.yolo import build_yolo, freeze_backbone
from utils.annotations import read_annotations
from utils.callbacks import CloseMosaic, LastCheckpoint, MapEvaluation, SkippedSamplesReport, TrainingPlot
from utils.config import TrainConfig, save_config
from utils.dataloader import build_dataset, with_level_targets
from utils.sample_check import split_readable, usable_annotations

log = logging.getLogger(__name__)


def build_model_for(config: TrainConfig) -> keras.Model:
    spec = config.model
    return build_yolo(spec.backbone, spec.neck, spec.num_classes, input_shape=spec.input_shape,
                      backbone_weights=config.backbone_weights, neck_width=spec.neck_width,
                      neck_depth=spec.neck_depth)


def make_losses(config: TrainConfig) -> list[keras.losses.Loss]:
    """One loss per output level, of the run's assigner (v3 or v5)."""
    spec = config.model
    size = (spec.input_size, spec.input_size)
    if spec.assigner == "v5":
        return [YoloV5Loss(spec.anchors, level, spec.num_classes, size, anchor_t=config.anchor_t,
                           label_smoothing=config.label_smoothing) for level in range(3)]
    if spec.assigner != "v3":
        raise ValueError(f"unknown assigner {spec.assigner!r}; expected v3 or v5")
    return [YoloV3Loss(spec.anchors, level, spec.num_classes, size, ignore_threshold=config.ignore_threshold,
                       match_threshold=config.match_threshold)
            for level in range(3)]


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """AdamW with linear warmup then cosine decay per step; no weight decay on BatchNorm or biases."""
    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(int(config.warmup_epochs * steps_per_epoch), total - 1)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate * 0.01 if warmup else config.learning_rate,
        decay_steps=total - warmup,
        alpha=config.min_learning_rate_ratio,
        warmup_target=config.learning_rate if warmup else None,
        warmup_steps=warmup,
    )
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return optimizer


def train(config: TrainConfig) -> dict:
    """Train a detector and write the run directory (DESIGN.md). Returns the final validation metrics.

    An interrupted run started again with the same `run_dir` resumes from its last completed epoch.
    """
    keras.utils.set_random_seed(config.seed)
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.json")

    train_annotations, train_problems = read_annotations(config.train, strict=False)  # strict: all listed below
    val_annotations, val_problems = read_annotations(config.val, strict=False)
    train_annotations, skipped = usable_annotations(train_annotations, train_problems, config.strict)
    if val_problems and config.strict:
        raise ValueError("--strict: unparsable validation lines:\n  " + "\n  ".join(val_problems))
    for problem in val_problems:
        log.warning("skipping unparsable validation line: %s", problem)
    val_annotations, val_missing, val_unreadable = split_readable(val_annotations)  # once, not every evaluation
    for path in val_missing:
        log.warning("skipping validation image %s: image file not found", path)
    for path in val_unreadable:
        log.warning("skipping validation image %s: corrupt or not an image (decoding failed)", path)
    if not val_annotations:
        raise ValueError(f"{config.val}: none of the annotated images exist and decode")
    spec = config.model
    input_hw = (spec.input_size, spec.input_size)
    mosaic_switch = tf.Variable(1.0, trainable=False, name="mosaic_enabled")
    train_data = build_dataset(train_annotations, input_hw, config.batch_size, training=True,
                               augment=config.augment, seed=config.seed, max_boxes=config.max_boxes,
                               cache=config.cache, mosaic_enabled=mosaic_switch)
    steps_per_epoch = len(train_annotations) // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{config.train}: {len(train_annotations)} images is fewer than one batch of "
                         f"{config.batch_size}")

    model = build_model_for(config)
    if config.freeze_backbone:
        freeze_backbone(model)
    model.compile(optimizer=make_optimizer(config, steps_per_epoch), loss=make_losses(config), jit_compile=False)

    csv_path = run_dir / "training_log.csv"
    map_evaluation = MapEvaluation(val_annotations, spec.anchor_array(), list(spec.class_names),
                                   run_dir / "best.keras", period=config.eval_period, total_epochs=config.epochs,
                                   batch_size=config.eval_batch_size, history_csv=csv_path,
                                   box_coding=spec.assigner)
    callbacks = [CloseMosaic(mosaic_switch, config.epochs, config.close_mosaic)] if (
        config.augment.mosaic or config.augment.mixup) else []
    callbacks += [
        keras.callbacks.BackupAndRestore(str(run_dir / "resume"), delete_checkpoint=False),
        keras.callbacks.TerminateOnNaN(),
        SkippedSamplesReport(skipped),
        map_evaluation,
        LastCheckpoint(run_dir / "last.keras"),
        keras.callbacks.CSVLogger(str(csv_path), append=True),
        TrainingPlot(csv_path, run_dir / "training.png"),
        keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), write_graph=False, profile_batch=0),
    ]
    history = model.fit(with_level_targets(train_data.repeat()), epochs=config.epochs, steps_per_epoch=steps_per_epoch,
                        callbacks=callbacks, shuffle=False,
                        verbose=1 if sys.stdout.isatty() else 2)  # progress bar on a terminal, else a line per epoch
    losses = history.history.get("loss", [])
    if losses and not math.isfinite(losses[-1]):
        raise FloatingPointError(f"training loss became {losses[-1]}; the last good state is in {run_dir}")
    return map_evaluation.last_metrics or {}


