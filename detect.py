"""Find every handwritten digit in images and read them as numbers.

For each image: an annotated copy (box, digit and confidence), one terminal line such as
    page.jpg: 12 digits, 3 numbers: 4821 07 15 (41 ms)
and, with --json / --csv, every digit's box in the original image's pixels, its digit, confidence and top-3 class
scores, and the numbers read in reading order (lines top to bottom, numbers left to right).

SOURCE is an image, a folder (its images, not subfolders) or a quoted glob ("scans/**/*.png"). Photos are read
as a viewer shows them: EXIF orientation, grayscale, transparency (onto white) and 16-bit are handled. Images so
large that 40-pixel digits would vanish at the model's input size are also run as overlapping tiles (--tile
forces this, e.g. for small digits in a small image). An unreadable file is reported and skipped; the exit code
is 1 if any image failed.

An orientation-aware model (train.py --orientation) also finds each page's quarter turn from all its digits: the
numbers are read as on the upright page, the line says "page turned 90°", the JSON gives "turn" (degrees
counter-clockwise) and "turn_confidence", a 6 on an upside-down page is read as a 6, and --upright saves the
annotated page turned back upright.

Usage:
    python detect.py page.jpg                          # weights/best.pt, annotated copy in results/detect/
    python detect.py photos/ "scans/*.png" --json --csv --save-dir out/
    python detect.py photo.jpg --conf 0.4 --tile       # force tiled inference
    python detect.py --export onnx                     # write weights/best.onnx beside weights/best.pt
    python detect.py photos/ --onnx                    # run weights/best.onnx with onnxruntime (faster on a CPU)
    python detect.py --export int8                     # weights/best.int8.onnx, calibrated on data.yaml's train pages
    python detect.py photos/ --int8                    # run weights/best.int8.onnx (fastest on a CPU)
    python detect.py sideways.jpg --upright            # annotated copy turned upright (orientation-aware model)
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from digitdet import runtime

runtime.setup()  # before ultralytics and onnxruntime are imported (by digitdet.detector, lazily)

from augment.rotate import rotate_image  # noqa: E402
from digitdet import cli  # noqa: E402
from digitdet.atomic import refuse_overwriting, replaced  # noqa: E402
from digitdet.detector import (DEFAULT_WEIGHTS, Detections, Detector, checkpoint_path, export_command,  # noqa: E402
                               export_onnx, int8_path)
from digitdet.images import MAX_PIXELS, ImageReadError, read_image  # noqa: E402
from digitdet.labels import IMAGE_SUFFIXES  # noqa: E402
from digitdet.orientation import turn_boxes  # noqa: E402
from digitdet.quantize import DEFAULT_DATA, export_int8  # noqa: E402
from digitdet.reading import Number, read_numbers  # noqa: E402

DEFAULT_SAVE_DIR = runtime.PROJECT_ROOT / "results" / "detect"
CSV_FIELDS = ("image", "digit_index", "x1", "y1", "x2", "y2", "digit", "confidence", "top1", "p1", "top2", "p2",
              "top3", "p3", "number_index", "number", "position_in_number")


@dataclass
class ImageResult:
    """What was found in one image."""

    path: Path
    width: int
    height: int
    detections: Detections
    numbers: list[Number]
    annotated: Path | None = None


@dataclass
class Report:
    """A run's results, the images that failed (path, reason) and where outputs went."""

    results: list[ImageResult] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    save_dir: Path | None = None


