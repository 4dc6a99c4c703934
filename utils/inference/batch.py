"""A detector over image files in batches: decoding and letterbox in tf.data, the detector's graph function."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from nets.detector import YoloDetector
from utils.data.formats import IMAGE_SUFFIXES
from utils.data.pipeline import build_inference_dataset
from utils.ops.decoder import Decoder
from utils.ops.detections import Detections


def predict_paths(detector: YoloDetector, image_paths: list[str], batch_size: int = 8,
                  decoder: Decoder | None = None, progress: bool = True, jit_compile: bool = False
                  ) -> list[Detections]:
    """Detections for each image, in `image_paths` order (`decoder`: settings other than the detector's own)."""
    decoder = decoder or detector.decoder
    detect = detector.compiled_detection(decoder, jit_compile)
    dataset = build_inference_dataset(image_paths, decoder.input_hw, batch_size, decoder.letterbox)
    detections: list[Detections | None] = [None] * len(image_paths)
    bar = tqdm(total=len(image_paths), desc="detecting", unit="img", disable=not progress, leave=False)
    for images, image_hw, indices in dataset:
        result = {key: value.numpy() for key, value in detect(images, image_hw).items()}
        for row, index in enumerate(indices.numpy()):
            count = result["count"][row]
            detections[index] = Detections(result["boxes"][row, :count], result["scores"][row, :count],
                                           result["classes"][row, :count])
        bar.update(len(indices))
    bar.close()
    return detections  # type: ignore[return-value]


def image_files(source: str | Path | list) -> list[str]:
    """An image file, a folder (its images, searched recursively, sorted) or a list of files → file paths."""
    if isinstance(source, (list, tuple)):
        return [str(path) for path in source]
    path = Path(source)
    if path.is_dir():
        found = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise ValueError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in it or below it")
        return found
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image or folder not found")
    return [str(path)]


def detect_images(detector: YoloDetector, source: str | Path | list, batch_size: int = 8,
                  decoder: Decoder | None = None) -> dict[str, Detections]:
    """Detections for an image file, every image under a folder, or a list of files, by path."""
    paths = image_files(source)
    return dict(zip(paths, predict_paths(detector, paths, batch_size, decoder, progress=len(paths) > 1),
                    strict=True))
