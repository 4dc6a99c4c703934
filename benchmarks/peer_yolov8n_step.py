"""The peer's training step: Ultralytics YOLOv8n, forward + its own loss + backward + optimizer step.

Runs in a separate environment with `ultralytics` installed (not a dependency of this project); `bench_train.py
--peer-python ENV/bin/python` calls it between its own measurements so the ratio comes from one run. Builds
YOLOv8n from its yaml (random weights: timing does not depend on them) with `--num-classes`, feeds one batch held
in memory (`--batch-size` images of `--input-size`², three boxes each), and steps AdamW with the trainer's
gradient clipping (max norm 10), as Ultralytics' trainer does on a CPU (no AMP). Prints one JSON line: the
median and every step's seconds after `--warmup` untimed steps, and the thread count torch used.

Example (from the repository root):
    /path/to/peer-env/bin/python benchmarks/peer_yolov8n_step.py --batch-size 8 --input-size 416
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolov8n.yaml")
    parser.add_argument("--num-classes", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--input-size", type=int, default=416)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import DEFAULT_CFG

    torch.manual_seed(0)
    model = DetectionModel(args.model, nc=args.num_classes, verbose=False)
    model.args = get_cfg(DEFAULT_CFG)
    model.train()
    batch_size, size = args.batch_size, args.input_size
    boxes_per_image = 3
    batch = {
        "img": torch.rand(batch_size, 3, size, size),
        "batch_idx": torch.arange(batch_size).repeat_interleave(boxes_per_image).float(),
        "cls": torch.randint(0, args.num_classes, (batch_size * boxes_per_image, 1)).float(),
        "bboxes": torch.rand(batch_size * boxes_per_image, 4) * 0.4 + torch.tensor([0.3, 0.3, 0.05, 0.05]),
    }
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=5e-4)
    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        loss, _ = model.loss(batch)
        loss.sum().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
        optimizer.step()
        optimizer.zero_grad()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    print(json.dumps({"model": args.model, "median_s": statistics.median(times), "times_s": times,
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
