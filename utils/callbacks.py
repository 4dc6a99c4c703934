"""Training callbacks: atomic checkpoints, mAP evaluation with best-model selection, plots, the close-mosaic
switch and the skipped-sample report."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from utils.annotations import Annotation
from utils.evaluation import evaluate_model
from utils.fileio import atomic_write
from utils.plots import plot_training, read_csv_log
from utils.sample_check import SkippedSamples


def save_model_atomically(model: keras.Model, path: str | Path) -> None:
    """`model.save` to a temporary `.keras` file beside `path`, then rename over it."""
    atomic_write(path, lambda tmp: model.save(tmp))


class LastCheckpoint(keras.callbacks.Callback):
    """Save the whole model (with optimizer state) to `path` at the end of every epoch."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        save_model_atomically(self.model, self.path)


class MapEvaluation(keras.callbacks.Callback):
    """Every `period` epochs (and at the last), compute validation mAP, add it to the logs, keep the best model.

    Adds `val_map50` (VOC all-point) and `val_map50_95` (COCO) to the epoch logs, so CSV and TensorBoard see them.
    On a resumed run the best score so far is read back from `history_csv`, so a worse model never replaces
    `best_path`.
    """

    def __init__(
        self, annotations: list[Annotation], anchors: np.ndarray, class_names: list[str], best_path: str | Path,
        period: int = 1, total_epochs: int | None = None, batch_size: int = 8,
        history_csv: str | Path | None = None, box_coding: str = "v3",
    ) -> None:
        super().__init__()
        self.annotations = annotations
        self.anchors = anchors
        self.class_names = class_names
        self.best_path = Path(best_path)
        self.period = max(1, period)
        self.total_epochs = total_epochs
        self.batch_size = batch_size
        self.box_coding = box_coding
        self.history_csv = Path(history_csv) if history_csv else None
        self.best = -math.inf
        self.last_metrics: dict | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.best_path.is_file() and self.history_csv is not None and self.history_csv.is_file():
            scores = [v for v in read_csv_log(self.history_csv).get("val_map50", []) if math.isfinite(v)]
            self.best = max(scores, default=-math.inf)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        last = self.total_epochs is not None and epoch + 1 == self.total_epochs
        if (epoch + 1) % self.period and not last:
            logs["val_map50"] = logs["val_map50_95"] = float("nan")
            return
        metrics = evaluate_model(self.model, self.anchors, self.annotations, self.class_names,
                                 batch_size=self.batch_size, progress=False, box_coding=self.box_coding)
        self.last_metrics = metrics
        logs["val_map50"], logs["val_map50_95"] = metrics["map50"], metrics["map50_95"]
        print(f"\nepoch {epoch + 1}: val mAP@0.5 {metrics['map50']:.4f}  mAP@[.5:.95] {metrics['map50_95']:.4f}")
        if metrics["map50"] > self.best:
            self.best = metrics["map50"]
            save_model_atomically(self.model, self.best_path)


class TrainingPlot(keras.callbacks.Callback):
    """Redraw the loss/mAP plot from the CSV log after every epoch (place after the CSVLogger)."""

    def __init__(self, csv_path: str | Path, png_path: str | Path) -> None:
        super().__init__()
        self.csv_path, self.png_path = Path(csv_path), Path(png_path)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.csv_path.is_file():
            plot_training(self.csv_path, self.png_path)


class CloseMosaic(keras.callbacks.Callback):
    """Turn mosaic and mixup off for the last `close_epochs` epochs by setting the pipeline's switch variable.

    The pipeline reads the variable per sample, so batches already prefetched when the switch flips (a few at most)
    still follow the old setting.
    """

    def __init__(self, switch: tf.Variable, total_epochs: int, close_epochs: int) -> None:
        super().__init__()
        self.switch, self.first_closed = switch, total_epochs - close_epochs

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        enabled = 0.0 if epoch >= self.first_closed else 1.0
        if float(self.switch.numpy()) != enabled:
            print(f"\nepoch {epoch + 1}: mosaic and mixup {'on' if enabled else 'off'} from here")
        self.switch.assign(enabled)


class SkippedSamplesReport(keras.callbacks.Callback):
    """Repeat the count of skipped training samples at the end of every epoch, so it is never lost in the log."""

    def __init__(self, skipped: SkippedSamples) -> None:
        super().__init__()
        self.skipped = skipped

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.skipped.total:
            print(f"\nepoch {epoch + 1}: {self.skipped.summary()} (listed at the start of training)")
