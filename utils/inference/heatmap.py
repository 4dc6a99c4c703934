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


def heatmap_panels(image_bgr: np.ndarray, maps: list[np.ndarray], alpha: float = 0.5) -> np.ndarray:
    """The image and one overlay per level side by side (JET colours: red = high objectness), labelled."""
    panels = [image_bgr.copy()]
    for heat, stride in zip(maps, levels.strides(), strict=True):
        colour = cv2.applyColorMap(np.clip(heat * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
        panel = cv2.addWeighted(image_bgr, 1 - alpha, colour, alpha, 0)
        cv2.putText(panel, f"stride {stride}: max {heat.max():.2f}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 255), 1, cv2.LINE_AA)
        panels.append(panel)
    return np.hstack(panels)


def predict_heatmaps(request: HeatmapRequest) -> None:
    """`predict.py heatmap`: the panels of each input image, with a line per image."""
    check_images(list(request.input))
    model = load_keras_detector(request.model)
    for source, target in zip(request.input, output_paths(list(request.input), request.output), strict=True):
        image = read_bgr(source)
        maps = objectness_maps(model, cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        save_image(target, heatmap_panels(image, maps))
        print(f"{source}: objectness max per level " + " / ".join(f"{m.max():.2f}" for m in maps) + f" -> {target}")
