"""Evaluation pictures: PR curves per class, an AP bar chart, the confusion matrix, the error breakdown and a
gallery of the worst images (true boxes against detections). Every file is written atomically."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from utils.evaluation.errors import DETECTION_KINDS, NOT_COUNTED  # noqa: E402
from utils.inference.draw import format_score  # noqa: E402
from utils.io.files import atomic_write  # noqa: E402
from utils.ops.detections import Detections  # noqa: E402

MAX_CURVE_POINTS = 400
# Okabe–Ito colours (told apart with every common colour-vision deficiency), as BGR: true boxes green, missed ones
# vermillion and thick; detections blue when right, one colour per kind of mistake.
TRUE_BOX_BGR = (115, 158, 0)
MISSED_BGR = (0, 94, 213)
KIND_BGR = {"true_positive": (178, 114, 0), "duplicate": (233, 180, 86), "class_confusion": (167, 121, 204),
            "localisation": (0, 159, 230), "background": (0, 0, 0)}
KIND_LABELS = {"true_positive": "true positive", "duplicate": "duplicate", "class_confusion": "class confusion",
               "localisation": "localisation", "background": "background"}
CONFUSION_NOTE = ("A box detected only as another class is counted in that class's column, not under missed;\n"
                  "recall and the missed count of errors.png still count it as missed.")


def save_figure(figure: plt.Figure, path: str | Path) -> None:
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    plt.close(figure)


def plot_pr_curves(curves: dict[str, tuple[np.ndarray, np.ndarray, float | None]], path: str | Path,
                   operating_points: dict[str, tuple[float, float]] | None = None) -> None:
    """One panel per class: precision against recall at IoU 0.5, its AP in the title, and (optionally) the
    operating point at the report's score threshold (`pr_score`) marked."""
    columns = min(4, max(len(curves), 1))
    rows = math.ceil(len(curves) / columns)
    width, height = 0.6 + 2.8 * columns, 0.9 + 2.6 * rows
    figure, axes = plt.subplots(rows, columns, figsize=(width, height), squeeze=False, sharex=True, sharey=True)
    # Fixed margins (in inches): tight_layout re-measures every tick label and costs a second on 20 panels.
    figure.subplots_adjust(left=0.6 / width, right=1 - 0.15 / width, bottom=0.5 / height, top=1 - 0.35 / height,
                           wspace=0.15, hspace=0.3)
    for axis in axes.flat[len(curves):]:
        axis.set_visible(False)
    for axis, (name, (recall, precision, ap)) in zip(axes.flat, curves.items(), strict=False):
        if len(recall) > MAX_CURVE_POINTS:  # thin dense curves; the envelope's shape is kept
            keep = np.unique(np.linspace(0, len(recall) - 1, MAX_CURVE_POINTS).astype(int))
            recall, precision = recall[keep], precision[keep]
        axis.plot(recall, precision, linewidth=1.5)
        if operating_points and name in operating_points:
            axis.plot(*operating_points[name], "o", color="tab:red", markersize=5)
        axis.set_title(f"{name}  AP {ap:.3f}" if ap is not None else f"{name}  n/a", fontsize=9)
        axis.grid(alpha=0.3)
    axes[0, 0].set(xlim=(0, 1), ylim=(0, 1.02), xticks=(0, 0.25, 0.5, 0.75, 1), xticklabels=("0", "", "0.5", "", "1"))
    for axis in axes[-1]:
        axis.set_xlabel("recall")
    for axis in axes[:, 0]:
        axis.set_ylabel("precision")
    save_figure(figure, path)


def plot_ap_bars(per_class: dict[str, dict], path: str | Path) -> None:
    """Horizontal bars of AP@0.5 and AP@[.5:.95] per class, best class on top."""
    names = [n for n, entry in per_class.items() if entry["ap50"] is not None]
    names.sort(key=lambda n: per_class[n]["ap50"])
    ap50 = [per_class[n]["ap50"] for n in names]
    ap50_95 = [per_class[n]["ap50_95"] or 0.0 for n in names]
    positions = np.arange(len(names))
    figure, axis = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2))
    axis.barh(positions + 0.2, ap50, height=0.4, label="AP@0.5")
    axis.barh(positions - 0.2, ap50_95, height=0.4, label="AP@[.5:.95]")
    for position, value in zip(positions, ap50, strict=True):
        axis.text(value + 0.01, position + 0.2, f"{value:.3f}", va="center", fontsize=8)
    axis.set(yticks=positions, yticklabels=names, xlim=(0, 1.1), xlabel="AP", title="AP per class")
    axis.legend(loc="lower right")
    figure.tight_layout()
    save_figure(figure, path)


def plot_confusion_matrix(confusion: np.ndarray, class_names: list[str], path: str | Path) -> None:
    """Counts in each cell; colour is the share of each true class's row; a note on how confusions count."""
    labels_true, labels_pred = [*class_names, "background"], [*class_names, "missed"]
    shares = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    side = max(4.5, 1.5 + 0.5 * len(labels_true))
    font = 10 if len(labels_true) <= 12 else 7
    figure, axis = plt.subplots(figsize=(side + 2.5, side + 1.2))
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    if len(labels_true) <= 30:
        for (row, column), count in np.ndenumerate(confusion):
            if count:
                axis.text(column, row, str(count), ha="center", va="center", fontsize=font,
                          color="white" if shares[row, column] > 0.5 else "black")
    axis.set(xticks=range(len(labels_pred)), xticklabels=labels_pred, yticks=range(len(labels_true)),
             yticklabels=labels_true, xlabel="predicted class", ylabel="true class",
             title="confusion matrix (IoU 0.5, detections at the report's score)")
    plt.setp(axis.get_xticklabels(), rotation=45, ha="right")
    figure.colorbar(image, ax=axis, fraction=0.046, label="share of the true class's row")
    figure.text(0.02, 0.01, CONFUSION_NOTE, fontsize=8, va="bottom", color="0.3")
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    save_figure(figure, path)


