"""Structured pruning measured: a trained run pruned at several ratios, each pruned model fine-tuned with the normal
trainer, and every model's size, speed and accuracy in one table beside the unpruned one.

For each `--ratios` value: `prune.py` (channels ranked by |BatchNorm γ|), `get_map.py` straight after pruning, then
`train.py --config <run>/config.json --init-model <pruned>` for `--fine-tune-minutes` (no frozen phase: the pruned
network starts trained), and `get_map.py` again. Every model — the unpruned run's and each fine-tuned one — is
exported to ONNX and LiteRT (float32, post-processing inside) and timed at batch 1 (medians of `--latency-runs`
calls, after warm-up). Steps already done (a scored run, an export) are not repeated. Run it on an otherwise idle
machine.

Example:
    python benchmarks/compare_pruning.py --run-dir logs/bccd_lite0 --val data/bccd/test.txt \\
        --ratios 0.25 0.5 --fine-tune-minutes 10 --out logs/pruning
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# runtime → (file suffix, export format, table label)
RUNTIMES = {"onnxruntime": ("onnx", "onnx", "ONNX Runtime"), "litert": ("tflite", "litert", "LiteRT")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, help="the trained run to prune")
    parser.add_argument("--val", required=True, help="annotation lines every model is scored on")
    parser.add_argument("--out", required=True, help="pruned models, their runs and exports go here")
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--fine-tune-minutes", type=float, default=10.0,
                        help="training budget of each pruned model's fine-tune (0: time the pruned models as cut)")
    parser.add_argument("--latency-runs", type=int, default=30)
    parser.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=list(RUNTIMES),
                        help="the exports each model is timed in")
    return parser.parse_args(argv)


def run(script: str, *arguments: str) -> None:
    """One of the project's scripts (`get_map`, `prune`, `train`, `predict`) in this process: TensorFlow loads once."""
    if importlib.import_module(script).main(list(arguments)) != 0:
        raise RuntimeError(f"{script}.py {' '.join(arguments)} failed")


def scored(model: Path, val: str, out_dir: Path) -> dict:
    """get_map.py's metrics of `model` on `val` (computed once)."""
    metrics = out_dir / "metrics.json"
    if not metrics.is_file():
        run("get_map", "--model", str(model), "--annotations", val, "--out-dir", str(out_dir),
            "--no-plots")
    return json.loads(metrics.read_text())


def deployed(model: Path, out: Path, runs: int, runtimes: list[str]) -> dict:
    """Parameters and GFLOPs of `model`, and the size and batch-1 latency of its export for each runtime."""
    from nets.model_stats import model_flops, parameters
    from utils.inference.exported import ExportedDetector
    from utils.inference.latency import detector_latency
    from utils.inference.loading import load_keras_detector

    figures = {}
    for runtime in runtimes:
        suffix, fmt, _ = RUNTIMES[runtime]
        path = out / f"model.{suffix}"
        if not path.is_file():
            run("predict", "export", "--model", str(model), "--format", fmt, "--output", str(path),
                "--no-check")
        (timing,) = detector_latency(runtime, ExportedDetector(path), [1], runs=runs)
        figures[f"{runtime}_ms"] = timing.median_ms
        figures[f"{runtime}_mb"] = path.stat().st_size / 1e6
    detector = load_keras_detector(model)
    static = None not in detector.input_shape[1:3]
    figures["parameters"] = parameters(detector)
    figures["gflops"] = model_flops(detector) / 1e9 if static else float("nan")
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    source = Path(args.run_dir).resolve()
    rows = [{"model": "unpruned", "ratio": 0.0, **scored(source / "best.keras", args.val, out / "unpruned" / "map"),
             **deployed(source / "best.keras", out / "unpruned", args.latency_runs,
                                 args.runtimes)}]
    for ratio in args.ratios:
        name = f"pruned{round(ratio * 100)}"
        pruned = out / f"{name}.keras"
        if not pruned.is_file():
            run("prune", "--run-dir", str(source), "--ratio", str(ratio), "--output", str(pruned))
        before = scored(pruned, args.val, out / name / "map_before_fine_tuning")
        final, label = pruned, f"pruned {ratio:.0%}, not fine-tuned"
        if args.fine_tune_minutes > 0:
            tuned = out / name / "run"
            if not (tuned / "best.keras").is_file():
                run("train", "--config", str(source / "config.json"), "--init-model", str(pruned),
                    "--freeze-epochs", "0", "--epochs", "300", "--time-limit", str(args.fine_tune_minutes),
                    "--run-dir", str(tuned))
            epochs = len((tuned / "training_log.csv").read_text().strip().splitlines()) - 1
            final, label = tuned / "best.keras", f"pruned {ratio:.0%}, fine-tuned {epochs} epochs"
        after = before if final == pruned else scored(final, args.val, out / name / "map")
        rows.append({"model": label, "ratio": ratio, **after,
                     "map50_before": before["map50"], "map50_95_before": before["map50_95"],
                     **deployed(final, out / name, args.latency_runs, args.runtimes)})
    (out / "results.json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    print(format_table(rows, args.runtimes))
    return 0


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}" if base else "–"


def format_table(rows: list[dict], runtimes: list[str]) -> str:
    labels = [RUNTIMES[runtime][2] for runtime in runtimes]
    header = ["model", "parameters (M)", "GFLOPs", *[f"{label} MB" for label in labels],
              *[f"{label} ms" for label in labels], "mAP@0.5 pruned", "mAP@0.5:0.95 pruned", "mAP@0.5",
              "mAP@0.5:0.95", "params ÷ unpruned", *[f"{label} ms ÷ unpruned" for label in labels],
              "mAP@0.5:0.95 ÷ unpruned"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    base = rows[0]
    for r in rows:
        before = (f"{r['map50_before']:.3f}", f"{r['map50_95_before']:.3f}") if "map50_before" in r else ("–", "–")
        cells = [r["model"], f"{r['parameters'] / 1e6:.2f}", f"{r['gflops']:.2f}",
                 *[f"{r[f'{runtime}_mb']:.1f}" for runtime in runtimes],
                 *[f"{r[f'{runtime}_ms']:.1f}" for runtime in runtimes], *before, f"{r['map50']:.3f}",
                 f"{r['map50_95']:.3f}", ratio(r["parameters"], base["parameters"]),
                 *[ratio(r[f"{runtime}_ms"], base[f"{runtime}_ms"]) for runtime in runtimes],
                 ratio(r["map50_95"], base["map50_95"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
