"""Train recipe variants one after another at the same CPU budget and print one comparison table.

Every run is `train.py` with the same base recipe — by default the fine-tuning recipe from ImageNet
EfficientNet-Lite0 (`--backbone-weights imagenet`: 3 frozen epochs, frozen backbone BatchNorm, EMA), the `yolov5`
neck, 416², batch 8, `--cache ram`, `--close-mosaic 3`, validation every epoch and the best epoch kept — for
`--time-limit` minutes, plus each variant's own flags; then `get_map.py` on the validation lines. A run whose
`map/metrics.json` exists is not repeated and one stopped mid-training continues with `train.py --resume` (the
epochs it completed count against its budget), so an interrupted comparison resumes. Run it on an otherwise idle
machine: the budget is wall time.

The table: mAP@0.5, mAP@0.5:0.95, AP75 (COCO), AP@0.5 and AP@0.5:0.95 per class, epochs trained, the best epoch,
and the median training time of a step (an epoch's steps, evaluation excluded, over its step count), with each
variant's ratio to `--peer` figures when given, and the training minutes (step time summed) each variant took to
reach the first variant's best validation mAP@0.5. `results.json` in `--out` holds every figure.

Example (four variants × 20 minutes):
    python benchmarks/compare_runs.py --train data/bccd/trainval.txt --val data/bccd/test.txt \\
        --classes model_data/bccd_classes.txt --out logs/heads_bccd --variants v3 v5 v3-iou decoupled \\
        --time-limit 20 --peer 0.819 0.506
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each variant: the train.py flags that make it, on top of the base recipe.
VARIANTS = {
    "v3": ["--assigner", "v3"],
    "v5": ["--assigner", "v5"],
    "v3-iou": ["--assigner", "v3", "--iou-objectness"],
    "decoupled": ["--head", "decoupled"],
    "fixed": [],  # the base recipe as it stands: the size comparisons' reference
    "progressive": ["--progressive"],
    "multi-scale": ["--multi-scale"],
    # The fine-tuning recipe's parts: what ImageNet weights and frozen backbone BatchNorm are worth.
    "bn-trained": ["--no-freeze-backbone-bn"],
    "scratch": ["--backbone-weights", "none"],
    "b0-scratch": ["--backbone", "efficientnet-b0", "--backbone-weights", "none"],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, help="training annotation lines")
    parser.add_argument("--val", required=True, help="validation annotation lines (scored every epoch and at the end)")
    parser.add_argument("--classes", required=True)
    parser.add_argument("--out", required=True, help="one run directory per variant and seed goes here")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--time-limit", type=float, default=20.0, help="minutes per run")
    parser.add_argument("--epochs", type=int, default=300, help="the most a run trains within its budget")
    parser.add_argument("--backbone", default="efficientnet-lite0")
    parser.add_argument("--backbone-weights", default="imagenet", help="imagenet, a file, or none (from scratch)")
    parser.add_argument("--input-size", type=int, default=416)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                        help="further train.py flags for every run (last on the command line)")
    parser.add_argument("--peer", type=float, nargs=2, metavar=("MAP50", "MAP50_95"),
                        help="a peer's mAP@0.5 and mAP@0.5:0.95 on the same split, for ratio columns")
    return parser.parse_args(argv)


def train_command(args: argparse.Namespace, flags: list[str], seed: int, run_dir: Path) -> list[str]:
    """train.py with the base recipe, then `flags` (a later flag wins), then `--extra`."""
    return [sys.executable, str(ROOT / "train.py"), "--train", args.train, "--val", args.val, "--classes",
            args.classes, "--backbone", args.backbone, "--backbone-weights", args.backbone_weights, "--neck",
            "yolov5", "--input-size", str(args.input_size), "--batch-size", str(args.batch_size), "--epochs",
            str(args.epochs), "--time-limit", str(args.time_limit), "--close-mosaic", "3", "--cache", "ram",
            "--seed", str(seed), *flags, *args.extra, "--run-dir", str(run_dir)]


def start_or_resume(args: argparse.Namespace, flags: list[str], seed: int, run_dir: Path) -> list[str]:
    """`train.py --resume` for a run stopped mid-training (it goes on with the budget its completed epochs left),
    else `train_command`."""
    if (run_dir / "resume" / "training_metadata.json").is_file():
        return [sys.executable, str(ROOT / "train.py"), "--resume", str(run_dir)]
    return train_command(args, flags, seed, run_dir)


def run_variant(args: argparse.Namespace, variant: str, seed: int, flags: list[str] | None = None) -> dict:
    """Train and score one variant (unless already done; `flags`: default `VARIANTS[variant]`) and read its
    figures."""
    run_dir = Path(args.out).resolve() / f"{variant}-seed{seed}"
    metrics_path = run_dir / "map" / "metrics.json"
    if not metrics_path.is_file():
        subprocess.run(start_or_resume(args, VARIANTS[variant] if flags is None else flags, seed, run_dir),
                       check=True, cwd=ROOT)
        subprocess.run([sys.executable, str(ROOT / "get_map.py"), "--run-dir", str(run_dir), "--annotations",
                        args.val, "--no-plots"], check=True, cwd=ROOT)
    metrics = json.loads(metrics_path.read_text())
    with open(run_dir / "training_log.csv", newline="", encoding="utf-8") as handle:
        log = list(csv.DictReader(handle))
    phases = json.loads((run_dir / "manifest.json").read_text())["resolved"]["phases"]
    steps = {epoch: phase["steps_per_epoch"] for phase in phases
             for epoch in range(phase["first_epoch"], phase["end_epoch"])}
    step_seconds = [float(row["epoch_seconds"]) / steps[int(row["epoch"])] for row in log[1:]]  # the 1st traces
    curve = [(float(row["val_map50"]), float(row["epoch_seconds"])) for row in log if row.get("val_map50")]
    return {"variant": variant, "seed": seed, "run_dir": str(run_dir), "map50": metrics["map50"],
            "map50_95": metrics["map50_95"], "precision": metrics["precision"], "recall": metrics["recall"],
            "ap75": metrics["coco_ap75"] if metrics["coco_ap75"] is not None else float("nan"), "epochs": len(log),
            "best_epoch": json.loads((run_dir / "best.json").read_text())["epoch"],
            "step_ms": 1000 * statistics.median(step_seconds) if step_seconds else float("nan"),
            "per_class": {name: (entry["ap50"], entry["ap50_95"]) for name, entry in metrics["per_class"].items()},
            "curve": curve}


def minutes_to_reach(curve: list[tuple[float, float]], target: float) -> float | None:
    """Training minutes (epochs' step time, summed) until validation mAP@0.5 first reaches `target`."""
    spent = 0.0
    for map50, seconds in curve:
        spent += seconds
        if map50 >= target:
            return spent / 60
    return None


def format_table(results: list[dict], peer: list[float] | None) -> str:
    classes = list(results[0]["per_class"])
    header = ["variant", "seed", "epochs", "best epoch", "step ms", "mAP@0.5", "mAP@0.5:0.95", "AP75",
              f"AP@0.5 {' / '.join(classes)}", f"AP@0.5:0.95 {' / '.join(classes)}"]
    header += ["mAP@0.5 ÷ peer", "mAP@0.5:0.95 ÷ peer"] if peer else []
    header += [f"min to {results[0]['variant']}'s mAP@0.5"]
    target = max(map50 for map50, _ in results[0]["curve"]) if results[0]["curve"] else float("inf")
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        per_class = r["per_class"].values()
        cells = [r["variant"], str(r["seed"]), str(r["epochs"]), str(r["best_epoch"]), f"{r['step_ms']:.0f}",
                 f"{r['map50']:.3f}", f"{r['map50_95']:.3f}", f"{r['ap75']:.3f}",
                 " / ".join("n/a" if a is None else f"{a:.3f}" for a, _ in per_class),
                 " / ".join("n/a" if b is None else f"{b:.3f}" for _, b in per_class)]
        cells += [f"{r['map50'] / peer[0]:.2f}", f"{r['map50_95'] / peer[1]:.2f}"] if peer else []
        reached = minutes_to_reach(r["curve"], target)
        cells += ["not reached" if reached is None else f"{reached:.1f}"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = [run_variant(args, variant, seed) for seed in args.seeds for variant in args.variants]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"\n{args.val}: {args.backbone} ({args.backbone_weights}) + yolov5, {args.input_size}², batch "
          f"{args.batch_size}, {args.time_limit:g} min a run")
    print(format_table(results, args.peer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
