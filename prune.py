"""Prune a trained detector's convolutions channel by channel into a smaller detector to fine-tune and export.

Example:
    python prune.py --run-dir logs/bccd --ratio 0.5 --output logs/bccd_pruned50.keras
    python train.py --config logs/bccd/config.json --init-model logs/bccd_pruned50.keras \
        --run-dir logs/bccd_pruned50 --epochs 10
"""

from __future__ import annotations

from utils.cli.startup import quiet_startup

if __name__ == "__main__":
    quiet_startup()  # before any import loads TensorFlow

from utils.cli.errors import run_cli
from utils.cli.flags import config_values
from utils.cli.parsers import prune_parser
from utils.training.pruning import PruneRequest, format_report, prune_detector


def main(argv: list[str] | None = None) -> int:
    args = prune_parser().parse_args(argv)
    request = PruneRequest(**config_values(args, PruneRequest))
    print(format_report(prune_detector(request), request))
    return 0


if __name__ == "__main__":
    run_cli(main)
