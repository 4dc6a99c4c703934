"""Train an EfficientNet-YOLO detector on annotation-line files.

Examples:
    python train.py --train data/train.txt --val data/val.txt --classes model_data/voc_classes.txt \
        --phi 0 --input-size 416 --epochs 50 --batch-size 8 --run-dir logs/voc_b0
    python train.py --config logs/voc_b0/config.json --epochs 100 --run-dir logs/voc_b0_long
    python train.py --resume logs/voc_b0
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from utils.cli.startup import quiet_startup

if __name__ == "__main__":
    quiet_startup()  # before any import loads TensorFlow

from utils.cli.errors import run_cli
from utils.cli.flags import given_flags
from utils.cli.parsers import train_parser
from utils.config.run_config import TrainConfig
from utils.training import launch
from utils.training.distribute import make_strategy
from utils.training.run_directory import resume_command
from utils.training.trainer import train

NOT_SETTINGS = ("config", "resume", "autoanchor", "verbose")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return train_parser().parse_args(argv)


def resolve_config(argv: list[str] | None, args: argparse.Namespace | None = None) -> tuple[TrainConfig, bool]:
    """The run's config from flags, `--config` plus flags, or `--resume DIR` plus flags (see
    `utils.training.launch`); and whether it is a new run. `args`: `argv` already parsed."""
    args = args or parse_args(argv)
    if args.resume or args.config:
        settings = {k: v for k, v in given_flags(train_parser(), argv).items() if k not in NOT_SETTINGS}
    else:
        settings = {k: v for k, v in vars(args).items() if k not in NOT_SETTINGS}
    return launch.resolve_config(settings, args.config, args.resume)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    config, fresh = resolve_config(argv, args)
    strategy = make_strategy(config.strategy)  # before any TensorFlow op: multi-worker collectives need that
    if fresh:
        config = launch.with_checked_anchors(config, recompute=args.autoanchor)
    try:
        metrics = train(config, strategy, resume=not fresh)
    except KeyboardInterrupt:
        saved = (Path(config.run_dir) / "config.json").is_file()
        print("\ninterrupted: " + (f"continue with: {resume_command(config.run_dir)}" if saved
                                   else "nothing was written; run the same command again"), file=sys.stderr)
        return 130
    if metrics:
        print(json.dumps({"val_map50": metrics["map50"], "val_map50_95": metrics["map50_95"]}))
        run = Path(config.run_dir)
        print(f"model: {run / 'best.keras'} (what predict.py and get_map.py load from {run}); plots: "
              f"{run / 'training.png'}; log: {run / 'training_log.csv'}")
    return 0


if __name__ == "__main__":
    # Ctrl-C (SIGINT) stops training even when a launcher ignored it for its children (a background job of a
    # non-interactive shell inherits SIGINT ignored, and Python then leaves it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    run_cli(main)
