"""Run a trained detector on images, a folder or a video (drawn detections), time it, draw its heatmaps, or export it.

Examples:
    python predict.py image --run-dir logs/demo --input img.jpg --output out.png
    python predict.py dir --run-dir logs/demo --input photos/ --output predicted/ --save-json detections.json
    python predict.py video --run-dir logs/demo --input clip.mp4 --output clip_detected.mp4
    python predict.py fps --run-dir logs/demo --batch-sizes 1 8 --runtimes graph xla
    python predict.py heatmap --run-dir logs/demo --input img.jpg --output img_heat.png
    python predict.py export --run-dir logs/demo --format litert --output demo.tflite
    python predict.py image --model demo.tflite --input img.jpg --output out.png
"""

from __future__ import annotations

import dataclasses

from utils.cli.startup import quiet_startup

if __name__ == "__main__":
    quiet_startup()  # before any import loads TensorFlow

from utils.cli.errors import run_cli
from utils.cli.flags import config_values
from utils.cli.parsers import PREDICT_MODES, predict_parser
from utils.config.detect_config import DetectConfig
from utils.config.run_config import load_config
from utils.export.policy import export_and_check
from utils.inference.fps import fps_report
from utils.inference.heatmap import predict_heatmaps
from utils.inference.loading import load_detector, load_keras_detector, resolve_model_path
from utils.inference.stills import predict_stills, readable_targets
from utils.inference.video import predict_video


def main(argv: list[str] | None = None) -> int:
    args = predict_parser().parse_args(argv)
    request_class, use, _ = PREDICT_MODES[args.mode]
    request = request_class(**config_values(args, request_class))
    if args.mode == "fps":
        print(fps_report(request))
        return 0
    if args.mode == "heatmap":
        predict_heatmaps(request)
        return 0
    given = config_values(args, DetectConfig, use)
    if args.mode == "export":
        detector = load_keras_detector(request.model)
        config_path = resolve_model_path(request.model).parent / "config.json"  # the run's record: its val lines
        if config_path.is_file():
            request = dataclasses.replace(request, validation_lines=load_config(config_path).val)
        return 0 if export_and_check(detector, DetectConfig.for_use(use, detector.settings, **given), request) else 1
    inputs = readable_targets(request) if args.mode in ("image", "dir") else None  # before any model loads
    detector = load_detector(request.model)
    settings = DetectConfig.for_use(use, detector.settings, **given)
    if inputs is None:
        predict_video(detector, request, settings)
    else:
        predict_stills(detector, request, settings, inputs)
    return 0


if __name__ == "__main__":
    run_cli(main)
