"""Training-pipeline throughput on bccd: the tf.data pipeline (files, and RAM cache) against a straightforward
per-image PIL/numpy loader doing the same augmentations (`reference_loader.py`). Medians of several runs; the last
line is `speedup: X.XX` (tf.data from files, images/s, over the reference's).

Example:
    python benchmarks/bench_pipeline.py --data ../shared/datasets/bccd --grid docs/augmented_samples.jpg
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from reference_loader import ReferenceLoader  # noqa: E402

from utils.config.run_config import AugmentConfig  # noqa: E402
from utils.data.annotations import read_annotations, read_class_names  # noqa: E402
from utils.data.pipeline import build_dataset  # noqa: E402
from utils.data.voc import convert_voc  # noqa: E402
from utils.training.sample_sheet import save_sample_sheet  # noqa: E402


def images_per_second(next_batch, batch_size: int, batches: int) -> float:
    start = time.perf_counter()
    for _ in range(batches):
        next_batch()
    return batches * batch_size / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "bccd"), help="VOC folder")
    parser.add_argument("--classes", default=str(ROOT / "model_data" / "bccd_classes.txt"))
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=12, help="tf.data batches per timed run")
    parser.add_argument("--reference-batches", type=int, default=3, help="reference batches per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mosaic", type=float, default=1.0)
    parser.add_argument("--mixup", type=float, default=1.0)
    parser.add_argument("--grid", help="also save a picture grid of 8 augmented samples here")
    args = parser.parse_args(argv)

    class_names = read_class_names(args.classes)
    with tempfile.TemporaryDirectory() as folder:
        written = convert_voc(args.data, class_names, folder, progress=False).written
        annotations = read_annotations(written.get("trainval") or written["train"])[0]
    config = AugmentConfig(mosaic=args.mosaic, mixup=args.mixup)
    hw = (args.size, args.size)
    print(f"{len(annotations)} images from {args.data}, {args.size}×{args.size}, batch {args.batch_size}, "
          f"mosaic {args.mosaic}, mixup {args.mixup}; images/s, median of {args.repeats} runs")
    results = {}
    for name, cache in (("tf.data, from files", "none"), ("tf.data, RAM cache", "ram")):
        iterator = iter(build_dataset(annotations, hw, args.batch_size, training=True, augment=config, seed=0,
                                      cache=cache).repeat())
        next(iterator)  # warm-up: tracing, the first decodes
        results[name] = statistics.median(images_per_second(lambda it=iterator: next(it), args.batch_size,
                                                            args.batches) for _ in range(args.repeats))
    reference = ReferenceLoader(annotations, args.size, config)
    reference.batch(args.batch_size)
    results["reference (PIL + numpy, one image at a time)"] = statistics.median(
        images_per_second(lambda: reference.batch(args.batch_size), args.batch_size, args.reference_batches)
        for _ in range(args.repeats))
    baseline = results["reference (PIL + numpy, one image at a time)"]
    print(f"| {'loader':<46} | images/s | × reference |\n|{'-' * 48}|---------:|------------:|")
    for name, rate in results.items():
        print(f"| {name:<46} | {rate:8.1f} | {rate / baseline:11.2f} |")
    if args.grid:
        images, boxes = next(iter(build_dataset(annotations, hw, 8, training=True, augment=config, seed=1)))
        save_sample_sheet(images.numpy(), boxes.numpy(), class_names, config, args.grid)
        print(f"wrote {args.grid}")
    print(f"speedup: {results['tf.data, from files'] / baseline:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
