"""The page builder's command line: `python -m augment.pages --mnist DIR --out DIR ...`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from augment import pages
from augment.pages.build import COUNTS, run
from augment.pages.mix import MIXES
from digitdet import cli, mnist


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m augment.pages", description=pages.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", type=Path, default=None,
                        help=f"folder with the four MNIST idx .gz files (default: ${mnist.ENV_VAR}, else download)")
    parser.add_argument("--out", type=Path, default=Path("data/pages"), help="folder to create (default: data/pages)")
    for split, n in COUNTS.items():
        parser.add_argument(f"--{split}", type=cli.integer(0), default=n, help=f"{split} images (default: {n})")
    parser.add_argument("--size", type=cli.integer(64), default=640, help="page side in pixels (default: 640)")
    parser.add_argument("--seed", type=cli.integer(0), default=0, help="random seed (default: 0)")
    parser.add_argument("--workers", type=cli.integer(1), default=min(8, os.cpu_count() or 1),
                        help="worker processes")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    parser.add_argument("--preview", type=Path, default=None, help="also write a contact sheet of 16 images (PNG)")
    parser.add_argument("--mix", default="full", choices=sorted(MIXES),
                        help="what the images hold: full (default), or mnist (MNIST handwriting on pages only)")
    return parser.parse_args(argv)


@cli.one_line_errors
def main(argv: list[str] | None = None) -> int:
    opt = parse_opt(argv)
    counts = {split: getattr(opt, split) for split in COUNTS}
    data_yaml = run(opt.mnist, opt.out, counts, opt.size, opt.seed, opt.workers, opt.overwrite, preview=opt.preview,
                    mix=opt.mix)
    print(f"wrote {data_yaml}" + (f" and {opt.preview}" if opt.preview else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
