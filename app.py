"""A local web app: find and read the digits in a photo, a camera picture or a drawing, and collect corrected pages.

Upload a photo or scan (or take one with the camera where the browser offers one, or draw digits on the canvas):
the app shows the annotated image, the numbers read in reading order and a table of every digit with its
confidence and its three best classes. The confidence slider runs the model again at the new threshold.

Corrections make training data: change a digit in the table, or untick 'keep' for a box that is not a digit, and
press 'Save page'. The page and its labels go into a YOLO dataset (default data/collected, with its data.yaml)
that train.py fine-tunes on directly:
    python train.py --data data/collected/data.yaml --weights weights/best.pt

Detection, reading and drawing are detect.py's own (digitdet.detector, digitdet.results, digitdet.draw). The app
serves on 127.0.0.1 only and reaches no network (importing digitdet sets that up: digitdet.runtime).

Usage:
    python app.py                                        # weights/best.pt, http://127.0.0.1:7860
    python app.py --weights runs/digits/weights/best.pt --port 8080 --conf 0.4
    python app.py --collect-dir data/my-pages            # save corrected pages into another dataset
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from digitdet import cli, collect, runtime  # digitdet first: no telemetry, update checks or downloads in gradio
import gradio as gr

from digitdet.detector import DEFAULT_WEIGHTS, Detections, Detector, ModelError
from digitdet.draw import annotate_result
from digitdet.images import to_bgr
from digitdet.results import ImageResult, read_result, summary_line

DEFAULT_COLLECT_DIR = runtime.PROJECT_ROOT / "data" / "collected"
DEFAULT_PORT = 7860
TABLE = [("#", "number"), ("digit", "str"), ("keep", "bool"), ("confidence", "number"), ("model read", "str"),
         ("1st", "str"), ("2nd", "str"), ("3rd", "str")]  # the corrections table's columns and their types
EDITABLE = (1, 2)  # digit and keep; the rest is what the model said


@dataclass
class Page:
    """An analysed image, kept per browser session: its pixels, what was found, and the digits in reading order
    (row k of the table is box order[k])."""

    image: np.ndarray
    result: ImageResult
    names: list[str]
    conf: float

    @property
    def order(self) -> list[int]:
        return [i for number in self.result.numbers for i in number.members]


class DigitApp:
    """The app's behaviour, independent of the web page: every handler takes and returns plain values."""

    def __init__(self, detector: Detector, collect_dir: str | Path = DEFAULT_COLLECT_DIR,
                 max_bytes: int = collect.MAX_UPLOAD_BYTES, max_pixels: int = collect.MAX_PIXELS):
        self.detector = detector
        self.collect_dir = Path(collect_dir).resolve()
        self.max_bytes, self.max_pixels = max_bytes, max_pixels

    def analyze(self, image: np.ndarray, conf: float, source: str) -> Page:
        """Detect and read the digits of a BGR image, as detect.py does for a file."""
        detections = self.detector.detect([image], conf=conf)[0]
        names = self.detector.names
        result = read_result(Path(source), detections, names, image.shape[1], image.shape[0])
        return Page(image, result, names, conf)

    # ---- event handlers: each returns (page, annotated image, numbers, table, message) ----

    def from_upload(self, path: str | None, conf: float):
        if not path:
            return unchanged("")
        try:
            image = collect.read_upload(path, self.max_bytes, self.max_pixels)
        except collect.UploadError as error:
            return unchanged(f"**Upload refused:** {error}. Nothing was changed.")
        return show(self.analyze(image, conf, "upload"))

    def from_camera(self, rgb: np.ndarray | None, conf: float):
        if rgb is None:
            return unchanged("")
        try:
            collect.check_pixels(rgb.shape[1], rgb.shape[0], self.max_pixels)
        except collect.UploadError as error:
            return unchanged(f"**Picture refused:** {error}. Nothing was changed.")
        return show(self.analyze(np.ascontiguousarray(rgb[..., :3][..., ::-1]), conf, "camera"))

    def from_drawing(self, editor: dict | None, conf: float):
        """The canvas's composite (RGBA, transparent where nothing was drawn), as dark ink on white paper."""
        drawing = (editor or {}).get("composite")
        if drawing is None or drawing.ndim != 3 or (drawing.shape[2] == 4 and not drawing[..., 3].any()):
            return unchanged("Draw some digits on the canvas first.")
        order = cv2.COLOR_RGBA2BGRA if drawing.shape[2] == 4 else cv2.COLOR_RGB2BGR
        return show(self.analyze(to_bgr(cv2.cvtColor(drawing, order)), conf, "drawing"))

    def rerun(self, page: Page | None, conf: float):
        """The same image at a new confidence threshold."""
        if page is None:
            return unchanged("")
        return show(self.analyze(page.image, conf, page.result.path.name))

    def preview(self, page: Page | None, rows):
        """The annotated image and numbers with the table's corrections applied (no model call)."""
        if page is None:
            return gr.skip(), gr.skip(), ""
        try:
            corrected = corrected_detections(page, rows)
        except collect.CorrectionError as error:
            return gr.skip(), gr.skip(), f"**Cannot apply the corrections:** {error}"
        result = read_result(Path("corrected"), corrected, collect.DIGITS, page.result.width, page.result.height)
        return annotated_rgb(page.image, result, collect.DIGITS), numbers_markdown(result), ""

    def save(self, page: Page | None, rows) -> str:
        """Save the page with the table's corrections into the dataset; returns what happened."""
        if page is None:
            return "Nothing to save yet: upload a photo or draw digits first."
        try:
            corrected = corrected_detections(page, rows)
        except collect.CorrectionError as error:
            return f"**Not saved:** {error}"
        saved = collect.save_page(self.collect_dir, page.image, corrected.boxes, corrected.classes.tolist())
        data_yaml = self.collect_dir / "data.yaml"
        return (f"Saved `{saved.image.name}` with {saved.boxes} digit label(s) to the {saved.split} split of "
                f"`{self.collect_dir}`. Fine-tune on the collected pages with "
                f"`python train.py --data {data_yaml} --weights {self.detector.weights}`")


