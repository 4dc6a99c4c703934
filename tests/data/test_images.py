"""Images as a viewer shows them: the EXIF orientation applied by every reader (training, evaluation, prediction,
drawing), and the doctor decoding every image as training does."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from tests.conftest import write_image
from tests.scripts.test_predict_modes import tiny_run  # noqa: F401  (module fixture: an untrained two-class detector)
from utils.data.annotations import Annotation, format_line, read_annotations
from utils.data.images import exif_orientation, read_rgb, viewed_size


def write_with_orientation(path: Path, pixels: np.ndarray, orientation: int) -> Path:
    """Save stored `pixels` with an EXIF orientation tag (PNG keeps them exact)."""
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, exif=exif.tobytes())
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_reads_as_pillow_shows_it(tmp_path, orientation):
    stored = np.random.default_rng(orientation).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    path = write_with_orientation(tmp_path / "photo.png", stored, orientation)
    viewed = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert exif_orientation(path) == orientation
    np.testing.assert_array_equal(read_rgb(path), viewed)
    assert viewed_size(path) == (viewed.shape[1], viewed.shape[0])


def phone_photo(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A portrait photo stored as landscape (40 × 80 pixels) with orientation 6, and its viewed (80 × 40) pixels:
    a white object in the upper part of the viewed picture."""
    viewed = np.full((80, 40, 3), 60, np.uint8)
    viewed[10:30, 5:25] = 255
    stored = np.rot90(viewed, k=1).copy()  # orientation 6: rotate the stored pixels 90° clockwise to view
    return write_with_orientation(tmp_path / "phone.png", stored, 6), viewed


def test_training_and_validation_pipelines_see_the_viewed_photo(tmp_path):
    from utils.data.augment import FILL_VALUE
    from utils.data.pipeline import SampleSource, build_dataset, fit_sample
    from utils.ops.letterbox import letterbox_image

    path, viewed = phone_photo(tmp_path)
    annotation = Annotation(str(path), np.array([[5, 10, 25, 30, 0]], np.float32))  # labelled on the viewed photo
    images, boxes = next(iter(build_dataset([annotation], (64, 64), 1, training=False)))
    expected = letterbox_image(tf.constant(viewed), (64, 64), FILL_VALUE)
    np.testing.assert_allclose(images[0].numpy(), expected.numpy())
    np.testing.assert_allclose(boxes[0, 0].numpy(), [20, 8, 36, 24, 0])  # scale 0.8, centred: x offset 16
    source_image, size, source_boxes = SampleSource([annotation], (64, 64), 4).load(tf.constant(0))
    fitted = fit_sample(tf.constant(viewed), tf.constant(annotation.boxes), (64, 64), 4)
    np.testing.assert_array_equal(source_image.numpy(), fitted[0].numpy())
    np.testing.assert_array_equal(size.numpy(), [64, 32])


def test_keras_prediction_and_drawing_use_the_viewed_photo(tiny_run, tmp_path):  # noqa: F811
    from utils.data.images import read_bgr
    from utils.inference.loading import load_detector

    path, viewed = phone_photo(tmp_path)
    detector = load_detector(tiny_run)
    settings = detector.settings.replace(score_threshold=1e-6, max_detections=5)
    (from_file,) = detector.detect_paths([str(path)], settings)
    (from_pixels,) = detector.detect(viewed, settings)
    assert len(from_file.scores) == 5
    np.testing.assert_allclose(from_file.boxes, from_pixels.boxes, atol=1e-3)
    assert from_file.boxes[:, [0, 2]].max() <= 40 and from_file.boxes[:, [1, 3]].max() <= 80  # viewed frame
    np.testing.assert_array_equal(read_bgr(path)[..., ::-1], viewed)  # what predict.py draws on


def test_doctor_decodes_every_image_and_reports_exif_orientations(tmp_path):
    from utils.data.doctor import diagnose

    good = write_image(tmp_path / "good.jpg", 60, 80)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # the header is intact
    photo, _ = phone_photo(tmp_path)
    lines = tmp_path / "lines.txt"
    lines.write_text("\n".join(format_line(p, np.array([[1, 1, 20, 20, 0]])) for p in (good, truncated, photo)))
    report = diagnose(read_annotations(lines)[0], ["thing"], input_size=64)
    assert report.problems["missing or unreadable images"] == [str(truncated)]
    assert report.problems["images with an EXIF orientation (used as viewers show them)"] == [
        f"{photo}: orientation 6, 40×80 as viewed"]
    assert report.errors == 1
