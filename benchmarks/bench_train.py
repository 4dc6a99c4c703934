"""Training throughput: images/second of a full `model.fit` step (forward, YOLO loss, backward, AdamW update) and
the data pipeline's share of it, for B0-YOLOv3 and B0-YOLOv5 in float32 and in mixed bfloat16.

For each detector and precision:
- `forward`: the model alone on a batch (graph mode), for scale;
- `fit step`: `model.fit` on batches already in memory, so the step is timed without the pipeline;
- `pipeline`: the training tf.data pipeline alone (decode, mosaic, affine, HSV, flip, letterbox, targets);
- `fit + pipeline`: `model.fit` fed by that pipeline, as train.py runs it.
The pipeline share is pipeline time per batch / (fit + pipeline) time per batch: on a 2-core CPU the two compete
for the same cores, so the share is what the pipeline costs the step, not only what prefetch fails to hide.
Every figure is the median over `--steps` steps after `--warmup` untimed ones.

Example:
    python benchmarks/bench_train.py --batch-size 8 --input-size 416
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--necks", nargs="+", default=["yolov3", "yolov5"])
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--input-size", type=int, default=416)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--annotations", help="training lines for the pipeline (default: 64 generated images)")
    return parser.parse_args(argv)


def median_fit_step(model, dataset, steps: int, warmup: int) -> float:
    """Median seconds of one `model.fit` batch (timed from batch begin to batch end by a callback)."""
    import keras

    times: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: times.append(-time.perf_counter()),
        on_train_batch_end=lambda batch, logs: times.__setitem__(-1, times[-1] + time.perf_counter()))
    model.fit(dataset, epochs=1, steps_per_epoch=steps + warmup, callbacks=[timer], verbose=0)
    return statistics.median(times[warmup:])


def median_batch_time(dataset, steps: int, warmup: int) -> float:
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        next(iterator)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def training_annotations(args: argparse.Namespace, workdir: Path) -> list:
    from utils.annotations import read_annotations, read_class_names
    from utils.synthetic import generate_synthetic_voc
    from utils.voc import convert_voc

    if args.annotations:
        return read_annotations(args.annotations)[0]
    classes = read_class_names(generate_synthetic_voc(workdir / "voc", num_images=64, seed=0, image_size=(480, 640)))
    written = convert_voc(workdir / "voc", classes, workdir / "lines", progress=False).written
    return [a for path in written.values() for a in read_annotations(path)[0]]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import keras
    import numpy as np
    import tensorflow as tf

    from utils.config import ModelSpec, TrainConfig
    from utils.dataloader import build_dataset, with_level_targets
    from utils.speed import time_calls
    from utils.training import build_model_for, make_losses, make_optimizer

    size, batch = args.input_size, args.batch_size
    anchors = np.loadtxt(Path(__file__).resolve().parent.parent / "model_data" / "yolo_anchors.txt",
                         delimiter=",").reshape(9, 2) * size / 416
    with tempfile.TemporaryDirectory(prefix="effyolo_bench_train_") as workdir:
        annotations = training_annotations(args, Path(workdir))
        print(f"batch {batch}, {size}×{size}, {os.cpu_count()} cores; medians of {args.steps} steps; "
              f"{len(annotations)} training images")
        print("| detector | precision | forward ms | fit step ms | images/s | pipeline ms/batch | "
              "fit + pipeline ms | images/s | pipeline share |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for neck in args.necks:
            for precision in args.precisions:
                keras.mixed_precision.set_dtype_policy(precision)
                keras.utils.set_random_seed(0)
                spec = ModelSpec("efficientnet-b0", neck, tuple(f"c{i}" for i in range(20)),
                                 tuple(map(tuple, anchors.tolist())), size, assigner="v5" if neck == "yolov5"
                                 else "v3")
                config = TrainConfig(train="-", val="-", run_dir="-", model=spec, batch_size=batch,
                                     nominal_batch_size=0)
                model = build_model_for(config)
                model.compile(optimizer=make_optimizer(config, 1000, 0), loss=make_losses(config))
                pipeline = build_dataset(annotations, (size, size), batch, training=True, augment=config.augment)
                images, boxes = next(iter(pipeline))
                in_memory = tf.data.Dataset.from_tensors((images, (boxes,) * 3)).repeat()
                forward = tf.function(lambda x, model=model: model(x, training=False))
                forward_ms = time_calls(lambda f=forward, x=images: f(x), args.steps, args.warmup)
                forward_s = statistics.median(forward_ms) / 1000
                step_s = median_fit_step(model, in_memory, args.steps, args.warmup)
                pipeline_s = median_batch_time(pipeline, args.steps, args.warmup)
                full_s = median_fit_step(model, with_level_targets(pipeline), args.steps, args.warmup)
                print(f"| B0 + {neck} | {precision} | {forward_s * 1000:.0f} | {step_s * 1000:.0f} | "
                      f"{batch / step_s:.1f} | {pipeline_s * 1000:.0f} | {full_s * 1000:.0f} | "
                      f"{batch / full_s:.1f} | {pipeline_s / full_s:.0%} |", flush=True)
        keras.mixed_precision.set_dtype_policy("float32")
    return 0


if __name__ == "__main__":
    sys.exit(main())