def corrected_detections(page: Page, rows) -> Detections:
    """The page's detections as the table says: dropped boxes removed, classes as digits '0'..'9' (class i is
    digit i, the collected dataset's names). A corrected digit's confidence is 1: a person said so."""
    by_row = collect.corrected_classes(table_rows_of(rows), len(page.order))
    d = page.result.detections
    keep = np.array([page.order[row - 1] for row in sorted(by_row)], dtype=np.int64)
    digits = np.array([by_row[row] for row in sorted(by_row)], dtype=np.int64)
    model_digits = np.array([page.names[c] for c in d.classes[keep]])
    unchanged_class = model_digits == digits.astype(str)
    confidences = np.where(unchanged_class, d.confidences[keep], 1.0).astype(np.float32)
    return replace(d, boxes=d.boxes[keep].reshape(-1, 4), confidences=confidences, classes=digits,
                   top_classes=d.top_classes[keep], top_scores=d.top_scores[keep])


def table_rows_of(rows) -> list[list]:
    """The table's rows as lists, whether Gradio sends a list of lists or a pandas DataFrame."""
    if hasattr(rows, "values") and hasattr(rows, "columns"):
        return rows.values.tolist()
    return [list(row) for row in rows or []]


def unchanged(message: str):
    """Leave the page, image, numbers and table as they are; show only the message."""
    return gr.skip(), gr.skip(), gr.skip(), gr.skip(), message


def show(page: Page):
    result = page.result
    message = "" if len(result.detections) else (f"No digits found at confidence {page.conf:g}; lower the "
                                                  f"threshold with the slider, or try a sharper, closer picture.")
    return page, annotated_rgb(page.image, result, page.names), numbers_markdown(result), table(page), message


def annotated_rgb(image: np.ndarray, result: ImageResult, names: list[str]) -> np.ndarray:
    return annotate_result(image, result, names)[..., ::-1]


def numbers_markdown(result: ImageResult) -> str:
    """detect.py's summary line, then the numbers line by line as they stand on the page."""
    lines: dict[int, list[str]] = {}
    for number in result.numbers:
        lines.setdefault(number.line, []).append(number.digits)
    body = "\n".join(" ".join(digits) for _, digits in sorted(lines.items()))
    return f"{summary_line(result)}\n\n```\n{body or '(no numbers)'}\n```"


def table(page: Page) -> list[list]:
    """One row per digit in reading order: #, digit, keep, confidence, the number the model read it in (corrections
    show in the numbers above), and the three best classes."""
    d, names = page.result.detections, page.names
    number_of = {i: number.digits for number in page.result.numbers for i in number.members}
    rows = []
    for row, i in enumerate(page.order, start=1):
        best = [f"{names[c]} ({p:.3f})" for c, p in zip(d.top_classes[i], d.top_scores[i])]
        rows.append([row, names[d.classes[i]], True, round(float(d.confidences[i]), 3), number_of[i],
                     *best, *[""] * (3 - len(best))])
    return rows


