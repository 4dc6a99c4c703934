"""Generate the bundled demo dataset: coloured shapes on textured backgrounds, in VOC layout.

Example:
    python synthetic_data.py --out-dir data/shapes --images 400 --seed 0
"""

from __future__ import annotations

from utils.cli.startup import quiet_startup

if __name__ == "__main__":
    quiet_startup()  # before any import loads TensorFlow

from utils.cli.errors import run_cli
from utils.cli.parsers import synthetic_data_parser
from utils.data.synthetic import generate_synthetic_voc


def main(argv: list[str] | None = None) -> int:
    args = synthetic_data_parser().parse_args(argv)
    classes = generate_synthetic_voc(args.out_dir, args.images, args.seed, (args.size, args.size))
    print(f"wrote {args.images} images to {args.out_dir}; classes in {classes}")
    return 0


if __name__ == "__main__":

    run_cli(main)
