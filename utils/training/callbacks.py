"""Training callbacks: atomic checkpoints and resume state, mAP evaluation with best-model selection and early
stopping, the learning-rate log, plots, the close-mosaic switch and the skipped-sample report."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

from nets.detector import YoloDetector
from utils.config.detect_config import DetectConfig
from utils.config.settings import field_default
from utils.data.annotations import Annotation
from utils.data.sample_check import SkippedSamples
from utils.evaluation.evaluate import evaluate_model
from utils.io.files import atomic_write, atomic_write_json
from utils.training.ema import WeightAverage, averaged
from utils.training.plots import plot_training
from utils.training.progress import RunProgress
from utils.training.stages import stage_for
from utils.training.time_budget import EpochPlan

EVALUATION_BATCH = field_default(DetectConfig, "batch_size")


def save_model_atomically(model: keras.Model, path: str | Path) -> None:
    """`model.save` to a temporary `.keras` file beside `path`, then rename over it. A detector is saved for
    inference (no optimizer: the resume state keeps that), so its file loads with `import nets` alone."""
    saved = model.for_inference() if isinstance(model, YoloDetector) else model
    atomic_write(path, lambda tmp: saved.save(tmp))


def finite_loss(logs: dict | None) -> bool:
    """False for an epoch whose loss went NaN or infinite: nothing of it is saved."""
    return logs is None or math.isfinite(float(logs.get("loss", 0.0)))


class LastCheckpoint(keras.callbacks.Callback):
    """Save the detector (for inference; the averaged weights with `average`) to `path` every epoch."""

    def __init__(self, path: str | Path, average: WeightAverage | None = None) -> None:
        super().__init__()
        self.path, self.average = Path(path), average

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if finite_loss(logs):
            with averaged(self.average):
                save_model_atomically(self.model, self.path)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' `BackupAndRestore` (weights with optimizer and schedule state, plus the epoch reached) with each
    file written beside and renamed over the last, so a kill at any moment leaves a complete state. An epoch whose
    loss went NaN is not saved: the state stays the last good one. With `average`, the weight average is saved
    with the state and restored with it."""

    def __init__(self, backup_dir: str, average: WeightAverage | None = None, **kwargs) -> None:
        super().__init__(backup_dir, **kwargs)
        self.average = average
        self._average_path = Path(backup_dir) / "ema.npz"

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        if self.average is not None:
            self.average.set_model(self.model)
            self.average.load(self._average_path, resumed_epoch(self.backup_dir))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if finite_loss(logs):
            super().on_epoch_end(epoch, logs)

    def _save_model(self) -> None:
        os.makedirs(self.backup_dir, exist_ok=True)
        atomic_write(self._weights_path, lambda tmp: self.model.save_weights(tmp), suffix=".weights.h5")
        if self.average is not None:
            self.average.save(self._average_path, self._current_epoch)
        atomic_write_json(self._training_metadata_path, {"epoch": self._current_epoch,
                                                         "batch": self._last_batch_seen})


def resumed_epoch(backup_dir: str | Path) -> int:
    """The epoch a run restarts at: the number of epochs its resume state has completed (0 without one)."""
    path = Path(backup_dir) / "training_metadata.json"
    if not path.is_file():
        return 0
    return int(json.loads(path.read_text(encoding="utf-8"))["epoch"])


class StopAtStepEnd(keras.callbacks.Callback):
    """Ctrl-C inside `fit` stops at the end of the running step, not inside it: a KeyboardInterrupt raised while
    TensorFlow's C++ runs a step can come out as a `SystemError` instead. A second Ctrl-C stops at once."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.requested, self.previous = False, None
        if threading.current_thread() is threading.main_thread():  # signal handlers belong to the main thread
            self.previous = signal.signal(signal.SIGINT, self.request)

    def request(self, signum: int, frame) -> None:
        self.stop_if_requested()  # the second Ctrl-C: at once
        self.requested = True
        print("\nstopping after this step (Ctrl-C again to stop now)", file=sys.stderr, flush=True)

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None

    def stop_if_requested(self) -> None:
        if self.requested:
            self.restore()
            raise KeyboardInterrupt

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.stop_if_requested()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.stop_if_requested()

    def on_train_end(self, logs: dict | None = None) -> None:
        self.restore()


class EpochTimer(keras.callbacks.Callback):
    """Add the epoch's training time (its steps, before any evaluation) to the logs as `epoch_seconds` (place first,
    before the evaluation)."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["epoch_seconds"] = time.monotonic() - self.started


