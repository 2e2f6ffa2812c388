"""Page builder throughput: 640 x 640 pages written per second (JPEG, labels and sidecars) with 2 workers.

Usage:
    python bench/pages_bench.py                        # 2000 pages, 2 workers, MNIST from ../shared/data/mnist
    python bench/pages_bench.py --pages 1000 --workers 4 --mnist DIR

Two figures: the whole run with its workers (start-up included, as a user sees it), and one process making pages
without writing them (the cost of a page itself). The load average is printed too: the figures mean little on a
machine that other work is using.

Goal (issue 3): at least 100 pages/s with 2 workers on the 2-core CI machine.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from augment import pages  # noqa: E402
from digitdet import mnist  # noqa: E402

DEFAULT_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def single_process(folder: Path, count: int = 100) -> float:
    """Seconds per page for making one page (layout, render, photo effects) in this process, no file writing.

    Pages differ much in how many digits they hold (0 to 160): fewer than about 100 make a noisy mean.
    """
    pool = mnist.load_pools(folder, ("train",))["train"]
    pages.make_page(pages.page_rng(0, "train", 0), pool, 640)  # warm up
    start = time.perf_counter()
    for i in range(count):
        pages.make_page(pages.page_rng(0, "train", i), pool, 640)
    return (time.perf_counter() - start) / count


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
    per_page = single_process(opt.mnist)
    print(f"{opt.pages} pages at 640 x 640 in {seconds:.1f} s with {opt.workers} workers: {opt.pages / seconds:.1f} "
          f"pages/s (worker start-up included); goal >= 100 pages/s")
    print(f"one process, no writing: {per_page * 1000:.1f} ms per page ({1 / per_page:.1f} pages/s)")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
