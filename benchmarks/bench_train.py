"""Training throughput: images/second of a full `model.fit` step (forward, YOLO loss, backward, AdamW update) per
backbone, in float32 and mixed bfloat16, with Keras' own BatchNormalization/swish ops ("Keras ops", the step before
`nets.fused`) and with the fused kernels, and as a ratio to Ultralytics YOLOv8n's step measured in the same run.

For each backbone (with `--neck`) and precision:
- `forward`: the model alone on a batch (inference mode, graph), for scale;
- `Keras ops` / `fused`: `model.fit` on a batch held in memory, so the step is timed without the pipeline
  (`--no-keras-ops`: the fused step only);
- `fit + pipeline`: `model.fit` (fused) fed by the training tf.data pipeline (decode, mosaic, affine, HSV, flip,
  letterbox, targets), as train.py runs it; the pipeline share is its time per batch alone over that step's
  (on a 2-core CPU the two compete for the same cores);
- `÷ YOLOv8n`: the fused in-memory step over the peer's in-memory step (`peer_yolov8n_step.py`, run with
  `--peer-python`, an interpreter of an environment with `ultralytics`), measured before the first row and after
  the last; the table uses their mean.
Every figure is the median over `--steps` steps after `--warmup` untimed ones.

Example:
    python benchmarks/bench_train.py --backbones efficientnet-b0 --peer-python ../peer-env/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from utils.config.run_config import NECKS, ModelSpec  # noqa: E402
from utils.config.settings import field_default  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+",
                        default=["efficientnet-b0", "efficientnetv2-b0", "shufflenetv2-x1.0", "efficientnet-lite0"])
    parser.add_argument("--neck", default=field_default(ModelSpec, "neck"), choices=NECKS)
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument("--keras-ops", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the step with Keras' own ops (--no-keras-ops: the fused step only, one "
                             "model less to build and trace)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--input-size", type=int, default=416)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--annotations", help="training lines for the pipeline (default: 64 generated images)")
    parser.add_argument("--peer-python", help="python of an environment with ultralytics, for the YOLOv8n column")
    return parser.parse_args(argv)


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


def peer_step_seconds(args: argparse.Namespace) -> float:
    """Median seconds of a YOLOv8n training step, from `peer_yolov8n_step.py` in the peer environment."""
    script = Path(__file__).resolve().parent / "peer_yolov8n_step.py"
    result = subprocess.run([args.peer_python, str(script), "--batch-size", str(args.batch_size), "--input-size",
                             str(args.input_size), "--steps", str(args.steps), "--warmup", str(args.warmup)],
                            check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["median_s"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import keras
    import tensorflow as tf

    from benchmarks.training_setup import (
        compiled_detector,
        in_memory,
        median_fit_step,
        pipeline_batches,
        training_annotations,
        training_config,
    )
    from nets.fused import set_fused_kernels
    from utils.inference.latency import time_calls

    size, batch = args.input_size, args.batch_size
    peer = [peer_step_seconds(args)] if args.peer_python else []
    rows = []
    with tempfile.TemporaryDirectory(prefix="effyolo_bench_train_") as workdir:
        annotations = training_annotations(Path(workdir), args.annotations)
        print(f"batch {batch}, {size}×{size}, {args.neck} neck, {os.cpu_count()} cores, TensorFlow {tf.__version__}; "
              f"medians of {args.steps} steps after {args.warmup}; {len(annotations)} training images")
        for backbone in args.backbones:
            for precision in args.precisions:
                keras.mixed_precision.set_dtype_policy(precision)
                config = training_config(backbone, args.neck, size, batch)
                pipeline = pipeline_batches(config, annotations)
                batches = in_memory(pipeline)
                images = next(iter(batches))[0]
                step_s = {False: float("nan"), True: float("nan")}
                for fused in (False, True) if args.keras_ops else (True,):
                    model = compiled_detector(config)
                    set_fused_kernels(model, fused)
                    step_s[fused] = median_fit_step(model, batches, args.steps, args.warmup)
                forward = tf.function(lambda x, model=model: model(x, training=False))
                forward_s = statistics.median(time_calls(lambda f=forward, x=images: f(x), args.steps,
                                                         args.warmup)) / 1000
                pipeline_s = median_batch_time(pipeline, args.steps, args.warmup)
                full_s = median_fit_step(model, pipeline, args.steps, args.warmup)
                rows.append((backbone, precision, forward_s, step_s[False], step_s[True], pipeline_s, full_s))
                print(f"  measured {backbone} {precision}", file=sys.stderr, flush=True)
        keras.mixed_precision.set_dtype_policy("float32")
    if args.peer_python:
        peer.append(peer_step_seconds(args))
        print(f"YOLOv8n step (Ultralytics, in memory): {peer[0] * 1000:.0f} ms before, {peer[1] * 1000:.0f} ms after")
    peer_s = statistics.mean(peer) if peer else float("nan")
    print("| backbone | precision | forward ms | step, Keras ops ms | step, fused ms | speed-up | images/s | "
          "fit + pipeline ms | images/s | pipeline share | ÷ YOLOv8n step |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for backbone, precision, forward_s, keras_s, fused_s, pipeline_s, full_s in rows:
        print(f"| {backbone} | {precision} | {forward_s * 1000:.0f} | {keras_s * 1000:,.0f} | {fused_s * 1000:,.0f} | "
              f"{keras_s / fused_s:.2f}× | {batch / fused_s:.1f} | {full_s * 1000:,.0f} | {batch / full_s:.1f} | "
              f"{pipeline_s / full_s:.0%} | {fused_s / peer_s:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
