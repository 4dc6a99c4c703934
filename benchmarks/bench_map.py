"""How fast `get_map.py --detections` scores a large results file (default: 5,000 images × 20 detections, 20
classes), end to end and by stage, with both COCO engines. Medians of several runs; a table on stdout.

Example:
    python benchmarks/bench_map.py --images 5000 --detections-per-image 20 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import get_map  # noqa: E402
from utils.data.annotations import format_line, read_annotations  # noqa: E402
from utils.evaluation.errors import analyse_errors  # noqa: E402
from utils.evaluation.matching import Matching  # noqa: E402
from utils.evaluation.metrics import ap_per_class, coco_metrics  # noqa: E402
from utils.ops.detections import read_results_json  # noqa: E402


def write_case(folder: Path, images: int, per_image: int, classes: int, seed: int = 0) -> dict[str, Path]:
    """Annotation lines (1–8 boxes per 500×500 image) and a results file of detections near them (jittered,
    one in five of a random class) plus noise, with random scores."""
    rng = np.random.default_rng(seed)
    lines, results = [], []
    for index in range(images):
        count = int(rng.integers(1, 9))
        xy = rng.uniform(0, 400, (count, 2))
        boxes = np.column_stack([xy, xy + rng.uniform(8, 100, (count, 2)), rng.integers(0, classes, count)])
        lines.append(format_line(f"images/{index:05d}.jpg", np.round(boxes)))
        source = rng.integers(0, count, per_image)
        jitter = rng.normal(0, 4, (per_image, 4))
        found = boxes[source, :4] + jitter
        labels = np.where(rng.random(per_image) < 0.8, boxes[source, 4], rng.integers(0, classes, per_image))
        for (x1, y1, x2, y2), label, score in zip(found, labels, rng.random(per_image), strict=True):
            results.append({"image_id": index, "category_id": int(label),
                            "bbox": [x1, y1, max(x2 - x1, 1.0), max(y2 - y1, 1.0)], "score": score})
    paths = {"annotations": folder / "lines.txt", "detections": folder / "results.json",
             "classes": folder / "classes.txt"}
    paths["annotations"].write_text("\n".join(lines) + "\n")
    paths["detections"].write_text(json.dumps(results))
    paths["classes"].write_text("\n".join(f"class{c}" for c in range(classes)) + "\n")
    return paths


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--detections-per-image", type=int, default=20)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        paths = write_case(Path(folder), args.images, args.detections_per_image, args.classes)
        annotations = read_annotations(paths["annotations"])[0]
        image_paths = [a.image_path for a in annotations]
        detections = read_results_json(paths["detections"], image_paths, args.classes)
        truth = [a.ground_truth() for a in annotations]
        matching = Matching.build(detections, truth)
        common = ["--detections", str(paths["detections"]), "--annotations", str(paths["annotations"]),
                  "--classes", str(paths["classes"]), "--out-dir", str(Path(folder) / "map")]
        rows = [
            ("read annotations + results JSON", lambda: read_results_json(
                paths["detections"], [a.image_path for a in read_annotations(paths["annotations"])[0]],
                args.classes)),
            ("VOC matching + AP@0.5 (all-point and 07)", lambda: [
                ap_per_class(m, m.match(0.5), args.classes, flag)
                for m in [Matching.build(detections, truth)] for flag in (False, True)]),
            ("error breakdown + confusion matrix", lambda: analyse_errors(matching, args.classes, 0.5)),
            ("COCO, faster-coco-eval", lambda: coco_metrics(detections, truth, args.classes, "faster-coco-eval")),
            ("COCO, pycocotools", lambda: coco_metrics(detections, truth, args.classes, "pycocotools")),
            ("get_map.py --detections, metrics only", lambda: get_map.main([*common, "--no-plots"])),
            ("get_map.py --detections, with plots", lambda: get_map.main(common)),
        ]
        import contextlib
        import io

        print(f"{args.images} images × {args.detections_per_image} detections, {args.classes} classes, "
              f"{sum(len(t) for t in truth)} true boxes; median of {args.repeats} runs")
        print(f"| {'stage':<42} | seconds |\n|{'-' * 44}|--------:|")
        for name, function in rows:
            with contextlib.redirect_stdout(io.StringIO()):
                seconds = median_seconds(function, 1 if "pycocotools" in name else args.repeats)
            print(f"| {name:<42} | {seconds:7.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
