"""The source articles' experiment: YOLOv5 with its own backbone against the same detector with the backbone
replaced, at one CPU budget, in one table.

Rows are backbone + neck pairs: the baseline CSPDarknet + `yolov5` (that is, YOLOv5n and YOLOv5s), EfficientNet-B0,
EfficientNetV2-B0, EfficientNet-Lite0, ShuffleNetV2 ×1.0 (plain and with the StemBlock stem), each + `yolov5`, and
B0 + the YOLOv7-tiny neck — all from random initialisation, as the articles compare architectures; then, with
`--pretrained`, the rows that have ImageNet weights started from them with the fine-tuning recipe (a row whose
weights cannot be had — offline and not in Keras' cache — is skipped and named under the table). Every run is
`benchmarks/compare_runs.py`'s recipe (416², batch 8, `--time-limit` minutes, best epoch kept) with YOLOv5's own
head and training targets (the anchor head, the v5 assigner) and only the backbone and neck changed; the columns
are the seed article's — precision and recall at the report's score, mAP@0.5, mAP@0.5:0.95, model size — and
parameters (as PyTorch counts them), GFLOPs, and the latency of the ONNX export in ONNX Runtime (batch
1, letterbox, decoding and NMS included; median of 30 calls). A run already scored is not repeated, so an
interrupted comparison resumes. Run it on an otherwise idle machine. `--deployment-only` trains nothing and prints
the last four columns for every architecture, from its detector built as its run would be: none of them depends on
the weights (the latency is timed on random images, on which neither a trained nor an untrained detector keeps
boxes to speak of).

Example (eight rows × 20 minutes, then three pretrained):
    python benchmarks/compare_backbones.py --train data/bccd/trainval.txt --val data/bccd/test.txt \\
        --classes model_data/bccd_classes.txt --out logs/backbones --time-limit 20 --pretrained
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.compare_pruning import run as run_script  # noqa: E402
from benchmarks.compare_runs import run_variant, train_command  # noqa: E402

# (row name, backbone, neck) — the articles' rows; the first is the baseline the ratios divide by.
ROWS = (
    ("YOLOv5n (cspdarknet-n + yolov5)", "cspdarknet-n", "yolov5"),
    ("YOLOv5s (cspdarknet-s + yolov5)", "cspdarknet-s", "yolov5"),
    ("efficientnet-b0 + yolov5", "efficientnet-b0", "yolov5"),
    ("efficientnetv2-b0 + yolov5", "efficientnetv2-b0", "yolov5"),
    ("efficientnet-lite0 + yolov5", "efficientnet-lite0", "yolov5"),
    ("shufflenetv2-x1.0 + yolov5", "shufflenetv2-x1.0", "yolov5"),
    ("shufflenetv2-x1.0-stemblock + yolov5", "shufflenetv2-x1.0-stemblock", "yolov5"),
    ("efficientnet-b0 + yolov7-tiny", "efficientnet-b0", "yolov7-tiny"),
)
PRETRAINED = ("efficientnet-b0", "efficientnetv2-b0", "efficientnet-lite0")  # the rows with ImageNet weights
YOLOV5_HEAD = ("--head", "anchor", "--assigner", "v5")  # YOLOv5's head and target assignment, on every row


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, help="training annotation lines")
    parser.add_argument("--val", required=True, help="validation annotation lines")
    parser.add_argument("--classes", required=True)
    parser.add_argument("--out", required=True, help="one run directory per row and seed goes here")
    parser.add_argument("--rows", nargs="+", metavar="BACKBONE+NECK",
                        help="pairs to run instead of the articles' rows (the first is the baseline of the ratios)")
    parser.add_argument("--pretrained", action="store_true", help="also the rows with ImageNet weights, from them")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--time-limit", type=float, default=20.0, help="minutes per run")
    parser.add_argument("--epochs", type=int, default=300, help="the most a run trains within its budget")
    parser.add_argument("--input-size", type=int, default=416)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--latency-runs", type=int, default=30)
    parser.add_argument("--deployment-only", action="store_true",
                        help="train nothing: size, parameters, GFLOPs and latency of every row's detector, untrained")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="further train.py flags for every run")
    args = parser.parse_args(argv)
    args.backbone, args.backbone_weights = "efficientnet-b0", "none"  # the base recipe's; every row sets its own
    return args


def chosen_rows(args: argparse.Namespace) -> list[tuple[str, str, str, str]]:
    """(name, backbone, neck, weights) of every run."""
    rows = ROWS if args.rows is None else [(pair.replace("+", " + "), *pair.split("+")) for pair in args.rows]
    chosen = [(name, backbone, neck, "none") for name, backbone, neck in rows]
    if args.pretrained:
        chosen += [(f"{backbone} + {neck}, ImageNet", backbone, neck, "imagenet") for _, backbone, neck in rows
                   if backbone in PRETRAINED and neck == "yolov5"]
    return chosen


def row_flags(backbone: str, neck: str, weights: str) -> list[str]:
    """The train.py flags a row adds to the base recipe: its backbone, neck and weights, and YOLOv5's head."""
    return ["--backbone", backbone, "--neck", neck, "--backbone-weights", weights, *YOLOV5_HEAD]


