"""Evaluate detections against annotation lines: VOC and COCO mAP, P/R/F1, plots and an error breakdown.

Examples:
    python get_map.py --run-dir logs/demo --annotations data/test.txt
    python get_map.py --model demo.tflite --annotations data/test.txt   (an export; its thresholds are baked in)
    python get_map.py --detections results.json --annotations data/test.txt --classes model_data/voc_classes.txt
"""

from __future__ import annotations

from utils.cli.startup import quiet_startup

if __name__ == "__main__":
    quiet_startup()  # before any import loads TensorFlow

from utils.cli.errors import run_cli
from utils.cli.flags import config_values
from utils.cli.parsers import get_map_parser
from utils.config.detect_config import DetectConfig
from utils.config.report_config import ReportConfig
from utils.evaluation.evaluate import EvaluationRequest, evaluate_request


def main(argv: list[str] | None = None) -> int:
    args = get_map_parser().parse_args(argv)
    request = EvaluationRequest(**config_values(args, EvaluationRequest))
    report = ReportConfig(**config_values(args, ReportConfig))
    metrics, out_dir = evaluate_request(request, config_values(args, DetectConfig, "evaluate"), report)
    print((out_dir / "per_class.md").read_text(encoding="utf-8").rstrip())
    print(f"wrote {', '.join(metrics['outputs'])} to {out_dir}")
    return 0


if __name__ == "__main__":
    run_cli(main)
