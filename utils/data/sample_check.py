"""Find the training samples that cannot be used — unparsable lines, missing and unreadable images — before
training starts, so that each is reported by path, counted, and skipped (or, with `strict`, stops the run)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import tensorflow as tf

from utils.data.annotations import Annotation

log = logging.getLogger(__name__)


@dataclass
class SkippedSamples:
    """What was left out of training and why; each entry names the line or the image path."""

    unparsable: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.unparsable) + len(self.missing) + len(self.unreadable)

    def summary(self) -> str:
        return (f"{self.total} training samples skipped: {len(self.unparsable)} unparsable lines, "
                f"{len(self.missing)} missing images, {len(self.unreadable)} unreadable images")

    def details(self) -> list[str]:
        return [f"unparsable line: {problem}" for problem in self.unparsable] + unusable_reasons(self.missing,
                                                                                                self.unreadable)


def unusable_reasons(missing: list[str], unreadable: list[str]) -> list[str]:
    """A `path: reason` line per missing or undecodable image (as `split_readable` returns them)."""
    return ([f"{path}: image file not found" for path in missing]
            + [f"{path}: corrupt or not an image (decoding failed)" for path in unreadable])


def find_unreadable(paths: list[str]) -> list[str]:
    """Paths whose image fails to decode: every file is decoded once, in parallel, with TensorFlow's decoder."""

    def decodes(index: tf.Tensor, path: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        with tf.control_dependencies([tf.debugging.assert_positive(tf.size(image))]):
            return tf.identity(index)

    dataset = tf.data.Dataset.from_tensor_slices((tf.range(len(paths)), tf.constant(paths, tf.string)))
    dataset = dataset.map(decodes, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors().batch(256)
    readable = {int(i) for batch in dataset for i in batch.numpy()}
    return [path for index, path in enumerate(paths) if index not in readable]


def check_images(paths: list[str]) -> None:
    """Stop, naming it, at the first input that is missing or does not decode (before any model loads). One parallel
    decode pass with the decoder inference uses; no image is kept, so a folder of any size fits in memory."""
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: image not found")
    unreadable = find_unreadable(list(paths))
    if unreadable:
        raise ValueError(f"{unreadable[0]}: not a readable image (corrupt or unsupported format)")


def readable_paths(paths: list[str]) -> tuple[list[str], list[str], list[str]]:
    """The paths whose image exists and decodes (in order), the missing ones, and the undecodable ones (sorted):
    a `stat` per file, then one parallel decode pass."""
    missing = [path for path in paths if not os.path.isfile(path)]
    present = [path for path in paths if os.path.isfile(path)]
    unreadable = set(find_unreadable(present)) if present else set()
    return [path for path in present if path not in unreadable], missing, sorted(unreadable)


def split_readable(annotations: list[Annotation]) -> tuple[list[Annotation], list[str], list[str]]:
    """The annotations whose image exists and decodes, and the paths of the missing and of the unreadable
    images (`readable_paths`)."""
    readable, missing, unreadable = readable_paths([a.image_path for a in annotations])
    kept = set(readable)
    return [a for a in annotations if a.image_path in kept], missing, unreadable


def usable_annotations(annotations: list[Annotation], unparsable: list[str], strict: bool = False
                       ) -> tuple[list[Annotation], SkippedSamples]:
    """The annotations whose image exists and decodes, and what was skipped (each logged as a warning).

    Raises:
        ValueError listing every bad sample when `strict` and any was found.
    """
    readable, missing, unreadable = split_readable(annotations)
    skipped = SkippedSamples(list(unparsable), missing, unreadable)
    if skipped.total and strict:
        raise ValueError(f"--strict: {skipped.summary()}:\n  " + "\n  ".join(skipped.details()))
    for line in skipped.details():
        log.warning("skipping %s", line)
    return readable, skipped
