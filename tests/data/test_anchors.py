"""Anchors: shape IoU and fit figures by hand, k-means recovering known clusters, the script and autoanchor."""

import logging

import numpy as np
import pytest

from tests.conftest import write_image
from utils.data.anchors import anchor_fit, check_anchors, kmeans_anchors, letterboxed_box_shapes, shape_iou
from utils.data.annotations import Annotation


def test_shape_iou_and_fit_by_hand():
    assert shape_iou(np.array([[4.0, 4.0]]), np.array([[2.0, 8.0]]))[0, 0] == pytest.approx(8 / 24)
    shapes = np.array([[10.0, 10.0], [100.0, 10.0], [30.0, 10.0]])
    fit = anchor_fit(shapes, np.array([[10.0, 10.0], [20.0, 10.0]]))
    # (10,10) matches both anchors (ratios 1 and 2); (100,10) neither (ratio 5 and 10 ≥ 4); (30,10) both (3, 1.5).
    assert fit.best_possible_recall == pytest.approx(2 / 3)
    assert fit.anchors_above_threshold == pytest.approx(4 / 3)
    assert fit.mean_best_iou == pytest.approx((1.0 + 200 / 1000 + 200 / 300) / 3)


def test_kmeans_recovers_three_clusters_deterministically():
    rng = np.random.default_rng(1)
    centres = np.array([[10.0, 10.0], [30.0, 60.0], [100.0, 80.0]])
    shapes = np.concatenate([c * rng.uniform(0.95, 1.05, (200, 2)) for c in centres])
    anchors = kmeans_anchors(shapes, 3, seed=0)
    np.testing.assert_allclose(anchors, centres, rtol=0.03)
    np.testing.assert_array_equal(anchors, kmeans_anchors(shapes, 3, seed=0))
    with pytest.raises(ValueError, match="at least 9 boxes, got 3"):
        kmeans_anchors(shapes[:3], 9)


def test_box_shapes_are_letterboxed_and_unreadable_images_skipped(tmp_path, caplog):
    image = write_image(tmp_path / "a.jpg", height=60, width=80)
    boxes = np.array([[0, 0, 40, 30, 0], [10, 10, 10.5, 20, 1]], np.float32)  # the second is 1 px wide at 160
    annotations = [Annotation(str(image), boxes), Annotation(str(tmp_path / "gone.jpg"), boxes)]
    with caplog.at_level(logging.WARNING):
        shapes = letterboxed_box_shapes(annotations, 160)
    np.testing.assert_allclose(shapes, [[80, 60]])  # scale 160 / 80
    assert "gone.jpg: image not found" in caplog.text
    assert "1 of 2 boxes are narrower or shorter than 2 px at input size 160 and are left out" in caplog.text


def test_autoanchor_warns_and_replaces_only_when_asked(tmp_path, caplog):
    image = write_image(tmp_path / "a.jpg", height=100, width=100)
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 40, (30, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(40, 60, (30, 2)), np.zeros((30, 1))], 1).astype(np.float32)
    annotations = [Annotation(str(image), boxes)]
    tiny = np.full((9, 2), 4.0, np.float32)  # 40–60 px boxes are over 4× these: recall 0
    with caplog.at_level(logging.WARNING):
        kept = check_anchors(annotations, tiny, 100)
    np.testing.assert_array_equal(kept, tiny)
    assert "anchors reach only 0.0% of the training boxes" in caplog.text
    replaced = check_anchors(annotations, tiny, 100, recompute=True)
    assert anchor_fit(boxes[:, 2:4] - boxes[:, :2], replaced).best_possible_recall == 1.0


def test_kmeans_script_writes_anchors_in_416_units(tmp_path, capsys):
    import kmeans_for_anchors

    image = write_image(tmp_path / "a.jpg", height=208, width=208)
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (40, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 100, (40, 2))], 1)
    line = f"{image} " + " ".join(f"{x1:.0f},{y1:.0f},{x2:.0f},{y2:.0f},0" for x1, y1, x2, y2 in boxes)
    (tmp_path / "train.txt").write_text(line + "\n")
    out = tmp_path / "anchors.txt"
    assert kmeans_for_anchors.main(["--annotations", str(tmp_path / "train.txt"), "--input-size", "104",
                                    "--output", str(out)]) == 0
    written = np.loadtxt(out, delimiter=",")
    assert written.shape == (9, 2)
    # The image (208) letterboxed to 104 halves the boxes; the file is in 416 units, 4× that: original pixels × 2.
    assert written.max() <= 2 * 101 and written.min() >= 2 * 9
    assert "best possible recall" in capsys.readouterr().out