def plot_error_breakdown(counts: dict[str, int], path: str | Path) -> None:
    """Bars: true positives, each kind of false positive, and missed boxes."""
    kinds = [*DETECTION_KINDS, "missed"]
    figure, axis = plt.subplots(figsize=(7, 3.2))
    bars = axis.bar(kinds, [counts[k] for k in kinds],
                    color=["tab:blue", "tab:orange", "tab:purple", "gold", "tab:red", "tab:gray"])
    axis.bar_label(bars, fontsize=8)
    axis.set(ylabel="count", title="detections by outcome, and missed objects")
    plt.setp(axis.get_xticklabels(), rotation=20, ha="right")
    figure.tight_layout()
    save_figure(figure, path)


def draw_outcomes(image_bgr: np.ndarray, truth: np.ndarray, missed: np.ndarray, detections: Detections,
                  kinds: np.ndarray, class_names: list[str]) -> np.ndarray:
    """True boxes in green (missed ones thick, vermillion); counted detections coloured by outcome (`KIND_BGR`),
    each labelled with its class and score on a filled tag."""
    canvas = image_bgr.copy()
    thickness = max(1, round(min(canvas.shape[:2]) / 250))
    font_scale = max(0.45, min(canvas.shape[:2]) / 800)
    for (x1, y1, x2, y2, *_), was_missed in zip(truth, missed, strict=True):
        colour, width = (MISSED_BGR, 3 * thickness) if was_missed else (TRUE_BOX_BGR, thickness)
        cv2.rectangle(canvas, (round(x1), round(y1)), (round(x2), round(y2)), colour, width)
    for (x1, y1, x2, y2), score, class_id, kind in zip(detections.boxes, detections.scores, detections.classes,
                                                       kinds, strict=True):
        if kind == NOT_COUNTED:
            continue
        colour = KIND_BGR[DETECTION_KINDS[kind]]
        cv2.rectangle(canvas, (round(x1), round(y1)), (round(x2), round(y2)), colour, thickness)
        draw_tag(canvas, f"{class_names[int(class_id)]} {format_score(float(score))}", (round(x1), round(y1)),
                 colour, font_scale)
    return canvas


def draw_tag(canvas: np.ndarray, text: str, corner: tuple[int, int], colour: tuple[int, int, int],
             font_scale: float) -> None:
    """`text` on a filled tag of `colour` above `corner` (inside the image), in black or white, whichever reads."""
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
    x = min(max(corner[0], 0), max(canvas.shape[1] - width - 2, 0))
    y = max(corner[1], height + baseline + 2)
    cv2.rectangle(canvas, (x, y - height - baseline - 2), (x + width + 2, y), colour, -1)
    ink = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
    cv2.putText(canvas, text, (x + 1, y - baseline - 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, ink, 1, cv2.LINE_AA)


def fit_width(image_bgr: np.ndarray, width: int) -> np.ndarray:
    """Scale to `width` pixels wide, keeping the aspect ratio."""
    height = max(1, round(image_bgr.shape[0] * width / image_bgr.shape[1]))
    return cv2.resize(image_bgr, (width, height), interpolation=cv2.INTER_AREA)


def save_gallery(tiles: list[tuple[np.ndarray, str]], path: str | Path, tile_width: int = 480,
                 columns: int = 4) -> None:
    """Tiles (each image at `tile_width`, its aspect kept) with a caption strip each, in rows, and a legend of
    the colours below; a row as tall as its tallest image (white below shorter ones, none for equal sizes)."""
    if not tiles:
        return
    caption_height = 26
    columns = min(columns, len(tiles))
    rows = []
    for start in range(0, len(tiles), columns):
        images = [fit_width(image, tile_width) for image, _ in tiles[start:start + columns]]
        row_height = max(image.shape[0] for image in images)
        cells = []
        for image, (_, caption) in zip(images, tiles[start:start + columns], strict=True):
            cell = np.full((caption_height + row_height, tile_width, 3), 255, np.uint8)
            cell[caption_height:caption_height + image.shape[0]] = image
            cv2.putText(cell, caption[:56], (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
            cells.append(cell)
        cells += [np.full_like(cells[0], 255)] * (columns - len(cells))
        rows.append(np.hstack(cells))
    grid = np.vstack(rows)
    legend = np.full((32, grid.shape[1], 3), 255, np.uint8)
    x = 6
    entries = [("true box", TRUE_BOX_BGR, 2), ("missed box", MISSED_BGR, 5)] + [
        (KIND_LABELS[kind], colour, 2) for kind, colour in KIND_BGR.items()]
    for name, colour, width in entries:
        cv2.rectangle(legend, (x, 8), (x + 22, 24), colour, width)
        cv2.putText(legend, name, (x + 28, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        x += 44 + cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][0]
    image = np.vstack([grid, legend])

    def write(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), image):
            raise OSError(f"{path}: OpenCV could not write the gallery")

    atomic_write(path, write)
