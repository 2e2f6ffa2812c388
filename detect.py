"""Find every handwritten digit in images and read them as numbers.

For each image: an annotated copy (box, digit and confidence), one terminal line such as
    page.jpg: 12 digits, 3 numbers: 4821 07 15 (41 ms)
and, with --json / --csv, every digit's box in the original image's pixels, its digit, confidence and top-3 class
scores, and the numbers read in reading order (lines top to bottom, numbers left to right).

SOURCE is an image, a folder (its images, not subfolders) or a quoted glob ("scans/**/*.png"). Photos are read
as a viewer shows them: EXIF orientation, grayscale, transparency (onto white) and 16-bit are handled. Images so
large that 40-pixel digits would vanish at the model's input size, and images whose digits come out small (a page
of small handwriting), are also run as overlapping tiles (--tile forces them, --no-tile never). An unreadable
file is reported and skipped; the exit code is 1 if any image failed.

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
import glob
import sys
from pathlib import Path

import cv2
import numpy as np

from digitdet import cli, runtime
from digitdet.atomic import refuse_overwriting
from digitdet.detector import DEFAULT_WEIGHTS, Detector, checkpoint_path, export_command, export_onnx, int8_path
from digitdet.draw import annotate_result
from digitdet.images import MAX_PIXELS, ImageReadError, read_image
from digitdet.labels import IMAGE_SUFFIXES
from digitdet.quantize import DEFAULT_DATA, export_int8
from digitdet.results import ImageResult, Report, read_result, summary_line, write_csv, write_json

DEFAULT_SAVE_DIR = runtime.PROJECT_ROOT / "results" / "detect"


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
        max_pixels: int | None = MAX_PIXELS, int8: bool = False, precision: str = "auto") -> Report:
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
        tile: None: tile images too large for the model's input size and images of small digits; True: always;
            False: never.
        tile_size: tile side in pixels when tiling (default: twice imgsz, or 60% of a smaller image's side).
        onnx: run the .onnx file beside `weights` with onnxruntime.
        int8: run the int8 model beside `weights` (NAME.int8.onnx, `--export int8`) with onnxruntime.
        threads: CPU threads for inference (default: the libraries' choice).
        batch: images (or tiles) per model call.
        verbose: print one line per image and a summary.
        upright: save annotated pages turned back upright (orientation-aware models find a page's turn).
        max_pixels: images with more pixels are refused before they are decoded (None: any size).
        precision: a .pt model's arithmetic: "auto" (bf16 on a CPU with native bf16, else fp32), "fp32", "bf16".
        detector: an already loaded Detector to reuse across calls; weights, imgsz, conf, iou, device, onnx,
            threads, batch and precision are then its own.
    """
    paths, failed = expand_sources(source if isinstance(source, (list, tuple)) else [source])
    report = Report(failed=failed, save_dir=resolve_save_dir(save_dir))
    names = output_names(paths)
    outputs = [report.save_dir / names[p] for p in paths] if save_images else []
    outputs += [report.save_dir / f"detections.{kind}" for kind, wanted in (("json", save_json), ("csv", save_csv))
                if wanted]
    refuse_overwriting(outputs, paths, "choose another --save-dir")  # before the model loads: fail fast
    detector = detector or load_detector(weights, imgsz, conf, iou, device, threads, batch, onnx, int8,
                                           precision)
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


def load_detector(weights: str | Path, imgsz: int | None, conf: float, iou: float, device: str,
                  threads: int | None, batch: int, onnx: bool, int8: bool = False, precision: str = "auto") -> Detector:
    """The model, loaded once for the whole run; with `onnx` (`int8`), the .onnx (.int8.onnx) export beside
    `weights`."""
    weights = int8_path(weights) if int8 else Path(weights).with_suffix(".onnx") if onnx else Path(weights)
    detector = Detector(weights, imgsz, conf, iou, device, threads, batch, precision=precision)
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
    if cv2.imwrite(str(path), annotate_result(image, result, names, upright)):
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
    cli.add_tile_options(parser)
    cli.add_precision_option(parser)
    parser.add_argument("--tile-size", type=cli.integer(32), default=None,
                        help="tile side in pixels when tiling (default: 2 x imgsz, or 60%% of a smaller image's side)")
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
