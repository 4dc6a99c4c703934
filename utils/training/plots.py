"""Training plots: losses and validation mAP per epoch, from the run's CSV log."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

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


# The logged loss parts, in words.
LOSS_NAMES = {"loss": "total", "box_loss": "box (CIoU)", "objectness_loss": "objectness", "class_loss": "class",
              "dfl_loss": "box distribution (DFL)"}


def plot_training(csv_path: str | Path, out_path: str | Path, markers: dict[str, int] | None = None) -> None:
    """The loss and its parts, validation mAP (the evaluated epochs joined) and the learning rate per epoch, side by
    side, with `markers` (a label → the first epoch it applies to, 0-based: the backbone unfrozen, mosaic off, a
    progressive stage) drawn across every panel; written atomically as PNG."""
    log = read_csv_log(csv_path)
    if not log.get("epoch"):
        return
    epochs = [e + 1 for e in log["epoch"]]
    panels = 3 if "lr" in log else 2
    figure, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4))
    loss_axis, map_axis = axes[0], axes[1]
    for key in [k for k in LOSS_NAMES if k in log] + sorted(k for k in log if k.endswith("loss")
                                                                and k not in LOSS_NAMES):
        loss_axis.plot(epochs, log[key], label=LOSS_NAMES.get(key, key), linewidth=2 if key == "loss" else 1)
    loss_axis.set(xlabel="epoch", ylabel="loss", title="training loss and its parts", yscale="log")
    loss_axis.legend(fontsize=8)
    for key, label in (("val_map50", "mAP@0.5"), ("val_map50_95", "mAP@0.5:0.95")):
        if key in log:
            evaluated = [(e, v) for e, v in zip(epochs, log[key], strict=True) if v == v]  # NaN: not evaluated
            if evaluated:
                map_axis.plot(*zip(*evaluated, strict=True), marker="o", label=label)
    map_axis.set(xlabel="epoch", ylabel="mAP", title="validation mAP", ylim=(0, 1))
    if map_axis.lines:  # none before the first evaluation
        map_axis.legend(fontsize=8)
    if "lr" in log:
        axes[2].plot(epochs, log["lr"], marker=".")
        axes[2].set(xlabel="epoch", ylabel="learning rate", title="learning rate (end of epoch)", yscale="log")
    for axis in axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlim(0.5, max(epochs) + 0.5)
        for index, (label, epoch) in enumerate(sorted((markers or {}).items(), key=lambda item: item[1])):
            if 0 < epoch < max(epochs):  # between epoch `epoch` and the next, as trained
                axis.axvline(epoch + 0.5, color=f"C{index + 3}", linestyle="--", linewidth=1,
                             label=label if axis is loss_axis else None)
    if markers:
        loss_axis.legend(fontsize=8)
    figure.tight_layout()
    atomic_write(out_path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    plt.close(figure)