def deployment_figures(model: Path, onnx: Path, runs: int) -> dict:
    """Parameters and GFLOPs of a detector (a run directory or `.keras` file), and its ONNX export's size and
    latency (`onnx`: exported there unless it exists)."""
    from nets.model_stats import model_flops, parameters
    from utils.inference.exported import ExportedDetector
    from utils.inference.latency import detector_latency
    from utils.inference.loading import load_keras_detector

    if not onnx.is_file():
        run_script("predict", "export", "--model", str(model), "--format", "onnx", "--output", str(onnx), "--no-check")
    detector = load_keras_detector(model)
    (timing,) = detector_latency("onnxruntime", ExportedDetector(onnx), [1], runs=runs)
    return {"parameters": parameters(detector), "gflops": model_flops(detector) / 1e9,
            "size_mb": onnx.stat().st_size / 1e6, "latency_ms": timing.median_ms}


def untrained_detector(args: argparse.Namespace, backbone: str, neck: str) -> Path:
    """A row's detector as its run would build it (the same train.py flags), untrained, saved as `.keras`."""
    import train
    from utils.training.callbacks import save_model_atomically
    from utils.training.trainer import build_model_for

    path = Path(args.out).resolve() / "untrained" / f"{backbone}+{neck}.keras"
    if not path.is_file():
        flags = train_command(args, row_flags(backbone, neck, "none"), 0, path.with_suffix(""))[2:]
        path.parent.mkdir(parents=True, exist_ok=True)
        save_model_atomically(build_model_for(train.resolve_config(flags)[0]), path)
    return path


def ratio(value: float, baseline: float) -> str:
    """`value / baseline` to two places, or n/a when the baseline is 0 (a run that detected nothing)."""
    return f"{value / baseline:.2f}" if baseline else "n/a"


DEPLOYMENT_HEADER = ["size (MB, ONNX)", "parameters (M)", "GFLOPs", "ONNX Runtime ms"]


def deployment_cells(r: dict) -> list[str]:
    return [f"{r['size_mb']:.1f}", f"{r['parameters'] / 1e6:.2f}", f"{r['gflops']:.2f}", f"{r['latency_ms']:.1f}"]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def format_table(results: list[dict]) -> str:
    header = ["row", "seed", "epochs", "P", "R", "mAP@0.5", "mAP@0.5:0.95", *DEPLOYMENT_HEADER,
              "mAP@0.5:0.95 ÷ YOLOv5n", "latency ÷ YOLOv5n"]
    baseline = results[0]
    rows = [[r["row"], str(r["seed"]), str(r["epochs"]),
             *(f"{r[key]:.3f}" for key in ("precision", "recall", "map50", "map50_95")), *deployment_cells(r),
             ratio(r["map50_95"], baseline["map50_95"]), ratio(r["latency_ms"], baseline["latency_ms"])]
            for r in results]
    return markdown_table(header, rows)


def format_deployment_table(results: list[dict]) -> str:
    baseline = results[0]
    return markdown_table(["row", *DEPLOYMENT_HEADER, "latency ÷ YOLOv5n"],
                          [[r["row"], *deployment_cells(r), ratio(r["latency_ms"], baseline["latency_ms"])]
                           for r in results])


def deployment_only(args: argparse.Namespace) -> list[dict]:
    """The deployment columns of every architecture among the rows, untrained (an ImageNet row shares its
    scratch row's)."""
    architectures = dict.fromkeys((name, backbone, neck) for name, backbone, neck, weights in chosen_rows(args)
                                  if weights == "none")
    results = []
    for name, backbone, neck in architectures:
        model = untrained_detector(args, backbone, neck)
        results.append({"row": name, **deployment_figures(model, model.with_suffix(".onnx"), args.latency_runs)})
    return results


def imagenet_weights_missing(backbone: str) -> str | None:
    """Why `backbone`'s ImageNet weights cannot be had on this machine (offline and not in Keras' cache: the loader's
    own message, naming the file and where to put it), or None when they load."""
    import keras

    from nets.backbones import build_backbone

    try:
        build_backbone(backbone, (64, 64, 3), weights="imagenet")
    except OSError as error:
        return str(error)
    finally:
        keras.backend.clear_session()
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.deployment_only:
        results = deployment_only(args)
        print(f"\n{args.input_size}², batch 1, untrained detectors (the figures do not depend on the weights)")
        print(format_deployment_table(results))
        return 0
    results, skipped = [], []
    rows = chosen_rows(args)
    missing_weights = {backbone: imagenet_weights_missing(backbone)
                       for _, backbone, _, weights in rows if weights == "imagenet"}  # checked once, not per seed
    for seed in args.seeds:
        for name, backbone, neck, weights in rows:
            key = f"{backbone}+{neck}" + ("+imagenet" if weights != "none" else "")
            missing = missing_weights.get(backbone) if weights == "imagenet" else None
            if missing:  # one row without its weights does not stop the comparison
                skipped.append(f"{name}, seed {seed}: skipped — {missing}")
                print(skipped[-1], flush=True)
                continue
            result = run_variant(args, key, seed, row_flags(backbone, neck, weights))
            run_dir = Path(result["run_dir"])
            results.append({**result, "row": name,
                            **deployment_figures(run_dir, run_dir / "model.onnx", args.latency_runs)})
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"\n{args.val}: {args.input_size}², batch {args.batch_size}, {args.time_limit:g} min a run, anchor head, "
          f"v5 assigner")
    print(format_table(results) if results else "no row ran")
    print("\n".join(skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
