"""Benchmark: detect.py's PyTorch and ONNX Runtime paths against plain ultralytics predict, on generated pages.

Over N generated pages (augment.pages, 640 x 640 by default), each path runs one page at a time on the same
in-memory images with the same .pt model, confidence and IoU, on THREADS CPU threads. The paths take turns page by
page (in a rotating order), so a machine whose load changes during the run slows them alike. Printed: median
latency per page, pages/s, the speed ratio to plain ultralytics, mAP50 on the pages' labels for each path (the
goal: within 0.005 of ultralytics), and how many of ultralytics' detections each path reproduces (same class,
IoU >= 0.9), which shows parity even for a weak model whose mAP is near 0.

Goal: our ONNX path at least 1.5 x the pages/s of plain ultralytics predict at equal mAP50.

Usage:
    python bench/detect_bench.py                                 # weights/best.pt, 100 new pages
    python bench/detect_bench.py --weights runs/x/weights/best.pt --pages 50 --threads 2
    python bench/detect_bench.py --data data/pages/data.yaml --split test   # existing pages instead
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digitdet import runtime  # noqa: E402

runtime.setup()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchmetrics.detection import MeanAveragePrecision  # noqa: E402
from torchvision.ops import box_iou  # noqa: E402

from digitdet.detector import DEFAULT_WEIGHTS, Detector, export_onnx  # noqa: E402
from digitdet.images import read_image  # noqa: E402
from digitdet.labels import label_path, load_dataset, read_labels  # noqa: E402

SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"


def make_pages(out: Path, count: int, size: int, mnist_dir: Path) -> Path:
    """`count` new test pages (MNIST test digits); returns their data.yaml."""
    from augment import pages

    return pages.run(mnist_dir, out, counts={"train": 1, "test": count}, size=size, seed=1234, workers=2,
                     progress=False)


def load_pages(data_yaml: Path, split: str, limit: int) -> tuple[list[np.ndarray], list[dict]]:
    """Images (BGR) and their truth boxes in pixels."""
    dataset = load_dataset(data_yaml)
    images, truths = [], []
    for path in dataset.images(split)[:limit]:
        image = read_image(path)
        height, width = image.shape[:2]
        labels = read_labels(label_path(path), len(dataset.names))
        boxes = [[(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
                 for cx, cy, w, h in (label.box for label in labels)]
        images.append(image)
        truths.append({"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                       "labels": torch.tensor([label.cls for label in labels], dtype=torch.int64)})
    return images, truths


def ours(detector: Detector):
    def predict(image: np.ndarray) -> dict:
        (found,) = detector.detect([image], tile=False)  # the same work as ultralytics: one pass per page
        return {"boxes": torch.from_numpy(found.boxes), "scores": torch.from_numpy(found.confidences),
                "labels": torch.from_numpy(found.classes)}
    return predict


def plain_ultralytics(weights: Path, imgsz: int, conf: float, iou: float):
    from ultralytics import YOLO

    model = YOLO(str(weights))

    def predict(image: np.ndarray) -> dict:
        boxes = model.predict(image, imgsz=imgsz, conf=conf, iou=iou, device="cpu", verbose=False)[0].boxes
        return {"boxes": boxes.xyxy.float(), "scores": boxes.conf.float(), "labels": boxes.cls.long()}
    return predict


def map50(predictions: list[dict], truths: list[dict]) -> float:
    metric = MeanAveragePrecision(iou_type="bbox")
    metric.update(predictions, truths)
    return float(metric.compute()["map_50"])


def reproduced(predictions: list[dict], reference: list[dict], min_iou: float = 0.9) -> float:
    """The share of the reference's detections that the predictions repeat: same class, IoU >= min_iou."""
    hits = total = 0
    for mine, theirs in zip(predictions, reference):
        total += len(theirs["boxes"])
        if len(theirs["boxes"]) and len(mine["boxes"]):
            ious = box_iou(theirs["boxes"], mine["boxes"])
            ious[theirs["labels"][:, None] != mine["labels"][None, :]] = 0
            hits += int((ious.max(1).values >= min_iou).sum())
    return hits / total if total else 1.0


