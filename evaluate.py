"""Evaluate a digit detector on a labeled split: COCO mAP (torchmetrics), P/R/F1, confusion matrix, PR and F1 curves.

Usage:
    python evaluate.py --weights weights/best.pt --data data.yaml --split test
    python evaluate.py --weights runs/digits/weights/best.pt --data data/pages/data.yaml --imgsz 320
    python evaluate.py --weights weights/best.pt --data data.yaml --turns 0,90,180,270 --name turned
    python evaluate.py --weights weights/best.pt --data data.yaml --engine onnx   # score the ONNX export
    python evaluate.py --weights weights/best.pt --data data.yaml --engine onnx-int8   # its int8 quantization

Writes results/<name>/ (an existing name gets a number appended, unless --exist-ok) and prints a table per digit:
    metrics.json          every number below, for each turn (under "rotations"), and their mean over turns
    PR_curve.png          precision against recall at IoU 0.5: one curve per digit, and all (their mean)
    F1_curve.png          F1 against the confidence threshold: one curve per digit, and all
    confusion_matrix.png  counts and normalized: 10 digits + background, at the best-F1 confidence
    (for turns other than 0 the PNG names end in _rot090, _rot180, _rot270)

How it counts:
  - mAP50, mAP75, mAP50-95, average recall and the by-size numbers are COCO's, computed by torchmetrics'
    MeanAveragePrecision (pycocotools): 101-point interpolated precision, averaged over the digits in the split.
  - P, R and F1 are at the confidence threshold that maximizes F1 averaged over the digits. The confusion matrix is
    at that threshold too, with matches at IoU >= 0.5: rows are true digits, columns predicted ones; an unmatched
    prediction counts in the background row, a missed box in the background column.
  - Reading, for pages with the page builder's numbers/ sidecars: the share of numbers read exactly (same digit
    string, box at the same place: IoU >= 0.5) by digitdet.reading, as detect.py reads them, at that threshold.
  - --turns turns every image and its boxes (in memory, with digitdet.turns) counter-clockwise by each turn.
  - 6<->9: of the true 6s and 9s found (matched at IoU >= 0.5, at that threshold), the share taken for the other.
  - Orientation-aware models (train.py --orientation) are scored through detect.py's Detector, which finds each
    page's turn and gives digits 0-9; "turn" is the share of pages with 3+ digits whose turn it found.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from digitdet import cli, runtime
from digitdet.atomic import build_into
from digitdet.detector import Detections, Detector, TorchBackend, int8_path
from digitdet.images import MAX_PIXELS, read_image
from digitdet.labels import DatasetError, label_path, load_dataset, numbers_path, read_labels, require_valid
from digitdet.metrics import (DetectionEvaluator, Evaluation, Truth, format_table, json_safe, numbers_read_exactly,
                              write_plots)
from digitdet.orientation import is_joint
from digitdet.reading import read_numbers
from digitdet.turns import TURNS, check_turns, turn_boxes, turn_image

RESULTS = runtime.PROJECT_ROOT / "results"
SUMMARY_COLUMNS = {"map50": "mAP50", "map50_95": "mAP50-95", "precision": "P", "recall": "R", "f1": "F1",
                   "six_nine_confusion": "6<->9", "reading_accuracy": "read", "orientation_accuracy": "turn"}
MIN_TURN_DIGITS = 3  # pages with fewer digits are left out of the orientation score: too little to go on

Predictor = Callable[[list[np.ndarray]], list[Detections]]  # a batch of BGR images -> their digits, in pixels
ENGINES = ("ultralytics", "detect", "onnx", "onnx-int8")


class UltralyticsPredictor:
    """Detections from ultralytics' own predict() for a batch of BGR images (its best class for each box).

    Any callable from a list of images to a list of Detections can stand in for it (DetectorPredictor, a test's oracle);
    one with a `names` list has them checked against the dataset's.
    """

    def __init__(self, weights: str | Path, imgsz: int | None = None, conf: float = 0.001, iou: float = 0.7,
                 max_det: int = 300, device: str | None = None):
        from ultralytics import YOLO

        self.model = YOLO(str(weights))
        self.names = [self.model.names[k] for k in sorted(self.model.names)]
        self.imgsz = imgsz or TorchBackend.trained_size(self.model.model)
        self.options = {"imgsz": self.imgsz, "conf": conf, "iou": iou, "max_det": max_det, "device": device,
                        "verbose": False}

    def __call__(self, images: list[np.ndarray]) -> list[Detections]:
        results = self.model.predict(images, batch=len(images), stream=True, **self.options)
        return [Detections.top1(r.boxes.xyxy.cpu().numpy(), r.boxes.cls.cpu().numpy(), r.boxes.conf.cpu().numpy())
                for r in results]


class DetectorPredictor:
    """detect.py's Detector as a Predictor, so that what is scored is exactly what detect.py reports: its own
    letterbox and NMS, tiles (for images too large for the model and images of small digits; `tile` as detect.py's
    --tile/--no-tile), and onnxruntime for an .onnx file."""

    def __init__(self, detector: Detector, tile: bool | None = None):
        self.detector, self.tile = detector, tile
        self.names, self.imgsz = detector.names, detector.imgsz
        self.precision = getattr(detector.backend, "precision", None)  # a test's stand-in backend has none

    def __call__(self, images: list[np.ndarray]) -> list[Detections]:
        return self.detector.detect(images, self.tile)


def load_predictor(engine: str, weights: str | Path, imgsz: int | None, conf: float, iou: float, max_det: int,
                   device: str | None, batch: int, tile: bool | None = None, precision: str = "auto") -> Predictor:
    """ultralytics: YOLO.predict (which never tiles); detect: detect.py's Detector on the .pt; onnx: on the .onnx
    export beside it; onnx-int8: on the int8 model beside it (NAME.int8.onnx)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "ultralytics":
        predictor = UltralyticsPredictor(weights, imgsz, conf, iou, max_det, device)
        if not is_joint(predictor.names):
            return predictor
        print(f"{weights}: an orientation-aware model (40 joint classes): scored with detect.py's Detector, which "
              f"finds each page's turn and reports digits 0-9", file=sys.stderr)
    weights = (Path(weights).with_suffix(".onnx") if engine == "onnx" else int8_path(weights) if engine == "onnx-int8"
               else weights)
    return DetectorPredictor(Detector(weights, imgsz, conf, iou, device or "cpu", batch=batch, max_det=max_det,
                                      precision=precision), tile)


@dataclass
class Sample:
    """An image at some quarter turn, with its truth boxes and (from a sidecar) numbers, in the turned pixels."""

    image: np.ndarray
    truth: Truth
    numbers: list[tuple[str, list[float]]] | None


def read_sidecar(image_path: Path, width: int, height: int, turn: int) -> list[tuple[str, list[float]]] | None:
    """The page builder's numbers for an image, turned like it, or None when it has no sidecar."""
    path = numbers_path(image_path)
    if not path.exists():
        return None
    try:
        numbers = json.loads(path.read_text())["numbers"]
        digits = [n["digits"] for n in numbers]
        boxes = np.array([n["box"] for n in numbers], dtype=float).reshape(-1, 4)
    except (ValueError, KeyError, TypeError) as error:
        raise DatasetError(f"{path}: not a numbers sidecar ({{'numbers': [{{'digits', 'box'}}, ...]}}): {error}") \
            from error
    return [(d, box.tolist()) for d, box in zip(digits, turn_boxes(boxes, turn, width, height))]


def load_sample(image_path: Path, n_classes: int, turn: int, max_pixels: int | None = MAX_PIXELS) -> Sample:
    """An image and its labels (and sidecar numbers), turned by `turn` degrees counter-clockwise."""
    upright = read_image(image_path, max_pixels)
    height, width = upright.shape[:2]
    labels = read_labels(label_path(image_path), n_classes)
    boxes = np.array([[*label.points.min(axis=0), *label.points.max(axis=0)] for label in labels]).reshape(-1, 4)
    truth = Truth(turn_boxes(boxes * [width, height, width, height], turn, width, height),
                  [label.cls for label in labels])
    return Sample(turn_image(upright, turn), truth, read_sidecar(image_path, width, height, turn))


def reading_score(pages: list[tuple[Detections, list, tuple[int, int]]], confidence: float,
                  names: list[str]) -> dict | None:
    """The share of sidecar numbers read exactly from the predictions kept at `confidence`; None without sidecars.
    Each page is (predictions, sidecar numbers, (width, height)); a page whose turn was found is read upright."""
    if not pages:
        return None
    read_exactly = total = 0
    for predictions, numbers, size in pages:
        kept = predictions.confidences >= confidence
        read = [(n.digits, n.box) for n in read_numbers(predictions.boxes[kept], predictions.classes[kept],
                                                        predictions.confidences[kept], names, predictions.turn, size)]
        read_exactly += numbers_read_exactly(read, numbers)
        total += len(numbers)
    return {"pages": len(pages), "numbers": total, "read_exactly": read_exactly,
            "accuracy": read_exactly / total if total else float("nan"), "confidence": confidence}


def evaluate(predict: Predictor, images: Sequence[Path], names: list[str], turn: int = 0, batch: int = 16,
             max_det: int = 300, progress: bool = True, max_pixels: int | None = MAX_PIXELS) -> Evaluation:
    """Run `predict` over the images turned by `turn` and score its boxes against their labels."""
    evaluator = DetectionEvaluator(names, max_det)
    pages, turns_found = [], []
    with tqdm(total=len(images), desc=f"evaluating, turned {turn:3d}°", unit="img", disable=not progress) as bar:
        for start in range(0, len(images), batch):
            samples = [load_sample(path, len(names), turn, max_pixels) for path in images[start:start + batch]]
            for sample, predictions in zip(samples, predict([s.image for s in samples]), strict=True):
                evaluator.update(predictions, sample.truth)
                if sample.numbers is not None:
                    pages.append((predictions, sample.numbers, (sample.image.shape[1], sample.image.shape[0])))
                if predictions.turn_confidence is not None and len(sample.truth) >= MIN_TURN_DIGITS:  # found a turn
                    turns_found.append(predictions.turn == turn)
            bar.update(len(samples))
    evaluation = evaluator.compute()
    evaluation.reading = reading_score(pages, evaluation.confidence, names)
    if turns_found:
        evaluation.orientation = {"pages": len(turns_found), "right": int(sum(turns_found)),
                                  "accuracy": float(np.mean(turns_found))}
    return evaluation


def mean_over_turns(evaluations: dict[int, Evaluation]) -> dict[str, float]:
    summaries = [e.summary() for e in evaluations.values()]
    return {key: float(np.mean([s[key] for s in summaries])) for key in summaries[0]}


def format_turns(evaluations: dict[int, Evaluation], mean: dict[str, float]) -> str:
    columns = [key for key in SUMMARY_COLUMNS if key in mean]
    rows = [f"{'turn':>10} " + " ".join(f"{SUMMARY_COLUMNS[key]:>8}" for key in columns)]
    for label, summary in [(f"{a}°", e.summary()) for a, e in evaluations.items()] + [("mean", mean)]:
        rows.append(f"{label:>10} " + " ".join(f"{summary[key]:8.3f}" for key in columns))
    return "\n".join(rows)


def output_folder(project: Path, name: str, exist_ok: bool) -> Path:
    """project/name, or name2, name3, ... when it exists (unless exist_ok: then it is replaced)."""
    from ultralytics.utils.files import increment_path

    return increment_path(project / name, exist_ok=exist_ok, sep="")


def run(weights: str | Path | None = None, data: str | Path = runtime.PROJECT_ROOT / "data.yaml", split: str = "test",
        imgsz: int | None = None, conf: float = 0.001, iou: float = 0.7, turns: Sequence[int] = (0,),
        name: str = "exp", batch: int = 16, max_det: int = 300, device: str | None = None,
        engine: str = "ultralytics", project: str | Path = RESULTS, exist_ok: bool = False,
        predictor: Predictor | None = None, verbose: bool = True, max_pixels: int | None = MAX_PIXELS,
        tile: bool | None = None, precision: str = "auto") -> dict:
    """Evaluate a model on a split of a YOLO dataset; write results/<name>/ and return what metrics.json holds.

    Args:
        weights: the model (.pt, or any format ultralytics loads); not needed when `predictor` is given.
        data: the dataset's data.yaml (ultralytics or Roboflow layout).
        split: which split to evaluate: train, val or test.
        imgsz: inference size in pixels; None: the size the model was trained at.
        conf: the lowest confidence kept: low (0.001), so that the PR curve reaches as far as it can.
        iou: the NMS IoU threshold.
        turns: quarter turns (degrees counter-clockwise, from 0, 90, 180, 270) to evaluate the split at.
        name: results go to project/name (a number is appended when it exists, unless exist_ok).
        batch: images per inference batch.
        max_det: the most detections per image.
        device: "cpu", "0", ...; None: ultralytics' choice (detect's Detector: the CPU).
        engine: what runs the model: "ultralytics" (YOLO.predict), "detect" (detect.py's Detector, exactly what
            detect.py reports), "onnx" (that Detector on the .onnx export beside `weights`) or "onnx-int8" (on the
            int8 model beside it, NAME.int8.onnx: `detect.py --export int8`).
        project: the folder that holds results/<name> (default: results/ in the project).
        exist_ok: replace project/name instead of making name2, name3, ...
        predictor: where predictions come from instead of `weights` and `engine` (any Predictor).
        verbose: print the tables and a progress bar.
        max_pixels: images with more pixels are refused before they are decoded (None: any size).
        tile: detect.py's Detector only: None tiles as detect.py does (images too large for imgsz, and images of
            small digits), True always, False never.
        precision: detect.py's Detector on a .pt only: "auto" (bf16 on a CPU with native bf16, else fp32), "fp32"
            or "bf16".
    Returns:
        the metrics.json content: settings, "rotations" (turn -> metrics), "mean" (over turns), "save_dir".
    """
    check_turns(turns)
    dataset = load_dataset(data)
    if split not in dataset.splits:
        raise DatasetError(f"{dataset.yaml_path}: no split '{split}' (it has {sorted(dataset.splits)})")
    summary = require_valid(dataset, [split])[split]  # every bad image and label listed before the model runs
    if not summary.boxes:
        raise DatasetError(f"{dataset.yaml_path}: split '{split}' has {summary.images} images but not one labeled "
                           f"box (no label files, or empty ones), so there is nothing to score; evaluate a labeled "
                           f"split")
    images = dataset.images(split)
    engine = engine if predictor is None else None  # recorded: what made the predictions
    if predictor is None:
        if weights is None:
            raise ValueError("give weights (or a predictor)")
        predictor = load_predictor(engine, weights, imgsz, conf, iou, max_det, device, batch, tile, precision)
    if getattr(predictor, "names", dataset.names) != dataset.names:
        raise DatasetError(f"{dataset.yaml_path}: class names {dataset.names} differ from the model's "
                           f"{predictor.names}; evaluate on data labeled with the model's classes")

    evaluations = {turn: evaluate(predictor, images, dataset.names, turn, batch, max_det, verbose, max_pixels)
                   for turn in turns}
    mean = mean_over_turns(evaluations)
    report = {"weights": str(weights) if weights is not None else None, "data": str(dataset.yaml_path),
              "split": split, "engine": engine,
              "imgsz": getattr(predictor, "imgsz", imgsz), "tile": getattr(predictor, "tile", None),
              "precision": getattr(predictor, "precision", None), "conf": conf,
              "iou": iou, "max_det": max_det,
              "rotations": {str(t): e.to_json() for t, e in evaluations.items()}, "mean": json_safe(mean)}
    folder = output_folder(runtime.project_path(project), name, exist_ok)
    with build_into(folder, overwrite=exist_ok) as building:
        for turn, evaluation in evaluations.items():
            write_plots(evaluation, building, f"_rot{turn:03d}" if turn else "")
        (building / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    report["save_dir"] = str(folder)
    if verbose:
        print_report(evaluations, mean, folder)
    return report


def print_report(evaluations: dict[int, Evaluation], mean: dict[str, float], folder: Path) -> None:
    for turn, e in evaluations.items():
        print(f"\nturned {turn}°: {e.images} images, {int(e.counts.sum())} boxes; "
              f"P, R, F1 at confidence >= {e.confidence:.3f}")
        print(format_table(e))
        if e.reading:
            r = e.reading
            print(f"reading: {r['read_exactly']} of {r['numbers']} numbers read exactly ({r['accuracy']:.1%})")
        if e.orientation:
            o = e.orientation
            print(f"orientation: right on {o['right']} of {o['pages']} pages with {MIN_TURN_DIGITS}+ digits "
                  f"({o['accuracy']:.1%})")
        if (six_nine := e.six_nine_confusion()) is not None:
            print(f"6 and 9 taken for each other: {six_nine:.2%} of the true 6s and 9s found")
    if len(evaluations) > 1:
        print("\n" + format_turns(evaluations, mean))
    print(f"\nresults in {folder}")


def parse_turns(text: str) -> tuple[int, ...]:
    try:
        turns = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected turns like 0,90,180,270, got {text!r}") from None
    if not turns or any(t not in TURNS for t in turns):
        raise argparse.ArgumentTypeError(f"turns must be among {','.join(map(str, TURNS))}, got {text!r}")
    return turns


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python evaluate.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True, help="model weights (.pt)")
    parser.add_argument("--data", type=Path, default=runtime.PROJECT_ROOT / "data.yaml",
                        help="dataset data.yaml (default: data.yaml)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"), help="split to evaluate")
    parser.add_argument("--imgsz", type=cli.integer(32, multiple=32), default=None,
                        help="inference size in pixels, a multiple of 32 (default: the size the model was trained at)")
    parser.add_argument("--conf", type=cli.number(0, 1), default=0.001, help="lowest confidence kept (default: 0.001)")
    parser.add_argument("--iou", type=cli.number(0, 1), default=0.7, help="NMS IoU threshold (default: 0.7)")
    parser.add_argument("--turns", "--rotations", type=parse_turns, default=(0,),
                        help="quarter turns to evaluate at, e.g. 0,90,180,270 (default: 0)")
    parser.add_argument("--name", default="exp", help="results/<name>/ (default: exp)")
    parser.add_argument("--batch", type=cli.integer(1), default=16, help="images per inference batch (default: 16)")
    parser.add_argument("--max-det", type=cli.integer(1), default=300, help="most detections per image (default: 300)")
    parser.add_argument("--device", default=None, help="cpu, 0, ... (default: ultralytics' choice)")
    parser.add_argument("--engine", default="ultralytics", choices=ENGINES,
                        help="ultralytics: YOLO.predict (default); detect: detect.py's own pipeline, exactly what "
                             "detect.py reports; onnx: detect.py's pipeline on the .onnx export beside --weights; "
                             "onnx-int8: on the int8 model beside it (NAME.int8.onnx)")
    parser.add_argument("--project", type=Path, default=RESULTS, help="folder for results (default: results/)")
    parser.add_argument("--exist-ok", action="store_true", help="replace results/<name>/ if it exists")
    cli.add_tile_options(parser)  # detect.py's pipeline only (ultralytics' predict never tiles)
    cli.add_precision_option(parser)  # detect.py's pipeline only
    parser.add_argument("--max-pixels", type=cli.integer(1), default=MAX_PIXELS,
                        help=f"refuse images with more pixels, before decoding them (default: {MAX_PIXELS})")
    return parser.parse_args(argv)


@cli.one_line_errors
def main(argv: list[str] | None = None) -> int:
    opt = parse_opt(argv)
    run(**vars(opt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
