"""Rotation augmenter throughput: 500 labeled 640x480 JPEG photos, rotated to 4 quarter turns.

Usage:
    python bench/rotate_bench.py                 # 500 images, 2 workers
    python bench/rotate_bench.py --images 200 --workers 4

Goal: at least 150 source images/s (600 written) with 2 workers on the 2-core CI machine.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from augment import rotate
from digitdet.boxes import to_yolo
from digitdet.labels import yolo_line
from digitdet.turns import TURNS


def make_photos(root: Path, count: int, seed: int = 0) -> Path:
    """Noisy photo-like JPEGs with a few dark boxes each, in the ultralytics layout."""
    rng = np.random.default_rng(seed)
    images, labels = root / "images" / "train", root / "labels" / "train"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    base = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (0, 0), 3)
    for i in range(count):
        image = np.roll(base, i * 7, axis=1).copy()
        lines = []
        for _ in range(5):
            w, h = rng.integers(20, 120, 2)
            x, y = rng.integers(0, 640 - w), rng.integers(0, 480 - h)
            image[y:y + h, x:x + w] = rng.integers(0, 80)
            lines.append(yolo_line(int(rng.integers(10)), *to_yolo([[x, y, x + w, y + h]], 640, 480)[0]))
        cv2.imwrite(str(images / f"photo{i:04d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        (labels / f"photo{i:04d}.txt").write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nnames: {[str(d) for d in range(10)]}\n")
    return root / "data.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    opt = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = make_photos(Path(tmp) / "src", opt.images)
        start = time.perf_counter()
        rotate.run(data, Path(tmp) / "out", workers=opt.workers, progress=False)
        seconds = time.perf_counter() - start
    written = opt.images * len(TURNS)
    print(f"{opt.images} source images -> {written} written in {seconds:.2f} s with {opt.workers} workers: "
          f"{opt.images / seconds:.0f} source images/s ({written / seconds:.0f} written/s); goal >= 150 source/s")


if __name__ == "__main__":
    main()