def run(weights: Path = DEFAULT_WEIGHTS, pages: int = 100, size: int = 640, threads: int = 2, conf: float = 0.001,
        iou: float = 0.7, imgsz: int | None = None, data: Path | None = None, split: str = "test", warmup: int = 3,
        mnist_dir: Path = SHARED_MNIST) -> dict:
    """Time and score the three paths; returns {path: {"median_ms", "pages_per_s", "map50", "reproduced"}}.

    Args:
        weights: the .pt model; its ONNX export is made in a temporary folder.
        pages: pages to generate (or to take from `data`).
        size: side of generated pages in pixels.
        threads: CPU threads for every path.
        conf, iou: detection thresholds for every path (a low conf, as for mAP).
        imgsz: model input size (default: the model's own).
        data: an existing pages data.yaml instead of generating pages; `split` names its split.
        warmup: untimed pages per path first.
        mnist_dir: MNIST idx files for generating pages.
    """
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="detect-bench-") as folder:
        folder = Path(folder)
        if data is None:
            print(f"generating {pages} pages of {size} x {size} ...", flush=True)
            data = make_pages(folder / "pages", pages, size, mnist_dir)
        images, truths = load_pages(Path(data), split, pages)
        pt = folder / "model.pt"
        shutil.copyfile(weights, pt)
        onnx = export_onnx(pt, imgsz)
        torch_detector = Detector(pt, imgsz, conf, iou, threads=threads, batch=1)
        imgsz = torch_detector.imgsz
        paths = {"ultralytics predict (.pt)": plain_ultralytics(pt, imgsz, conf, iou),
                 "ours, PyTorch": ours(torch_detector),
                 "ours, ONNX Runtime": ours(Detector(onnx, imgsz, conf, iou, threads=threads, batch=1))}
        return measure(paths, images, truths, warmup)


def measure(paths: dict, images: list[np.ndarray], truths: list[dict], warmup: int) -> dict:
    names = list(paths)
    for name in names:
        for image in images[:warmup]:
            paths[name](image)
    seconds = {name: [] for name in names}
    predictions = {name: [] for name in names}
    for i, image in enumerate(images):
        for name in names[i % len(names):] + names[:i % len(names)]:  # take turns: load changes hit all alike
            began = time.perf_counter()
            prediction = paths[name](image)
            seconds[name].append(time.perf_counter() - began)
            predictions[name].append(prediction)
    reference = predictions[names[0]]
    return {name: {"median_ms": 1000 * statistics.median(seconds[name]),
                   "pages_per_s": len(images) / sum(seconds[name]),
                   "map50": map50(predictions[name], truths),
                   "reproduced": reproduced(predictions[name], reference)} for name in names}


def report(results: dict, threads: int, load_before: tuple, load_after: tuple) -> str:
    baseline = next(iter(results.values()))
    lines = [f"{'path':28s} {'median ms':>9s} {'pages/s':>8s} {'x ultralytics':>13s} {'mAP50':>7s} "
             f"{'reproduces ultralytics':>22s}"]
    for name, r in results.items():
        lines.append(f"{name:28s} {r['median_ms']:9.1f} {r['pages_per_s']:8.2f} "
                     f"{r['pages_per_s'] / baseline['pages_per_s']:12.2f}x {r['map50']:7.4f} {r['reproduced']:21.1%}")
    onnx = results["ours, ONNX Runtime"]
    lines.append(f"ONNX Runtime / plain ultralytics pages/s: {onnx['pages_per_s'] / baseline['pages_per_s']:.2f}x "
                 f"(goal >= 1.5x); mAP50 difference {onnx['map50'] - baseline['map50']:+.4f} (goal within 0.005)")
    lines.append(f"threads {threads}; CPU cores {os.cpu_count()}; load average before "
                 f"{' '.join(f'{v:.2f}' for v in load_before)}, after {' '.join(f'{v:.2f}' for v in load_after)}")
    return "\n".join(lines)


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/detect_bench.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="the .pt model (default: %(default)s)")
    parser.add_argument("--pages", type=int, default=100, help="pages (default: 100)")
    parser.add_argument("--size", type=int, default=640, help="generated page side in pixels (default: 640)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per path (default: 2)")
    parser.add_argument("--conf", type=float, default=0.001, help="confidence threshold (default: 0.001, as for mAP)")
    parser.add_argument("--iou", type=float, default=0.7, help="NMS IoU (default: 0.7)")
    parser.add_argument("--imgsz", type=int, default=None, help="model input size (default: the model's own)")
    parser.add_argument("--data", type=Path, default=None, help="existing pages data.yaml instead of new pages")
    parser.add_argument("--split", default="test", help="split of --data (default: test)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed pages per path first (default: 3)")
    parser.add_argument("--mnist", type=Path, default=SHARED_MNIST, help="MNIST folder for generating pages")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opt = parse_opt(argv)
    if not opt.weights.is_file():
        print(f"error: {opt.weights}: model file not found (pass --weights)", file=sys.stderr)
        return 1
    load_before = os.getloadavg()
    results = run(opt.weights, opt.pages, opt.size, opt.threads, opt.conf, opt.iou, opt.imgsz, opt.data, opt.split,
                  opt.warmup, opt.mnist)
    print(report(results, opt.threads, load_before, os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