def expand_sources(sources: list[str | Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Image paths from files, folders and globs, in the order given (each folder and glob sorted), and a
    (source, reason) for each that names nothing. A file named explicitly is tried whatever its suffix."""
    paths, seen, missing = [], set(), []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            found = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif source.exists():
            found = [source]
        else:
            found = sorted(Path(p) for p in glob.glob(str(source), recursive=True)
                           if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            missing.append((source, "no such file" if not any(c in str(source) for c in "*?[")
                            else "glob matches no image"))
        paths += [p for p in found if not (p.resolve() in seen or seen.add(p.resolve()))]
    return paths, missing


def output_names(paths: list[Path]) -> dict[Path, str]:
    """A distinct file name in the save folder for each image: its own name, numbered when two share one."""
    names, taken = {}, set()
    for path in paths:
        name, n = path.name, 1
        while name.lower() in taken:
            name, n = f"{path.stem}_{n}{path.suffix}", n + 1
        taken.add(name.lower())
        names[path] = name
    return names


def annotate(image: np.ndarray, detections: Detections, names: list[str], numbers: list[Number] = ()) -> np.ndarray:
    """A copy with each digit's box and a 'digit .confidence' label, legible on any background: lines have a halo
    of the opposite brightness and label text is black or white against its label's colour. Labels are sized to
    the digits, and alternate above and below along each number, so that neighbours' labels do not collide."""
    from ultralytics.utils.plotting import colors

    out = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 800))
    widths = detections.boxes[:, 2] - detections.boxes[:, 0]
    probe = cv2.getTextSize("0 .00", cv2.FONT_HERSHEY_SIMPLEX, 1.0, 2)[0][0]
    scale = float(np.clip(1.9 * np.median(widths) / probe, 0.35, 2.0)) if len(widths) else 0.5
    below = {i for number in numbers for position, i in enumerate(number.members) if position % 2}
    order = np.argsort(detections.confidences, kind="stable")  # the most confident drawn last, on top
    styles = {}
    for i in order:
        color = colors(int(detections.classes[i]), bgr=True)
        light = 0.299 * color[2] + 0.587 * color[1] + 0.114 * color[0] > 140
        styles[i] = color, (0, 0, 0) if light else (255, 255, 255)
        x1, y1, x2, y2 = (int(round(v)) for v in detections.boxes[i])
        cv2.rectangle(out, (x1, y1), (x2, y2), styles[i][1], thickness + 2, cv2.LINE_AA)
        cv2.rectangle(out, (x1, y1), (x2, y2), styles[i][0], thickness, cv2.LINE_AA)
    for i in order:  # labels after all boxes, so that no box line crosses a label
        text = f"{names[detections.classes[i]]} " + f"{detections.confidences[i]:.2f}".removeprefix("0")
        draw_label(out, text, detections.boxes[i], i in below, scale, *styles[i])
    return out


