"""Generate the bundled demo dataset: coloured shapes on textured backgrounds, in VOC layout.

Example:
    python synthetic_data.py --out-dir data/shapes --images 400 --seed 0
"""

from __future__ import annotations

import argparse

from utils.cli.errors import run_cli
from utils.data.synthetic import generate_synthetic_voc


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", required=True, help="VOC folder to write (Annotations/, JPEGImages/)")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--size", type=int, default=320, help="image height and width")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    classes = generate_synthetic_voc(args.out_dir, args.images, args.seed, (args.size, args.size))
    print(f"wrote {args.images} images to {args.out_dir}; classes in {classes}")
    return 0


if __name__ == "__main__":

    run_cli(main)
