"""Training plots: losses and validation mAP per epoch, from the run's CSV log."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from utils.io.files import atomic_write  # noqa: E402


def read_csv_log(path: str | Path) -> dict[str, list[float]]:
    """Columns of Keras' CSVLogger file as float lists (empty cells become NaN)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            columns.setdefault(key, []).append(float(value) if value not in ("", None) else float("nan"))
    return columns


def plot_training(csv_path: str | Path, out_path: str | Path) -> None:
    """Loss curves (total and per level), validation mAP and (when logged) the learning rate, side by side, written
    atomically as PNG."""
    log = read_csv_log(csv_path)
    if not log.get("epoch"):
        return
    epochs = [e + 1 for e in log["epoch"]]
    panels = 3 if "lr" in log else 2
    figure, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4))
    loss_axis, map_axis = axes[0], axes[1]
    for key in sorted(k for k in log if k.endswith("loss")):
        loss_axis.plot(epochs, log[key], label=key, linewidth=2 if key == "loss" else 1)
    loss_axis.set(xlabel="epoch", ylabel="loss", title="training loss", yscale="log")
    loss_axis.legend()
    for key in ("val_map50", "val_map50_95"):
        if key in log:
            map_axis.plot(epochs, log[key], marker="o", label=key)
    map_axis.set(xlabel="epoch", ylabel="mAP", title="validation mAP", ylim=(0, 1))
    map_axis.legend()
    if "lr" in log:
        axes[2].plot(epochs, log["lr"], marker=".")
        axes[2].set(xlabel="epoch", ylabel="learning rate", title="learning rate (end of epoch)", yscale="log")
    figure.tight_layout()
    atomic_write(out_path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    plt.close(figure)