class LearningRateLog(keras.callbacks.Callback):
    """Add the optimizer's current learning rate to the epoch logs as `lr` (place before CSV and TensorBoard)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            optimizer = self.model.optimizer
            rate = optimizer.learning_rate
            logs["lr"] = float(rate(optimizer.iterations) if callable(rate) else rate)


class MapEvaluation(keras.callbacks.Callback):
    """Every `period` epochs (and at the last of `plan`), compute the detector's validation mAP (through its own
    decoder at the evaluation thresholds), add it to the logs, keep the best model.

    Adds `val_map50` (VOC all-point) and `val_map50_95` (COCO) to the epoch logs, so CSV and TensorBoard see them.
    The best score and its epoch are kept in `best.json` beside `best_path`, so a resumed run never replaces the
    best model by a worse one. With `patience`, training stops that many epochs after the best one.
    """

    def __init__(
        self, annotations: list[Annotation], best_path: str | Path, period: int = 1, plan: EpochPlan | None = None,
        batch_size: int = EVALUATION_BATCH, patience: int = 0, average: WeightAverage | None = None,
    ) -> None:
        super().__init__()
        self.annotations = annotations
        self.best_path = Path(best_path)
        self.period = max(1, period)
        self.plan = plan
        self.batch_size = batch_size
        self.best_record = self.best_path.with_suffix(".json")
        self.patience = patience
        self.average = average
        self.stopped = False  # early stopping fired
        self.best = -math.inf
        self.best_epoch = -1
        self.last_metrics: dict | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.best_path.is_file() and self.best_record.is_file():
            record = json.loads(self.best_record.read_text(encoding="utf-8"))
            self.best, self.best_epoch = float(record["val_map50"]), int(record["epoch"]) - 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        last = self.plan is not None and epoch + 1 >= self.plan.end_epoch
        if ((epoch + 1) % self.period and not last) or not finite_loss(logs):
            logs["val_map50"] = logs["val_map50_95"] = float("nan")
            return
        with averaged(self.average):
            metrics = evaluate_model(self.model, self.annotations, progress=False, batch_size=self.batch_size)
            self.last_metrics = metrics
            logs["val_map50"], logs["val_map50_95"] = metrics["map50"], metrics["map50_95"]
            print(f"\nepoch {epoch + 1}: val mAP@0.5 {metrics['map50']:.4f}  "
                  f"mAP@[.5:.95] {metrics['map50_95']:.4f}")
            if metrics["map50"] > self.best:
                self.best, self.best_epoch = metrics["map50"], epoch
                save_model_atomically(self.model, self.best_path)
                atomic_write_json(self.best_record, {"epoch": epoch + 1, "val_map50": self.best,
                                                     "val_map50_95": metrics["map50_95"]})
        if self.patience and epoch - self.best_epoch >= self.patience:
            print(f"epoch {epoch + 1}: no better validation mAP@0.5 for {epoch - self.best_epoch} epochs "
                  f"(--patience {self.patience}); stopping, best {self.best:.4f} at epoch {self.best_epoch + 1}")
            self.model.stop_training = self.stopped = True


class TrainingPlot(keras.callbacks.Callback):
    """Redraw the loss/mAP plot from the CSV log after every epoch (place after the CSVLogger), with the epochs
    where the run changed marked: `markers()` gives them as they stand (label → first epoch)."""

    def __init__(self, csv_path: str | Path, png_path: str | Path,
                 markers: Callable[[], dict[str, int]] | None = None) -> None:
        super().__init__()
        self.csv_path, self.png_path, self.markers = Path(csv_path), Path(png_path), markers

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.csv_path.is_file():
            plot_training(self.csv_path, self.png_path, self.markers() if self.markers else None)


class CloseMosaic(keras.callbacks.Callback):
    """Turn mosaic and mixup off for the last `close_epochs` epochs of `plan` by setting the pipeline's switch
    variable. Decided once: under a time budget the plan's end can move after the switch (epochs without mosaic are
    faster), and mosaic stays off (`progress.mosaic_closed_at`).

    The pipeline reads the variable per sample, so batches already prefetched when the switch flips (a few at most)
    still follow the old setting.
    """

    def __init__(self, switch: tf.Variable, plan: EpochPlan, close_epochs: int, progress: RunProgress) -> None:
        super().__init__()
        self.switch, self.plan, self.close_epochs, self.progress = switch, plan, close_epochs, progress

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        closed_at = self.progress.mosaic_closed_at
        if closed_at is None and self.close_epochs and epoch >= self.plan.end_epoch - self.close_epochs:
            closed_at = self.progress.mosaic_closed_at = epoch
        enabled = 0.0 if closed_at is not None and epoch >= closed_at else 1.0
        if float(self.switch.numpy()) != enabled:
            print(f"\nepoch {epoch + 1}: mosaic and mixup {'on' if enabled else 'off'} from here")
        self.switch.assign(enabled)


class StageEnd(keras.callbacks.Callback):
    """End the current fit after the epoch when the next one belongs to a later progressive stage, by the plan as
    it stands then (place after the time budget, which moves the plan)."""

    def __init__(self, stages: list, plan: EpochPlan, progress: RunProgress) -> None:
        super().__init__()
        self.stages, self.plan, self.progress = stages, plan, progress

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if stage_for(self.stages, epoch + 1, self.plan.end_epoch, self.progress.stage) > self.progress.stage:
            self.model.stop_training = True


class SkippedSamplesReport(keras.callbacks.Callback):
    """At the end of every epoch, repeat the count of skipped training samples (so it is never lost in the log)
    and report the boxes that samples held beyond `max_boxes` (mosaic and mixup add up several images' boxes),
    which trained as background, counted by the pipeline in `dropped_boxes` (reset here)."""

    def __init__(self, skipped: SkippedSamples, dropped_boxes: tf.Variable | None = None, max_boxes: int = 0) -> None:
        super().__init__()
        self.skipped, self.dropped_boxes, self.max_boxes = skipped, dropped_boxes, max_boxes

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.skipped.total:
            print(f"\nepoch {epoch + 1}: {self.skipped.summary()} (listed at the start of training)")
        if self.dropped_boxes is not None:
            dropped = int(self.dropped_boxes.numpy())
            self.dropped_boxes.assign(0)
            if dropped:
                print(f"\nepoch {epoch + 1}: {dropped} boxes beyond --max-boxes {self.max_boxes} were cut from "
                      f"augmented samples (mosaic and mixup add up the boxes of several images) and trained as "
                      f"background; raise --max-boxes")
            if logs is not None:
                logs["dropped_boxes"] = float(dropped)