def draw_label(image: np.ndarray, text: str, box: np.ndarray, below: bool, scale: float, color, ink) -> None:
    """A filled label above the box (or below it, or wherever it fits inside the image)."""
    weight = max(1, round(scale * 1.6))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)
    height, width = image.shape[:2]
    x1, y1, _, y2 = (int(round(v)) for v in box)
    above_top, below_top = y1 - h - base - 3, y2 + 2
    top = below_top if (below and below_top + h + base + 2 <= height) or above_top < 0 else above_top
    left = min(max(x1, 0), max(width - w - 2, 0))
    cv2.rectangle(image, (left, top), (left + w + 2, top + h + base + 2), color, -1)
    cv2.rectangle(image, (left, top), (left + w + 2, top + h + base + 2), ink, 1)
    cv2.putText(image, text, (left + 1, top + h + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, weight, cv2.LINE_AA)


def summary_line(result: ImageResult) -> str:
    """'page.jpg: 12 digits, 3 numbers: 4821 07 15 (41 ms)'."""
    n, m = len(result.detections), len(result.numbers)
    text = f"{result.path.name}: {n} digit{'s' * (n != 1)}, {m} number{'s' * (m != 1)}"
    if result.numbers:
        text += ": " + " ".join(number.digits for number in result.numbers)
    tiles = result.detections.windows - 1
    timing = f"{result.detections.seconds * 1000:.0f} ms" + (f", {tiles} tiles" if tiles else "")
    turned = f"page turned {result.detections.turn}°, " if result.detections.turn else ""
    return f"{text} ({turned}{timing})"


def to_record(result: ImageResult, names: list[str]) -> dict:
    """One image's JSON record: digits with boxes in original pixels, top-3 scores, and numbers read."""
    d = result.detections
    digits = [{"box": [round(float(v), 2) for v in d.boxes[i]], "digit": names[d.classes[i]],
               "confidence": round(float(d.confidences[i]), 4),
               "top3": [{"digit": names[c], "p": round(float(p), 4)}
                        for c, p in zip(d.top_classes[i], d.top_scores[i])]}
              for i in range(len(d))]
    numbers = [{"digits": n.digits, "box": [round(v, 2) for v in n.box], "confidence": round(n.confidence, 4),
                "line": n.line, "members": n.members} for n in result.numbers]
    return {"image": str(result.path), "width": result.width, "height": result.height,
            "annotated": str(result.annotated) if result.annotated else None,
            "ms": round(d.seconds * 1000, 1), "tiles": d.windows - 1, **orientation_record(d), "digits": digits,
            "numbers": numbers}


def orientation_record(detections: Detections) -> dict:
    """The page's turn for an orientation-aware model (nothing for a plain one)."""
    if detections.turn_confidence is None:
        return {}
    return {"turn": detections.turn, "turn_confidence": round(detections.turn_confidence, 4)}


def csv_rows(result: ImageResult, names: list[str]):
    """One row per digit, with the number it belongs to and its position in it."""
    d = result.detections
    where = {i: (k, number, pos) for k, number in enumerate(result.numbers) for pos, i in enumerate(number.members)}
    for i in range(len(d)):
        k, number, pos = where[i]
        top = [v for c, p in zip(d.top_classes[i], d.top_scores[i]) for v in (names[c], round(float(p), 4))]
        top += [""] * (6 - len(top))
        yield [str(result.path), i, *(round(float(v), 2) for v in d.boxes[i]), names[d.classes[i]],
               round(float(d.confidences[i]), 4), *top, k, number.digits, pos]


def write_atomic(path: Path, write) -> None:
    """Write a text file through `write(f)`, never leaving it half-written."""
    with replaced(path) as temporary, open(temporary, "w", newline="") as f:
        write(f)


def write_json(path: Path, report: Report, names: list[str]) -> None:
    records = [to_record(r, names) for r in report.results]
    records += [{"image": str(p), "error": reason} for p, reason in report.failed]
    body = ",\n".join(json.dumps(record) for record in records)  # one image per line: greppable, diffable
    write_atomic(path, lambda f: f.write(f'{{"names": {json.dumps(names)},\n"images": [\n{body}\n]}}\n'))


def write_csv(path: Path, report: Report, names: list[str]) -> None:
    def write(f):
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for result in report.results:
            writer.writerows(csv_rows(result, names))

    write_atomic(path, write)


def resolve_save_dir(save_dir: str | Path | None) -> Path:
    """The given folder, or a new results/detect, results/detect2, ... so no earlier run is overwritten."""
    if save_dir is not None:
        save_dir = runtime.project_path(save_dir)
        if save_dir.exists() and not save_dir.is_dir():
            raise ValueError(f"{save_dir}: --save-dir names a file, not a folder; choose a folder")
        return save_dir
    from ultralytics.utils.files import increment_path

    return increment_path(DEFAULT_SAVE_DIR, sep="")


def run(source: list[str | Path] | str | Path, weights: str | Path = DEFAULT_WEIGHTS, imgsz: int | None = None,
        conf: float = 0.25, iou: float = 0.7, device: str = "cpu", save_dir: str | Path | None = None,
        save_images: bool = True, save_json: bool = False, save_csv: bool = False, tile: bool | None = None,
        tile_size: int | None = None, onnx: bool = False, threads: int | None = None, batch: int = 8,
        verbose: bool = True, detector: Detector | None = None, upright: bool = False,
        max_pixels: int | None = MAX_PIXELS, int8: bool = False) -> Report:
    """Detect and read the digits of every image in `source`; returns a Report.

    Args:
        source: image files, folders and globs (one or a list).
        weights: an ultralytics .pt model, or an .onnx export of one.
        imgsz: model input size (default: the size the model was trained at).
        conf: minimum confidence of a digit.
        iou: NMS IoU threshold.
        device: "cpu", or a CUDA device such as "0".
        save_dir: output folder (default: a new results/detectN).
        save_images: write annotated copies.
        save_json: write detections.json (every digit and number of every image).
        save_csv: write detections.csv (one row per digit).
        tile: None: tile images too large for the model's input size; True: always; False: never.
        tile_size: tile side in pixels when tiling (default: twice imgsz).
        onnx: run the .onnx file beside `weights` with onnxruntime.
        int8: run the int8 model beside `weights` (NAME.int8.onnx, `--export int8`) with onnxruntime.
        threads: CPU threads for inference (default: the libraries' choice).
        batch: images (or tiles) per model call.
        verbose: print one line per image and a summary.
        upright: save annotated pages turned back upright (orientation-aware models find a page's turn).
        max_pixels: images with more pixels are refused before they are decoded (None: any size).
        detector: an already loaded Detector to reuse across calls; weights, imgsz, conf, iou, device, onnx,
            threads and batch are then its own.
    """
    paths, failed = expand_sources(source if isinstance(source, (list, tuple)) else [source])
    report = Report(failed=failed, save_dir=resolve_save_dir(save_dir))
    names = output_names(paths)
    outputs = [report.save_dir / names[p] for p in paths] if save_images else []
    outputs += [report.save_dir / f"detections.{kind}" for kind, wanted in (("json", save_json), ("csv", save_csv))
                if wanted]
    refuse_overwriting(outputs, paths, "choose another --save-dir")  # before the model loads: fail fast
    detector = detector or load_detector(weights, imgsz, conf, iou, device, threads, batch, onnx, int8)
    if paths and (save_images or save_json or save_csv):  # nothing to read or to write, no folder
        report.save_dir.mkdir(parents=True, exist_ok=True)
    for source_path, reason in failed:
        echo(f"{source_path}: skipped: {reason}", verbose, error=True)
    for start in range(0, len(paths), detector.batch):
        images = read_images(paths[start:start + detector.batch], report, verbose, max_pixels)
        for (path, image), detections in zip(images.items(), detector.detect(list(images.values()), tile, tile_size)):
            result = read_result(path, detections, detector.names, image.shape[1], image.shape[0])
            if save_images:
                save_annotated(result, image, report.save_dir / names[path], detector.names, report, upright)
            report.results.append(result)
            echo(summary_line(result), verbose)
    if save_json and paths:
        write_json(report.save_dir / "detections.json", report, detector.names)
    if save_csv and paths:
        write_csv(report.save_dir / "detections.csv", report, detector.names)
    echo(f"{len(report.results)} image(s) read, {len(report.failed)} failed; results in {report.save_dir}", verbose)
    return report


def read_result(path: Path, detections: Detections, names: list[str], width: int, height: int) -> ImageResult:
    """One width x height image's detections with the numbers they read, as on the upright page."""
    numbers = read_numbers(detections.boxes, detections.classes, detections.confidences, names, detections.turn,
                           (width, height))
    return ImageResult(path, width, height, detections, numbers)


def load_detector(weights: str | Path, imgsz: int | None, conf: float, iou: float, device: str,
                  threads: int | None, batch: int, onnx: bool, int8: bool = False) -> Detector:
    """The model, loaded once for the whole run; with `onnx` (`int8`), the .onnx (.int8.onnx) export beside
    `weights`."""
    weights = int8_path(weights) if int8 else Path(weights).with_suffix(".onnx") if onnx else Path(weights)
    detector = Detector(weights, imgsz, conf, iou, device, threads, batch)
    pt = checkpoint_path(weights)
    if weights.suffix == ".onnx" and pt.exists() and pt.stat().st_mtime > weights.stat().st_mtime:
        print(f"warning: {weights} is older than {pt}; re-export with '{export_command(weights)}'", file=sys.stderr)
    return detector


def read_images(paths: list[Path], report: Report, verbose: bool,
                max_pixels: int | None = MAX_PIXELS) -> dict[Path, np.ndarray]:
    """The readable images among `paths`; each unreadable one (damaged, or over the pixel limit) is reported and
    added to report.failed."""
    images = {}
    for path in paths:
        try:
            images[path] = read_image(path, max_pixels)
        except ImageReadError as error:
            report.failed.append((path, str(error).removeprefix(f"{path}: ")))
            echo(f"{path}: skipped: {report.failed[-1][1]}", verbose, error=True)
    return images


def save_annotated(result: ImageResult, image: np.ndarray, path: Path, names: list[str], report: Report,
                   upright: bool = False) -> None:
    """Write the annotated image; `upright`: turned back upright when the model found the page turned."""
    detections, back = result.detections, (360 - result.detections.turn) % 360
    if upright and back:
        detections = replace(detections, boxes=turn_boxes(detections.boxes, back, result.width, result.height)
                             .astype(np.float32))
        image = rotate_image(image, back)
    if cv2.imwrite(str(path), annotate(image, detections, names, result.numbers)):
        result.annotated = path
    else:
        report.failed.append((result.path, f"could not write {path}"))


def echo(text: str, verbose: bool, error: bool = False) -> None:
    if verbose:
        print(text, file=sys.stderr if error else sys.stdout, flush=True)


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python detect.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="*", help="images, folders or quoted globs")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS,
                        help=f"model .pt (or .onnx, .int8.onnx) "
                             f"(default: {DEFAULT_WEIGHTS.relative_to(runtime.PROJECT_ROOT)})")
    parser.add_argument("--conf", type=cli.number(0, 1), default=0.25,
                        help="minimum confidence of a digit, 0-1 (default: 0.25)")
    parser.add_argument("--iou", type=cli.number(0, 1), default=0.7, help="NMS IoU threshold, 0-1 (default: 0.7)")
    parser.add_argument("--imgsz", type=cli.integer(32, multiple=32), default=None,
                        help="model input size in pixels, a multiple of 32 (default: the size it was trained at)")
    parser.add_argument("--device", default="cpu", help="cpu, or a CUDA device such as 0 (default: cpu)")
    parser.add_argument("--save-dir", type=Path, default=None,
                        help="output folder (default: a new results/detect, results/detect2, ...)")
    parser.add_argument("--json", dest="save_json", action="store_true", help="write detections.json")
    parser.add_argument("--csv", dest="save_csv", action="store_true", help="write detections.csv")
    parser.add_argument("--no-images", dest="save_images", action="store_false", help="write no annotated copies")
    tiling = parser.add_mutually_exclusive_group()
    tiling.add_argument("--tile", dest="tile", action="store_true", default=None,
                        help="always run overlapping tiles too (default: only for images too large for imgsz)")
    tiling.add_argument("--no-tile", dest="tile", action="store_false", help="never tile")
    parser.add_argument("--tile-size", type=cli.integer(32), default=None,
                        help="tile side in pixels when tiling (default: 2 x imgsz)")
    engine = parser.add_mutually_exclusive_group()
    engine.add_argument("--onnx", action="store_true", help="run the .onnx beside --weights with onnxruntime")
    engine.add_argument("--int8", action="store_true",
                        help="run the int8 model beside --weights (NAME.int8.onnx) with onnxruntime")
    parser.add_argument("--export", choices=["onnx", "int8"],
                        help="export --weights to ONNX, or to ONNX and its int8 quantization (beside it), and exit")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="--export int8: the dataset whose train pages calibrate it (default: data.yaml)")
    parser.add_argument("--upright", action="store_true",
                        help="save annotated pages turned back upright (orientation-aware models)")
    parser.add_argument("--threads", type=cli.integer(1), default=None, help="CPU threads for inference")
    parser.add_argument("--batch", type=cli.integer(1), default=8, help="images or tiles per model call (default: 8)")
    parser.add_argument("--max-pixels", type=cli.integer(1), default=MAX_PIXELS,
                        help=f"refuse images with more pixels, before decoding them (default: {MAX_PIXELS})")
    opt = parser.parse_args(argv)
    if not opt.source and not opt.export:
        parser.error("give at least one SOURCE (or --export onnx / int8)")
    return opt


@cli.one_line_errors
def main(argv: list[str] | None = None) -> int:
    opt = parse_opt(argv)
    if opt.export:
        model = (export_int8(opt.weights, opt.imgsz, opt.data) if opt.export == "int8"
                 else export_onnx(opt.weights, opt.imgsz))
        print(f"wrote {model}")
        return 0
    report = run(opt.source, opt.weights, opt.imgsz, opt.conf, opt.iou, opt.device, opt.save_dir,
                 opt.save_images, opt.save_json, opt.save_csv, opt.tile, opt.tile_size, opt.onnx, opt.threads,
                 opt.batch, upright=opt.upright, max_pixels=opt.max_pixels, int8=opt.int8)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
