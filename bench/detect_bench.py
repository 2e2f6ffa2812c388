"""Benchmark: detect.py's PyTorch, ONNX Runtime and int8 paths against plain ultralytics predict, on generated pages.

Over N generated test pages (augment.pages, 640 x 640 by default), every path runs one page at a time on the same
in-memory images with the same .pt model, confidence and IoU, at two input sizes: the model's trained size and 640.
All paths at both sizes take turns page by page (in a rotating order), so a machine whose load changes during the
run slows them alike. The int8 model is calibrated on the run's own train pages (MNIST train digits), never on the
test pages it is scored on.

Plain ultralytics predict runs twice: as it comes (its select_device sets torch to cpu_count - 1 threads: one on a
2-core machine) and with THREADS torch threads forced after it loads. Our paths run on THREADS threads.

Printed per size: median latency per page, pages/s, the speed ratio to each ultralytics row, mAP50 on the pages'
labels, and how many of ultralytics' detections each path reproduces (same class, IoU >= 0.9), which shows parity
even for a weak model whose mAP is near 0. For an orientation-aware model (40 joint classes) ultralytics' classes are
read as their digit (class mod 10), while ours come from the page's turn (digitdet.orientation): its mAP50 and the
reproduction then differ for that reason too.

Our PyTorch path runs twice: in fp32 and under bf16 autocast (detect.py's default on a CPU with native bf16; on
one without, torch emulates bf16 and that row is slow).

A last row runs the int8 model as detect.py does, with tiles for pages of small digits (digitdet.detector): what
the tiles cost and what they find.

Goals: our ONNX path at least 1.5x, our int8 path at least 2.5x the pages/s of plain ultralytics predict on THREADS
threads, at the same size; int8 mAP50 within 0.005 of the fp32 ONNX path's.

Usage:
    python bench/detect_bench.py                                 # weights/best.pt, 100 new pages
    python bench/detect_bench.py --weights runs/x/weights/best.pt --pages 50 --threads 2
    python bench/detect_bench.py --data data/pages/data.yaml --split test   # existing pages instead
    python bench/detect_bench.py --profile prof/                 # also onnxruntime per-node profiles of int8
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import digitdet  # noqa: F401 - first: it sets ultralytics and torchmetrics up offline
import numpy as np
import torch
from torchmetrics.detection import MeanAveragePrecision

from digitdet.boxes import from_yolo, iou
from digitdet.detector import DEFAULT_WEIGHTS, Detector, OnnxBackend, export_onnx
from digitdet.images import read_image
from digitdet.labels import label_path, load_dataset, read_labels
from digitdet.orientation import N_DIGITS, is_joint
from digitdet.quantize import CALIBRATION_PAGES, quantize

SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"
SECOND_SIZE = 640  # ultralytics' default, beside the model's trained size
AS_IT_COMES = "ultralytics, as it comes"
TORCH, TORCH_BF16 = "ours, PyTorch", "ours, PyTorch bf16"
ONNX, INT8 = "ours, ONNX Runtime", "ours, ONNX Runtime int8"
INT8_TILED = "ours, int8, tiles as detect.py"  # pages of small digits also run as tiles, in one batch
PROFILED_PAGES = 20
TOP_NODES = 12


@dataclass
class DetectPath:
    """One way of detecting: a page in, its boxes out, run with `threads` torch threads (one setting per process,
    so it is set before each call)."""

    predict: object
    threads: int


def make_pages(out: Path, count: int, size: int, mnist_dir: Path) -> Path:
    """`count` new test pages (MNIST test digits) and CALIBRATION_PAGES train pages; returns their data.yaml."""
    from augment import pages

    return pages.run(mnist_dir, out, counts={"train": CALIBRATION_PAGES, "test": count}, size=size, seed=1234,
                     workers=2, progress=False)


def load_pages(data_yaml: Path, split: str, limit: int) -> tuple[list[np.ndarray], list[dict]]:
    """Images (BGR) and their truth boxes in pixels."""
    dataset = load_dataset(data_yaml)
    images, truths = [], []
    for path in dataset.images(split)[:limit]:
        image = read_image(path)
        height, width = image.shape[:2]
        labels = read_labels(label_path(path), len(dataset.names))
        boxes = from_yolo([label.box for label in labels], width, height)
        images.append(image)
        truths.append({"boxes": torch.tensor(boxes, dtype=torch.float32),
                       "labels": torch.tensor([label.cls for label in labels], dtype=torch.int64)})
    return images, truths


def ours(detector: Detector, threads: int, tile: bool | None = False) -> DetectPath:
    """`tile` False: the same work as ultralytics, one pass per page; None: tiles as detect.py decides."""
    def predict(image: np.ndarray) -> dict:
        (found,) = detector.detect([image], tile=tile)
        return {"boxes": torch.from_numpy(found.boxes), "scores": torch.from_numpy(found.confidences),
                "labels": torch.from_numpy(found.classes)}
    return DetectPath(predict, threads)


def plain_ultralytics(weights: Path, imgsz: int, conf: float, iou: float, threads: int | None,
                      first_page: np.ndarray) -> DetectPath:
    """YOLO.predict on the .pt; `threads`: torch threads forced after it loads (None: as ultralytics sets them)."""
    from ultralytics import YOLO

    model = YOLO(str(weights))
    classes = N_DIGITS if is_joint(model.names.values()) else len(model.names)  # joint class -> its digit

    def predict(image: np.ndarray) -> dict:
        boxes = model.predict(image, imgsz=imgsz, conf=conf, iou=iou, device="cpu", verbose=False)[0].boxes
        return {"boxes": boxes.xyxy.float(), "scores": boxes.conf.float(), "labels": boxes.cls.long() % classes}

    predict(first_page)  # loads the model: ultralytics' select_device sets torch's threads here
    return DetectPath(predict, threads or torch.get_num_threads())


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
            ious = iou(theirs["boxes"].numpy(), mine["boxes"].numpy())
            ious[theirs["labels"].numpy()[:, None] != mine["labels"].numpy()[None, :]] = 0
            hits += int((ious.max(1) >= min_iou).sum())
    return hits / total if total else 1.0


def run(weights: Path = DEFAULT_WEIGHTS, pages: int = 100, size: int = 640, threads: int = 2, conf: float = 0.001,
        iou: float = 0.7, imgsz: int | None = None, data: Path | None = None, split: str = "test", warmup: int = 3,
        mnist_dir: Path = SHARED_MNIST, profile: Path | None = None) -> dict:
    """Time and score every path at both sizes; returns {size: {path: {"median_ms", "pages_per_s", "map50",
    "reproduced"}}}, and with `profile` also {"profile": {size: text}}.

    Args:
        weights: the .pt model; its ONNX export and int8 model are made in a temporary folder.
        pages: pages to generate (or to take from `data`).
        size: side of generated pages in pixels.
        threads: CPU threads for our paths and for the forced ultralytics row.
        conf, iou: detection thresholds for every path (a low conf, as for mAP).
        imgsz: the first input size (default: the model's trained size); the second is 640.
        data: an existing pages data.yaml instead of generating pages; `split` names its split, and the int8 model
            is calibrated on its train split.
        warmup: untimed pages per path first.
        mnist_dir: MNIST idx files for generating pages.
        profile: a folder for onnxruntime profiles of the int8 model at both sizes (PROFILED_PAGES pages each).
    """
    with tempfile.TemporaryDirectory(prefix="detect-bench-") as folder:
        folder = Path(folder)
        if data is None:
            print(f"generating {pages} test and {CALIBRATION_PAGES} train pages of {size} x {size} ...", flush=True)
            data = make_pages(folder / "pages", pages, size, mnist_dir)
        images, truths = load_pages(Path(data), split, pages)
        pt = folder / "model.pt"
        shutil.copyfile(weights, pt)
        onnx = export_onnx(pt, imgsz)
        int8 = quantize(onnx, data, imgsz=imgsz)
        first = imgsz or Detector(onnx).imgsz  # the export's size: the trained one by default
        sizes = [first] + [SECOND_SIZE] * (first != SECOND_SIZE)
        paths = {}
        for side in sizes:
            paths[side] = {AS_IT_COMES: plain_ultralytics(pt, side, conf, iou, None, images[0]),
                           forced(threads): plain_ultralytics(pt, side, conf, iou, threads, images[0]),
                           TORCH: ours(Detector(pt, side, conf, iou, threads=threads, batch=1, precision="fp32"),
                                       threads),
                           TORCH_BF16: ours(Detector(pt, side, conf, iou, threads=threads, batch=1, precision="bf16"),
                                            threads),
                           ONNX: ours(Detector(onnx, side, conf, iou, threads=threads, batch=1), threads),
                           INT8: ours(Detector(int8, side, conf, iou, threads=threads, batch=1), threads),
                           INT8_TILED: ours(Detector(int8, side, conf, iou, threads=threads), threads, tile=None)}
        results = measure({(side, name): path for side, named in paths.items() for name, path in named.items()},
                          images, truths, warmup)
        by_size = {side: {name: results[side, name] for name in named} for side, named in paths.items()}
        if profile:
            by_size["profile"] = {side: profile_int8(int8, side, threads, images[:PROFILED_PAGES], profile)
                                  for side in sizes}
        return by_size


def measure(paths: dict, images: list[np.ndarray], truths: list[dict], warmup: int) -> dict:
    """Every path over every page, taking turns; mAP50 per path, and its reproduction of ultralytics as it comes
    at the same size."""
    names = list(paths)
    for name in names:
        for image in images[:warmup]:
            call(paths[name], image)
    seconds = {name: [] for name in names}
    predictions = {name: [] for name in names}
    for i, image in enumerate(images):
        for name in names[i % len(names):] + names[:i % len(names)]:  # take turns: load changes hit all alike
            elapsed, prediction = call(paths[name], image)
            seconds[name].append(elapsed)
            predictions[name].append(prediction)
    return {(side, name): {"median_ms": 1000 * statistics.median(seconds[side, name]),
                           "pages_per_s": len(images) / sum(seconds[side, name]),
                           "map50": map50(predictions[side, name], truths),
                           "reproduced": reproduced(predictions[side, name], predictions[side, AS_IT_COMES])}
            for side, name in names}


def call(path: DetectPath, image: np.ndarray) -> tuple[float, dict]:
    torch.set_num_threads(path.threads)
    began = time.perf_counter()
    prediction = path.predict(image)
    return time.perf_counter() - began, prediction


def profile_int8(int8: Path, side: int, threads: int, images: list[np.ndarray], folder: Path) -> str:
    """Where an int8 page's time goes: onnxruntime's per-node profile over `images` at `side`, summed by operator
    and by node, beside the whole page's time (letterbox, model and NMS)."""
    folder.mkdir(parents=True, exist_ok=True)
    backend = OnnxBackend(int8, threads=threads, profile=folder / f"int8-{side}")
    detector = Detector(int8, side, backend=backend, batch=1)
    torch.set_num_threads(threads)
    detector.detect(images[:1], tile=False)  # warm-up, profiled too, and left out below
    began = time.perf_counter()
    for image in images[1:]:
        detector.detect([image], tile=False)
    page_ms = 1000 * (time.perf_counter() - began) / (len(images) - 1)
    trace = Path(backend.session.end_profiling())
    runs = [e for e in json.loads(trace.read_text()) if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    first_run = {e["name"] for e in runs[:len(runs) // len(images)]}
    by_op, by_node = collections.Counter(), collections.Counter()
    for event in runs[len(runs) // len(images):]:
        by_op[event["args"]["op_name"]] += event["dur"] / 1000 / (len(images) - 1)
        by_node[event["args"]["op_name"], event["name"].removesuffix("_kernel_time")] += \
            event["dur"] / 1000 / (len(images) - 1)
    kernels = sum(by_op.values())
    lines = [f"int8 at imgsz {side}: {page_ms:.1f} ms per page, of which {kernels:.1f} ms in onnxruntime's kernels "
             f"({len(first_run)} nodes run); profile {trace}",
             f"  {'operator':24s} {'ms':>6s} {'share':>6s}"]
    lines += [f"  {op:24s} {ms:6.2f} {ms / kernels:6.1%}" for op, ms in by_op.most_common()]
    lines.append("  slowest nodes:")
    lines += [f"  {op:24s} {ms:6.2f} {name}" for (op, name), ms in by_node.most_common(TOP_NODES)]
    return "\n".join(lines)


def forced(threads: int) -> str:
    """The name of the ultralytics row with `threads` torch threads forced after it loads."""
    return f"ultralytics, {threads} thread{'s' * (threads != 1)}"


def report(results: dict, threads: int, load_before: tuple, load_after: tuple) -> str:
    against = forced(threads).removeprefix("ultralytics, ")  # "2 threads"
    lines = []
    for side, rows in results.items():
        if side == "profile":
            continue
        base, base_forced = rows[AS_IT_COMES]["pages_per_s"], rows[forced(threads)]["pages_per_s"]
        lines += [f"imgsz {side}:",
                  f"  {'path':30s} {'median ms':>9s} {'pages/s':>8s} {'x as it comes':>13s} {'x ' + against:>11s} "
                  f"{'mAP50':>7s} {'reproduces ultralytics':>22s}"]
        for name, r in rows.items():
            lines.append(f"  {name:30s} {r['median_ms']:9.1f} {r['pages_per_s']:8.2f} "
                         f"{r['pages_per_s'] / base:12.2f}x {r['pages_per_s'] / base_forced:10.2f}x "
                         f"{r['map50']:7.4f} {r['reproduced']:21.1%}")
        onnx, int8 = rows[ONNX], rows[INT8]
        lines.append(f"  int8 / ultralytics pages/s: {int8['pages_per_s'] / base_forced:.2f}x against {against} "
                     f"(goal >= 2.5x), {int8['pages_per_s'] / base:.2f}x as it comes; ONNX "
                     f"{onnx['pages_per_s'] / base_forced:.2f}x (goal >= 1.5x); int8 mAP50 "
                     f"{int8['map50'] - onnx['map50']:+.4f} against ONNX fp32 (goal within 0.005)")
    lines += list(results.get("profile", {}).values())
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
    parser.add_argument("--imgsz", type=int, default=None,
                        help="first model input size (default: the model's own); the second is 640")
    parser.add_argument("--data", type=Path, default=None, help="existing pages data.yaml instead of new pages")
    parser.add_argument("--split", default="test", help="split of --data (default: test)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed pages per path first (default: 3)")
    parser.add_argument("--mnist", type=Path, default=SHARED_MNIST, help="MNIST folder for generating pages")
    parser.add_argument("--profile", type=Path, default=None,
                        help="folder for onnxruntime profiles of the int8 model; prints where its time goes")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opt = parse_opt(argv)
    if not opt.weights.is_file():
        print(f"error: {opt.weights}: model file not found (pass --weights)", file=sys.stderr)
        return 1
    load_before = os.getloadavg()
    results = run(opt.weights, opt.pages, opt.size, opt.threads, opt.conf, opt.iou, opt.imgsz, opt.data, opt.split,
                  opt.warmup, opt.mnist, opt.profile)
    print(report(results, opt.threads, load_before, os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
