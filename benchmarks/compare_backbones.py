"""Train several backbones on bccd under the same fixed CPU budget and print one comparison table.

Every run uses the same recipe (input size, epochs, batch, lr, augmentation, neck); only the backbone changes.
Runs that already finished (their `map/metrics.json` exists) are not repeated, so an interrupted comparison resumes.

Example (about an hour on 2 CPU cores):
    python benchmarks/compare_backbones.py --data data/bccd --out logs/compare
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utils.config.run_config import NECKS, ModelSpec  # noqa: E402
from utils.config.settings import field_default  # noqa: E402

DEFAULT_BACKBONES = ("efficientnet-b0", "efficientnetv2-b0", "shufflenetv2-x1.0", "shufflenetv2-x1.0-stemblock")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/bccd", help="folder with trainval.txt and test.txt")
    parser.add_argument("--classes", default=str(ROOT / "model_data" / "bccd_classes.txt"))
    parser.add_argument("--out", default="logs/compare", help="one run directory per backbone goes here")
    parser.add_argument("--backbones", nargs="+", default=list(DEFAULT_BACKBONES))
    parser.add_argument("--neck", default=field_default(ModelSpec, "neck"), choices=NECKS)
    parser.add_argument("--assigner", default="v3")
    parser.add_argument("--input-size", type=int, default=320)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3, help="the peak learning rate itself (no batch scaling)")
    return parser.parse_args(argv)


def run(command: list[str]) -> float:
    """Run a command to completion (output passes through) and return its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    return time.perf_counter() - start


def train_and_score(backbone: str, args: argparse.Namespace) -> dict:
    run_dir = Path(args.out).resolve() / backbone
    metrics_path = run_dir / "map" / "metrics.json"
    if not metrics_path.is_file():
        data = Path(args.data).resolve()
        seconds = run([
            sys.executable, "train.py", "--train", str(data / "trainval.txt"), "--val", str(data / "test.txt"),
            "--classes", args.classes, "--backbone", backbone, "--neck", args.neck, "--assigner", args.assigner,
            "--input-size", str(args.input_size), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
            "--lr", str(args.lr), "--nominal-batch-size", "0", "--scale-min", "0.75", "--scale-max", "1.25",
            "--aspect-jitter", "0.2",
            "--eval-period", str(args.epochs), "--run-dir", str(run_dir),
        ])
        (run_dir / "train_seconds.txt").write_text(f"{seconds:.1f}\n")
        run([sys.executable, "get_map.py", "--run-dir", str(run_dir), "--annotations", str(data / "test.txt")])
    metrics = json.loads(metrics_path.read_text())
    metrics["train_seconds"] = float((run_dir / "train_seconds.txt").read_text())
    metrics["size_mb"] = (run_dir / "best.keras").stat().st_size / 1e6
    return metrics


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = {backbone: train_and_score(backbone, args) for backbone in args.backbones}
    print(f"\nbccd test, {args.neck} neck, {args.assigner} assigner, {args.input_size}², {args.epochs} epochs, "
          f"batch {args.batch_size}, lr {args.lr:g}, from scratch")
    print("| backbone | P | R | mAP@0.5 | mAP@0.5:0.95 | train time | best.keras |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for backbone, m in results.items():
        minutes, seconds = divmod(round(m["train_seconds"]), 60)
        print(f"| {backbone} | {m['precision']:.3f} | {m['recall']:.3f} | {m['map50']:.3f} | {m['map50_95']:.3f} "
              f"| {minutes} min {seconds:02d} s | {m['size_mb']:.1f} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
