"""Objectness heatmaps: where each output level (stride 8, 16, 32) believes objects are, over the image."""

from __future__ import annotations

import cv2
import numpy as np
import tensorflow as tf

from nets.detector import YoloDetector
from utils.data.images import read_bgr
from utils.data.sample_check import check_images
from utils.inference.draw import save_image
from utils.inference.loading import load_keras_detector
from utils.inference.requests import HeatmapRequest
from utils.inference.stills import output_paths
from utils.ops import levels
from utils.ops.letterbox import letterbox_image, letterbox_params


def objectness_maps(model: YoloDetector, image_rgb: np.ndarray) -> list[np.ndarray]:
    """Per level, each cell's best score (the highest objectness over its anchors, or for an anchor-free head the
    highest class probability; 0–1), mapped back onto the original image (the letterbox padding cut away) as
    (H, W) float32."""
    input_hw = tuple(int(v) for v in model.input_shape[1:3])
    height, width = image_rgb.shape[:2]
    outputs = model(letterbox_image(tf.constant(image_rgb), input_hw)[None], training=False)
    scale, offset = (v.numpy() for v in letterbox_params(tf.constant([height, width]), input_hw))
    maps = []
    for raw in outputs:
        heat = model.decoder.level_scores(raw)[0].numpy()  # (H/s, W/s)
        full = cv2.resize(heat, (input_hw[1], input_hw[0]), interpolation=cv2.INTER_LINEAR)
        x0, y0 = int(round(offset[0])), int(round(offset[1]))
        inner = full[y0:y0 + int(round(height * scale[1])), x0:x0 + int(round(width * scale[0]))]
        maps.append(cv2.resize(inner, (width, height), interpolation=cv2.INTER_LINEAR))
    return maps


MIN_PANEL_WIDTH = 320  # narrower images are scaled up, so the titles stay readable
TITLE_HEIGHT = 34
BAR_WIDTH = 90


def heatmap_panels(image_bgr: np.ndarray, maps: list[np.ndarray], alpha: float = 0.5,
                   what: str = "objectness") -> np.ndarray:
    """The image and one overlay per level side by side (JET colours: red = high), each under a title, with a
    colour bar of the scale on the right. `what` names the score (objectness, or class score for an anchor-free
    head)."""
    height, width = image_bgr.shape[:2]
    scale = max(1.0, MIN_PANEL_WIDTH / width)
    size = (round(width * scale), round(height * scale))
    image = cv2.resize(image_bgr, size, interpolation=cv2.INTER_LINEAR) if scale > 1 else image_bgr
    titled = [_titled(image, "image")]
    for heat, stride, name in zip(maps, levels.strides(), levels.level_names(), strict=True):
        heat = cv2.resize(heat, size, interpolation=cv2.INTER_LINEAR) if scale > 1 else heat
        colour = cv2.applyColorMap(np.clip(heat * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
        panel = cv2.addWeighted(image, 1 - alpha, colour, alpha, 0)
        titled.append(_titled(panel, f"{name}, stride {stride}: max {heat.max():.2f}"))
    return np.hstack([*titled, colour_bar(titled[0].shape[0], what)])


def _titled(panel: np.ndarray, title: str) -> np.ndarray:
    strip = np.full((TITLE_HEIGHT, panel.shape[1], 3), 255, np.uint8)
    font_scale = 0.55
    while font_scale > 0.3 and _text_width(title, font_scale) > panel.shape[1] - 8:
        font_scale -= 0.05
    cv2.putText(strip, title, (6, 23), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([strip, panel])


def _text_width(text: str, font_scale: float) -> int:
    return cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)[0][0]


def colour_bar(height: int, what: str) -> np.ndarray:
    """A vertical JET scale from 0 (bottom) to 1 (top) with ticks, under the name of the score, `height` tall."""
    bar = np.full((height, BAR_WIDTH, 3), 255, np.uint8)
    top, bottom = TITLE_HEIGHT + 10, height - 10
    values = np.linspace(1, 0, max(bottom - top, 2))
    strip = cv2.applyColorMap((values * 255).astype(np.uint8)[:, None], cv2.COLORMAP_JET)
    bar[top:top + len(values), 8:26] = np.repeat(strip, 18, axis=1)
    cv2.putText(bar, what, (4, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for value in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = round(top + (1 - value) * (len(values) - 1))
        cv2.line(bar, (26, y), (31, y), (0, 0, 0), 1)
        cv2.putText(bar, f"{value:g}", (34, y + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def predict_heatmaps(request: HeatmapRequest) -> None:
    """`predict.py heatmap`: the panels of each input image, with a line per image."""
    check_images(list(request.input))
    model = load_keras_detector(request.model)
    for source, target in zip(request.input, output_paths(list(request.input), request.output), strict=True):
        image = read_bgr(source)
        maps = objectness_maps(model, cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        what = "class score" if model.decoder.box_coding == "dfl" else "objectness"
        save_image(target, heatmap_panels(image, maps, what=what))
        print(f"{source}: {what} max per level " + " / ".join(f"{m.max():.2f}" for m in maps) + f" -> {target}")
