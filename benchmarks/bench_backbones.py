"""CPU latency of the whole detector (batch 1, graph mode) for every backbone, with parameters and GFLOPs.

Prints a markdown table: median latency of `--runs` timed forward passes after `--warmup` untimed ones, and the
ratio to the first backbone listed. Run it on an otherwise idle machine; medians resist some noise, not all.

Example:
    python benchmarks/bench_backbones.py --input-size 416 --neck yolov3 --head anchor
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from utils.config.run_config import DEFAULT_HEAD, HEADS, NECKS, ModelSpec  # noqa: E402
from utils.config.settings import field_default  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=None, help="default: every backbone")
    parser.add_argument("--neck", default=field_default(ModelSpec, "neck"), choices=NECKS)
    parser.add_argument("--head", default=DEFAULT_HEAD, choices=HEADS)
    parser.add_argument("--input-size", type=int, default=416)
    parser.add_argument("--num-classes", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--runs", type=int, default=15)
    return parser.parse_args(argv)


def median_latency(forward, images, warmup: int, runs: int) -> float:
    """Median wall time of one call, in seconds (results forced to host memory)."""
    for _ in range(warmup):
        [o.numpy() for o in forward(images)]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        [o.numpy() for o in forward(images)]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import keras
    import numpy as np
    import tensorflow as tf

    from nets.backbones import backbone_names
    from nets.model_stats import detector_parts
    from nets.yolo import build_yolo

    size = args.input_size
    images = tf.constant(np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype("float32"))
    print(f"{os.cpu_count()} CPUs, TensorFlow {tf.__version__}, Keras {keras.__version__}; "
          f"{args.neck} neck, {args.head} head, {size}×{size}, batch 1, median of {args.runs}")
    print(f"| backbone | params (M) | GFLOPs @{size} | latency (ms) | FPS | × first |")
    print("|---|---:|---:|---:|---:|---:|")
    first = None
    for name in args.backbones or backbone_names():
        model = build_yolo(name, args.neck, args.num_classes, (size, size, 3), head=args.head)
        total = detector_parts(model)[-1]
        forward = tf.function(lambda x, model=model: model(x, training=False), reduce_retracing=True)
        seconds = median_latency(forward, images, args.warmup, args.runs)
        first = first or seconds
        print(f"| {name} | {total.parameters / 1e6:.2f} | {total.flops / 1e9:.2f} | {seconds * 1e3:.1f} "
              f"| {1 / seconds:.1f} | {seconds / first:.2f} |", flush=True)
        keras.backend.clear_session()
    return 0


if __name__ == "__main__":
    sys.exit(main())
