"""The augmented-sample sheet: tiles with their boxes in the class colours, and a legend of classes and settings."""

import numpy as np

from utils.config.run_config import AugmentConfig
from utils.inference.draw import class_colours
from utils.training.sample_sheet import LEGEND_LINE, augmentation_summary, sample_sheet


def test_the_sheet_tiles_the_samples_and_draws_boxes_in_the_class_colours():
    images = np.zeros((5, 64, 64, 3), np.float32)
    boxes = np.full((5, 4, 5), -1.0, np.float32)
    boxes[1, 0] = [10, 20, 40, 50, 1]  # the second sample, class "b"
    sheet = sample_sheet(images, boxes, ["a", "b"], AugmentConfig(), columns=4)
    legend_height = 2 * LEGEND_LINE + 8  # one line of classes, one of settings
    assert sheet.shape == (2 * 64 + legend_height, 4 * 64, 3)  # five tiles: a row of four, then one and blanks
    assert tuple(sheet[30, 64 + 10]) == class_colours(2)[1]  # the box's left edge, in tile 2
    assert tuple(sheet[30, 10]) == (0, 0, 0)  # tile 1 has no box there
    assert (sheet[64:128, 64 + 1:4 * 64 - 1] == 255).all()  # the blank tiles
    assert (sheet[1:63, 3 * 64 + 1:4 * 64 - 1] == 0).all()  # the fourth sample's (black) tile, inside its edge
    assert (sheet[128:] != 255).any()  # the legend is drawn
    assert sample_sheet(images[:3], boxes[:3], ["a", "b"], AugmentConfig()).shape[1] == 3 * 64  # no blank column


def test_the_settings_line_names_each_augmentation():
    line = augmentation_summary(AugmentConfig(mosaic=0.5, mixup=0.1, scale_min=0.8, scale_max=1.2))
    assert line.startswith("mosaic 0.5, mixup 0.1, zoom 0.8-1.2, aspect jitter 0.3, translate 0.1")
    assert line.endswith("hsv 0.015/0.7/0.4, flip 0.5")
