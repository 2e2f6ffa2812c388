"""Page builder throughput: images written per second (JPEG, labels and sidecars) with 2 workers: 640 x 640 pages
and, as the page mix has them, smaller close-ups.

Usage:
    python bench/pages_bench.py                        # 2000 pages, 2 workers, MNIST from ../shared/data/mnist
    python bench/pages_bench.py --pages 1000 --workers 4 --mnist DIR

Two figures: the whole run with its workers (start-up included, as a user sees it), and one process making pages
without writing them (the cost of a page itself). The load average is printed too: the figures mean little on a
machine that other work is using.

Goal: at least 100 pages/s with 2 workers on the 2-core CI machine.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from augment import pages
from augment.pages import build, fonts

DEFAULT_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def single_process(folder: Path, count: int = 100) -> tuple[float, float]:
    """Seconds per image for making one image (layout, render, photo effects) in this process, no file writing:
    wall time, and this process's CPU time (which other work on the machine slows much less).

    Images differ much in how many digits they hold (0 to 160; close-ups a few): fewer than about 100 make a noisy
    mean. Measured after `count` other images, which draw the glyphs each process draws once (fonts at the sizes
    pages use, security backgrounds): a process of a real build spends most of its pages with them at hand.
    """
    shown = {"train": fonts.for_split(fonts.find(warn=False), "train")}
    sources = build.load_sources(folder, shown)["train"]
    for i in range(count):  # warm up
        build.make_page(build.page_rng(1, "train", i), sources, 640)
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        build.make_page(build.page_rng(0, "train", i), sources, 640)
    return (time.perf_counter() - start) / count, (time.process_time() - cpu) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # a dataset is thousands of pages (10,000 by default); with fewer, the workers' start-up (about 1 s each, in
    # parallel: imports and MNIST) weighs more than it does in any real build: at 600 pages it is about 15%
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mnist", type=Path, default=DEFAULT_MNIST)
    opt = parser.parse_args()
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        pages.run(opt.mnist, Path(tmp) / "pages", counts={"train": opt.pages}, size=640, workers=opt.workers,
                  progress=False)
        seconds = time.perf_counter() - start
    per_page, cpu_per_page = single_process(opt.mnist)
    print(f"{opt.pages} images (640 x 640 pages and close-ups) in {seconds:.1f} s with {opt.workers} workers: "
          f"{opt.pages / seconds:.1f} pages/s (worker start-up included); goal >= 100 pages/s")
    print(f"one process, no writing: {per_page * 1000:.1f} ms per page ({1 / per_page:.1f} pages/s), "
          f"{cpu_per_page * 1000:.1f} ms of CPU time per page")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
