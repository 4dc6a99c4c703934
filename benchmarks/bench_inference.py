"""CPU latency of the whole detector (letterbox, model, decoding, NMS) in every runtime, with GFLOPs and GFLOP/s.

For each neck and input size: a detector of `--backbone` and `--head` (untrained weights: the cost does not depend
on them) is
timed at batch 1 through the detector interface in TensorFlow graph and XLA modes, then exported (SavedModel, ONNX,
LiteRT float32 and int8) and timed in TensorFlow, ONNX Runtime and the LiteRT interpreter. Every row is the median
of `--runs` calls after `--warmup` untimed ones, on a uint8 image of the input size. GFLOP/s = the detector's GFLOPs
(convolutions, 2 × multiply-adds) / median latency. Run it on an otherwise idle machine; medians resist some noise,
not all.

`--peer-onnx PATH` times a peer's ONNX model of the same input size in ONNX Runtime in the same run (float32
NCHW input in [0, 1], raw outputs: the peer's letterbox, decoding and NMS are not included, ours are), and adds a
column: each row's latency over the peer's. Ultralytics YOLOv8n, for example, exported in an environment with
`ultralytics`: `yolo export model=yolov8n.yaml format=onnx imgsz=416` (random weights: the cost does not depend
on them).

Example:
    python benchmarks/bench_inference.py --sizes 416 640 --necks yolov3 yolov5
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from utils.config.run_config import DEFAULT_HEAD, HEADS, NECKS, ModelSpec  # noqa: E402
from utils.config.settings import field_default  # noqa: E402

RUNTIMES = ("graph", "xla", "saved_model", "onnxruntime", "litert", "litert-int8")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default=field_default(ModelSpec, "backbone"))
    parser.add_argument("--head", default=DEFAULT_HEAD, choices=HEADS)
    parser.add_argument("--necks", nargs="+", default=list(NECKS), choices=NECKS)
    parser.add_argument("--sizes", type=int, nargs="+", default=[416, 640])
    parser.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=list(RUNTIMES))
    parser.add_argument("--num-classes", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--peer-onnx", type=Path, help="a peer's ONNX detector to time in the same run")
    return parser.parse_args(argv)


def peer_onnx_ms(path: Path, size: int, warmup: int, runs: int) -> float:
    """Median ms of the peer's ONNX model on one float32 NCHW image, ONNX Runtime's default CPU session."""
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).uniform(0, 1, (1, 3, size, size)).astype("float32")}
    return median_ms(lambda images: session.run(None, images), feed, warmup, runs)


def runtime_calls(runtimes: list[str], detector, workdir: Path) -> dict:
    """runtime name → a function of a uint8 (1, H, W, 3) batch: the detector interface's `detect` of the Keras
    detector (graph, XLA) or of its export, all with the export's settings (score threshold 0.25)."""
    import numpy as np

    from utils.config.detect_config import DetectConfig
    from utils.export.writers import export_litert, export_onnx, export_saved_model
    from utils.inference.exported import ExportedDetector, ExportMetadata, write_metadata

    settings = DetectConfig.for_use("export", detector.settings)

    def exported(path: Path, export_format: str, quantize: str | None = None):
        write_metadata(path, ExportMetadata(export_format, detector.class_names, detector.input_hw[0],
                                            detector.decoder.box_coding, settings, quantize))
        return ExportedDetector(path).detect

    calls = {}
    for runtime in runtimes:
        if runtime in ("graph", "xla"):
            keras_settings = settings.replace(xla=runtime == "xla")
            calls[runtime] = lambda images, s=keras_settings: detector.detect(images, s)
        elif runtime == "saved_model":
            export_saved_model(detector, workdir / "saved_model", settings)
            calls[runtime] = exported(workdir / "saved_model", "saved_model")
        elif runtime == "onnxruntime":
            if not (workdir / "saved_model").is_dir():
                export_saved_model(detector, workdir / "saved_model", settings)
            export_onnx(workdir / "saved_model", workdir / "model.onnx")
            calls[runtime] = exported(workdir / "model.onnx", "onnx")
        else:
            int8 = runtime == "litert-int8"
            calibration = [np.random.default_rng(i).integers(0, 255, (*detector.input_hw, 3), dtype=np.uint8)
                           for i in range(8)] if int8 else []
            path = workdir / f"{runtime}.tflite"
            export_litert(detector, path, settings, quantize="int8" if int8 else None, calibration=calibration)
            calls[runtime] = exported(path, "litert", "int8" if int8 else None)
    return calls


def median_ms(call, images, warmup: int, runs: int) -> float:
    from utils.inference.latency import time_calls

    return statistics.median(time_calls(lambda: call(images), runs, warmup))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import keras
    import numpy as np

    from nets.detector import YoloDetector
    from nets.model_stats import model_flops
    from nets.yolo import build_yolo
    from utils.data.annotations import read_anchors

    anchors416 = read_anchors(Path(__file__).resolve().parent.parent / "model_data" / "yolo_anchors.txt")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"batch 1, post-processing included, medians of {args.runs} calls")
    peer_ms = {size: peer_onnx_ms(args.peer_onnx, size, args.warmup, args.runs) for size in args.sizes
               } if args.peer_onnx else {}
    for size, ms in peer_ms.items():
        print(f"peer {args.peer_onnx.name} at {size} in ONNX Runtime (raw outputs): {ms:.1f} ms")
    print("| detector | size | GFLOPs | runtime | median ms | GFLOP/s | vs graph | ÷ peer |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for neck in args.necks:
        box_coding = "dfl" if args.head == "decoupled" else "v5" if neck == "yolov5" else "v3"
        for size in args.sizes:
            keras.utils.set_random_seed(0)
            model = build_yolo(args.backbone, neck, args.num_classes, input_shape=(size, size, 3), head=args.head)
            gflops = model_flops(model) / 1e9
            anchors = () if args.head == "decoupled" else anchors416 * size / 416
            detector = YoloDetector.from_network(model, [f"class{i}" for i in range(args.num_classes)], anchors,
                                                 box_coding)
            images = np.random.default_rng(0).integers(0, 255, (1, size, size, 3), dtype=np.uint8)
            with tempfile.TemporaryDirectory(prefix="effyolo_bench_") as workdir:
                calls = runtime_calls(args.runtimes, detector, Path(workdir))
                graph_ms = None
                for runtime, call in calls.items():
                    ms = median_ms(call, images, args.warmup, args.runs)
                    graph_ms = ms if runtime == "graph" else graph_ms
                    ratio = f"{graph_ms / ms:.2f}×" if graph_ms else "–"
                    versus_peer = f"{ms / peer_ms[size]:.2f}×" if size in peer_ms else "–"
                    print(f"| {args.backbone} + {neck} ({args.head}) | {size} | {gflops:.2f} | {runtime} | {ms:.1f} | "
                          f"{gflops / ms * 1000:.0f} | {ratio} | {versus_peer} |", flush=True)
    for size in peer_ms:  # again after our rows, so drift over the run shows
        again = peer_onnx_ms(args.peer_onnx, size, args.warmup, args.runs)
        print(f"peer {args.peer_onnx.name} at {size} again: {again:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