def build(digit_app: DigitApp, conf: float = 0.25) -> gr.Blocks:
    """The web page: inputs on the left (upload, camera, drawing, threshold), results on the right, the
    corrections table and the save button below."""
    with gr.Blocks(title="digitdet", delete_cache=(3600, 86400)) as page:  # uploads older than a day are deleted
        state = gr.State(None)
        gr.Markdown("# digitdet\nFind every handwritten digit and read the numbers. Correct the table and save "
                    "the page to build a dataset to fine-tune on.")
        with gr.Row():
            with gr.Column(scale=2):
                with gr.Tab("Upload"):
                    limit = collect.size_text(digit_app.max_bytes)
                    upload = gr.File(label=f"Photo or scan (JPEG, PNG, BMP, TIFF, WebP; up to {limit})",
                                     file_types=["image"], type="filepath", elem_id="upload")
                with gr.Tab("Camera"):
                    camera = gr.Image(sources=["webcam"], type="numpy", label="Camera", elem_id="camera")
                with gr.Tab("Draw"):
                    canvas = gr.Sketchpad(label="Draw digits (pick the brush at the left)", type="numpy",
                                          canvas_size=(640, 480), layers=False, transforms=(), elem_id="canvas",
                                          brush=gr.Brush(colors=["#000000"], default_size=8, color_mode="fixed"))
                    read_drawing = gr.Button("Find digits", variant="primary")
                threshold = gr.Slider(0.001, 0.95, value=conf, step=0.001, label="Confidence threshold",
                                      info="digits scoring below it are not shown", elem_id="conf")
            with gr.Column(scale=3):
                annotated = gr.Image(label="Digits found", type="numpy", format="png", interactive=False,
                                     height=520, elem_id="annotated")
                numbers = gr.Markdown(elem_id="numbers")
                message = gr.Markdown(elem_id="message")
        corrections = gr.Dataframe(headers=[name for name, _ in TABLE], datatype=[kind for _, kind in TABLE],
                                   static_columns=[i for i in range(len(TABLE)) if i not in EDITABLE],
                                   type="array", interactive=True, elem_id="digits",
                                   label="Digits in reading order (edit 'digit', untick 'keep' to drop a wrong box)")
        save = gr.Button("Save page with these labels", variant="primary", elem_id="save")
        saved = gr.Markdown(elem_id="saved")

        shown = [state, annotated, numbers, corrections, message]
        upload.upload(digit_app.from_upload, [upload, threshold], shown)
        camera.change(digit_app.from_camera, [camera, threshold], shown)
        read_drawing.click(digit_app.from_drawing, [canvas, threshold], shown)
        # "always_last": while one run is busy, the latest slider value or table edit runs next (none is dropped)
        threshold.change(digit_app.rerun, [state, threshold], shown, trigger_mode="always_last")
        corrections.input(digit_app.preview, [state, corrections], [annotated, numbers, message],
                          trigger_mode="always_last")
        save.click(digit_app.save, [state, corrections], saved)
    return page


def launch(digit_app: DigitApp, port: int = DEFAULT_PORT, conf: float = 0.25) -> None:
    """Serve the app on 127.0.0.1 only, until interrupted. Gradio's server refuses uploads over the size limit
    before they reach the app; no share link, no server-side rendering (a Node server), no monitoring."""
    page = build(digit_app, conf)
    page.launch(server_name="127.0.0.1", server_port=port, share=False, ssr_mode=False, quiet=True,
                max_file_size=digit_app.max_bytes, enable_monitoring=False, mcp_server=False, pwa=False,
                prevent_thread_lock=True)
    print(f"digitdet app: open http://127.0.0.1:{port} in a browser (Ctrl+C stops it)", flush=True)
    page.block_thread()


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python app.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS,
                        help=f"model .pt (or .onnx, .int8.onnx) "
                             f"(default: {DEFAULT_WEIGHTS.relative_to(runtime.PROJECT_ROOT)})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port on 127.0.0.1 (default: %(default)s)")
    parser.add_argument("--collect-dir", type=Path, default=DEFAULT_COLLECT_DIR,
                        help="YOLO dataset folder that saved pages go into (default: data/collected)")
    parser.add_argument("--conf", type=float, default=0.25,
                        help="starting confidence threshold; the page has a slider (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="cpu, or a CUDA device such as 0 (default: cpu)")
    parser.add_argument("--max-pixels", type=cli.integer(1), default=collect.MAX_PIXELS,
                        help=f"refuse images with more pixels, before decoding them (default: {collect.MAX_PIXELS})")
    opt = parser.parse_args(argv)
    if not 0 < opt.conf < 1:
        parser.error(f"--conf must be between 0 and 1, got {opt.conf}")
    return opt


def main(argv: list[str] | None = None) -> int:
    opt = parse_opt(argv)
    try:
        detector = Detector(opt.weights, conf=opt.conf, device=opt.device)
    except ModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"digitdet app: model {opt.weights}; corrected pages go to {runtime.project_path(opt.collect_dir)}")
    try:
        launch(DigitApp(detector, runtime.project_path(opt.collect_dir), max_pixels=opt.max_pixels), opt.port, opt.conf)
    except OSError:  # Gradio found the port taken
        print(f"error: cannot serve on 127.0.0.1:{opt.port}: the port is in use; choose another with --port",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
