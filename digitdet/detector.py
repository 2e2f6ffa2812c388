"""Run a YOLOv8 digit model on images: PyTorch or ONNX Runtime (fp32 or int8), batched, tiled when digits would be
too small.

Both backends only produce the model's raw output, (batch, 4 + classes, anchors): box centres and sizes in input
pixels and one sigmoid score per class. Letterboxing, class-aware NMS (torchvision's batched_nms, as ultralytics
does) and the mapping back to the original pixels happen here, once for both, which also keeps every class score:
each digit comes with its top-3 classes, not only the best one that ultralytics' NMS keeps.

Orientation-aware models (40 joint classes, digit x quarter turn; train.py --orientation) are reported as digit
models: NMS joins the classes that can be one glyph (a 6 at 0 and a 9 at 180), the boxes vote for the page's turn,
and each box gets the digit that fits it (digitdet.orientation); Detections.turn says which turn was found.

Tiling: a model finds digits down to about MIN_INPUT_DIGIT pixels tall at its input. An image shrunk to the input
size by more than SMALLEST_DIGIT / MIN_INPUT_DIGIT would lose digits SMALLEST_DIGIT pixels tall, so such images
are also run as overlapping tiles of TILE_SHRINK x imgsz pixels, beside the whole-image pass that finds the
digits too large for a tile. Any other image whose whole-image pass finds digits that are, at the median, under
SMALL_DIGITS pixels tall at the input (a page of small handwriting) is run again as 2 x 2 or more tiles of 60% of
its side, which enlarge its digits 1.7x; images of large digits (a sign, a meter) are run once. A tile's
detections that touch one of its inner edges are cut digits and dropped (the overlap shows them whole in a
neighbour); the rest are merged greedily by intersection over the smaller box. The same merge runs on images run
whole: one box per glyph (the surer; the other box's reading is dropped, the kept box keeps its own top-3 scores).

Enlarging: an image smaller than the input is enlarged at most MAX_GAIN times as a whole (the rest of the input is
padding); only tiles enlarge more, for small digits. Digits enlarged far beyond the sizes the model was trained on
are missed: on the 61 close-ups among the campaign's 500 test pages (128 to 636 pixels long, digits up to 80% of
their height), enlarged to fill the 960 input, the model of day 8 scored mAP50 0.727 upright, read 32.9% of their
numbers and found the turn of 76% of those with 3+ digits turned 90 degrees; enlarged at most 1.5 times, 0.860,
46.8% and 93% (at most 1 or 2 times: 0.855 or 0.810 upright).
"""

from __future__ import annotations

import ast
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torchvision

from digitdet import orientation
from digitdet.boxes import as_boxes, overlap_of_smaller
from digitdet.labels import DIGITS
from digitdet.precision import resolve_precision
from digitdet.runtime import PROJECT_ROOT

DEFAULT_WEIGHTS = PROJECT_ROOT / "weights" / "best.pt"
INT8_SUFFIX = ".int8.onnx"  # the int8 model beside a .pt: best.pt -> best.int8.onnx (digitdet.quantize)
PAD_VALUE = 114  # ultralytics' letterbox grey, which the model was trained with
MAX_NMS = 30000  # boxes into NMS at most, as ultralytics
TOP_K = 3

SMALLEST_DIGIT = 40  # digits this tall (original pixels) must be found in any image, however large
MIN_INPUT_DIGIT = 16  # below this height at the model's input (twice the finest stride, 8) digits are missed
TILE_SHRINK = 2  # tiles of 2 x imgsz pixels: a SMALLEST_DIGIT digit is 20 pixels at the input
SMALL_DIGITS = 3 * MIN_INPUT_DIGIT  # whole-pass median digit height (input pixels) under which an image is tiled
SMALL_DIGITS_CONF = 0.25  # the detections that decide it: those a user would see, whatever conf a caller asks
ENLARGING_TILE = 0.6  # of the image's longer side: tiles for an image too small for TILE_SHRINK x imgsz tiles
TILE_OVERLAP = 0.25  # of the tile side: digits up to this size are whole in some tile
EDGE_MARGIN = 0.02  # of the tile side: a box this close to an inner tile edge is a cut digit
MERGE_IOS = 0.5  # intersection over the smaller box above which two detections from different passes are one
MAX_GAIN = 1.5  # most a whole image is enlarged: as much as the 640-pixel training pages at imgsz 960


class ModelError(ValueError):
    """A model file that cannot be used; the message names the file and says what to do."""


@dataclass
class Detections:
    """One image's digits, in its original pixels, most confident first."""

    boxes: np.ndarray  # (N, 4) float32 x1, y1, x2, y2
    confidences: np.ndarray  # (N,) float32: the best class's score
    classes: np.ndarray  # (N,) int64
    top_classes: np.ndarray  # (N, 3) int64, best first
    top_scores: np.ndarray  # (N, 3) float32: per-class sigmoid scores (independent; they need not sum to 1)
    windows: int = 1  # model runs for this image (1 whole image + the tiles)
    seconds: float = 0.0  # this image's share of preprocessing, inference and postprocessing
    turn: int = 0  # the page's quarter turn, counter-clockwise (orientation-aware models; 0 for plain ones)
    turn_confidence: float | None = None  # the share of the boxes' votes that the turn won; None: a plain model

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def top1(cls, boxes, classes, confidences, turn: int = 0, turn_confidence: float | None = None) -> Detections:
        """Detections known by their best class only (another predictor's output, a test's stand-in), in float64
        as given: boxes (N, 4) x1, y1, x2, y2 in pixels."""
        boxes = as_boxes(boxes)
        classes = np.asarray(classes).reshape(-1).astype(np.int64)
        confidences = np.asarray(confidences, np.float64).reshape(-1)
        return cls(boxes, confidences, classes, classes[:, None], confidences[:, None], turn=turn,
                   turn_confidence=turn_confidence)


@dataclass(frozen=True)
class Window:
    """A region of an image that is run through the model, in the image's pixels."""

    x0: int
    y0: int
    x1: int
    y1: int
    whole: bool = False  # the whole image: its edges are the image's, so nothing is cut there

    def inner_edges(self, width: int, height: int) -> tuple[bool, bool, bool, bool]:
        """Which of the left, top, right, bottom edges lie inside the image (where a digit can be cut)."""
        return self.x0 > 0, self.y0 > 0, self.x1 < width, self.y1 < height


@dataclass(frozen=True)
class Letterbox:
    """How a window was resized and padded into the model's square input, to map boxes back."""

    gain_x: float
    gain_y: float
    pad_x: int
    pad_y: int


def input_gain(width: int, height: int, size: int, max_gain: float = math.inf) -> float:
    """Input pixels per image pixel when an image is letterboxed into size x size, enlarged at most `max_gain`."""
    return min(size / max(width, height), max_gain)


def input_size(width: int, height: int, size: int, max_gain: float = math.inf) -> tuple[int, int]:
    """The image's width and height in the input when letterboxed into size x size, enlarged at most `max_gain`."""
    gain = input_gain(width, height, size, max_gain)
    return max(round(width * gain), 1), max(round(height * gain), 1)


def letterbox(image: np.ndarray, size: int, max_gain: float = math.inf) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio, enlarging at most `max_gain` times, and pad to size x size, centred, as
    ultralytics' LetterBox.

    Shrinking uses INTER_AREA, which keeps thin pen strokes that INTER_LINEAR would skip over.
    """
    height, width = image.shape[:2]
    new_w, new_h = input_size(width, height, size, max_gain)
    if (new_w, new_h) != (width, height):
        shrunk = new_w * new_h < width * height
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if shrunk else cv2.INTER_LINEAR)
    dw, dh = (size - new_w) / 2, (size - new_h) / 2
    left, top = round(dw - 0.1), round(dh - 0.1)
    image = cv2.copyMakeBorder(image, top, size - new_h - top, left, size - new_w - left, cv2.BORDER_CONSTANT,
                               value=(PAD_VALUE,) * 3)
    return image, Letterbox(new_w / width, new_h / height, left, top)


def to_input(images: list[np.ndarray]) -> np.ndarray:
    """Letterboxed BGR uint8 images as the model's input: RGB, 0..1, float32, NCHW."""
    batch = np.stack(images)[..., ::-1].transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32) / 255.0


def nms(raw: torch.Tensor, conf: float, iou: float, max_det: int,
        groups: torch.Tensor | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per image of a raw (B, 4 + nc, anchors) output: kept boxes (n, 4) xyxy in input pixels and their class
    scores (n, nc), highest first. Class-aware NMS on the best class, as ultralytics' non_max_suppression;
    `groups` (nc,) puts classes together (joint classes that can be one glyph, digitdet.orientation)."""
    kept = []
    for prediction in raw.transpose(1, 2):
        scores = prediction[:, 4:]
        best, classes = scores.max(1)
        candidates = best > conf
        boxes, scores, best, classes = prediction[candidates, :4], scores[candidates], best[candidates], \
            classes[candidates]
        if len(best) > MAX_NMS:
            top = best.argsort(descending=True)[:MAX_NMS]
            boxes, scores, best, classes = boxes[top], scores[top], best[top], classes[top]
        boxes = torchvision.ops.box_convert(boxes, "cxcywh", "xyxy")
        keep = torchvision.ops.batched_nms(boxes, best, classes if groups is None else groups[classes], iou)[:max_det]
        kept.append((boxes[keep], scores[keep]))
    return kept


def tile_windows(width: int, height: int, side: int) -> list[Window]:
    """Square windows of `side` pixels (fewer where the image is smaller) covering the image with at least
    TILE_OVERLAP overlap."""
    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        overlap = round(TILE_OVERLAP * side)
        count = math.ceil((length - overlap) / (side - overlap))
        return [round(s) for s in np.linspace(0, length - side, count)]

    return [Window(x, y, min(x + side, width), min(y + side, height)) for y in starts(height) for x in starts(width)]


def needs_tiles(width: int, height: int, imgsz: int) -> bool:
    """Whether digits SMALLEST_DIGIT pixels tall would shrink below MIN_INPUT_DIGIT at the model's input."""
    return SMALLEST_DIGIT * imgsz / max(width, height) < MIN_INPUT_DIGIT


def plan_windows(width: int, height: int, imgsz: int, tile: bool | None = None,
                 tile_size: int | None = None) -> list[Window]:
    """The whole image, plus tiles when `tile` is True, or when None (automatic) and the image is too large for
    imgsz (Detector.detect adds tiles for small digits after the whole-image pass)."""
    whole = Window(0, 0, width, height, whole=True)
    if tile is False or (tile is None and not needs_tiles(width, height, imgsz)):
        return [whole]
    return [whole] + tiles(width, height, imgsz, tile_size)


def tiles(width: int, height: int, imgsz: int, tile_size: int | None = None) -> list[Window]:
    """Tiles of `tile_size`, by default TILE_SHRINK x imgsz, or ENLARGING_TILE of the longer side where the image is
    too small for those (2 x 2 at least)."""
    side = tile_size or min(TILE_SHRINK * imgsz, math.ceil(ENLARGING_TILE * max(width, height)))
    return tile_windows(width, height, side)


def small_digits(boxes: np.ndarray, scores: torch.Tensor, gain: float) -> bool:
    """Whether a whole-image pass's digits (boxes in image pixels, class scores) are, at the median, under
    SMALL_DIGITS pixels tall at the model's input (`gain`: input pixels per image pixel). No digits: False."""
    shown = (scores.max(1).values >= SMALL_DIGITS_CONF).numpy()
    heights = (boxes[shown, 3] - boxes[shown, 1]) * gain
    return bool(len(heights)) and float(np.median(heights)) < SMALL_DIGITS


def merge(boxes: np.ndarray, scores: np.ndarray, from_windows: list[Window], width: int, height: int) -> np.ndarray:
    """Indices of the detections to keep from several windows of one image, most confident first.

    Drops tile detections cut by an inner tile edge, then suppresses any detection whose intersection with a more
    confident one covers MERGE_IOS of the smaller box (class-agnostic: one digit seen twice may be read twice)."""
    keep = np.ones(len(boxes), bool)
    for i, window in enumerate(from_windows):
        if not window.whole:
            margin = EDGE_MARGIN * max(window.x1 - window.x0, window.y1 - window.y0)
            left, top, right, bottom = window.inner_edges(width, height)
            x1, y1, x2, y2 = boxes[i]
            keep[i] = not ((left and x1 <= window.x0 + margin) or (top and y1 <= window.y0 + margin)
                           or (right and x2 >= window.x1 - margin) or (bottom and y2 >= window.y1 - margin))
    order = [i for i in np.argsort(-scores, kind="stable") if keep[i]]
    chosen: list[int] = []
    for i in order:
        if chosen and (overlap_of_smaller(boxes[i], boxes[chosen]) > MERGE_IOS).any():
            continue
        chosen.append(i)
    return np.array(chosen, dtype=np.int64)


class TorchBackend:
    """An ultralytics .pt checkpoint as a plain fused PyTorch module, run in fp32 or under bf16 autocast
    (`precision`, digitdet.precision: "auto" is bf16 on a CPU with native bf16)."""

    def __init__(self, weights: Path, device: str = "cpu", precision: str = "auto"):
        from ultralytics.nn.tasks import load_checkpoint
        from ultralytics.utils.torch_utils import select_device

        self.device = select_device(device, verbose=False)
        resolved = resolve_precision(precision, self.device)
        self.precision = "fp32" if resolved == "auto" else resolved  # "auto" stays so only on an accelerator
        try:
            self.model, _ = load_checkpoint(weights, device=self.device)
            self.model = self.model.fuse(verbose=False)  # conv + batch norm in one: faster, same outputs
        except Exception as error:  # torch and ultralytics raise many types for a bad checkpoint
            raise ModelError(f"{weights}: not a usable ultralytics checkpoint: {error}") from error
        if self.precision == "bf16":
            decode_in_fp32(self.model.model[-1], self.device.type)
        names = self.model.names
        self.names = [str(names[i]) for i in range(len(names))] if isinstance(names, dict) else list(names)
        self.imgsz = self.trained_size(self.model)
        self.static = False

    @staticmethod
    def trained_size(model) -> int:
        imgsz = model.args.get("imgsz", 640) if isinstance(model.args, dict) else 640
        return int(max(imgsz) if isinstance(imgsz, (list, tuple)) else imgsz)

    def __call__(self, batch: np.ndarray) -> torch.Tensor:
        bf16 = self.precision == "bf16"
        with torch.inference_mode(), torch.autocast(self.device.type, torch.bfloat16, enabled=bf16):
            output = self.model(torch.from_numpy(batch).to(self.device))
        output = output[0] if isinstance(output, (list, tuple)) else output
        return output.float().cpu()


def decode_in_fp32(head: torch.nn.Module, device_type: str) -> None:
    """Have a Detect head decode boxes in fp32 under bf16 autocast. bf16 keeps 8 significant bits: anchor centres
    and box sides of a few hundred pixels would round to 2-4 pixels (on 100 test pages at 960, mAP50-95 0.59
    against fp32's 0.71), while the convolutions before it lose little."""
    decode = head._inference

    def fp32_decode(preds: dict) -> torch.Tensor:
        with torch.autocast(device_type, enabled=False):
            return decode({key: [f.float() for f in value] if key == "feats" else value.float()
                           for key, value in preds.items()})

    head._inference = fp32_decode


class OnnxBackend:
    """An ONNX model exported by ultralytics (`detect.py --export onnx`), or its int8 quantization (`--export int8`,
    digitdet.quantize), run by onnxruntime."""

    def __init__(self, weights: Path, device: str = "cpu", threads: int | None = None, profile: Path | None = None):
        """`profile`: write onnxruntime's per-node profile to files starting with this path (see end_profiling)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: onnxruntime's default, one per physical core
        if profile:
            options.enable_profiling, options.profile_file_prefix = True, str(profile)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle threads sleep instead of spinning: on a busy CPU spinning took 20-30% longer per page (measured)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if str(device) != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(weights), options, providers=providers)
            meta = self.session.get_modelmeta().custom_metadata_map
            names = ast.literal_eval(meta["names"])
            imgsz = ast.literal_eval(meta.get("imgsz", "640"))
        except Exception as error:  # onnxruntime raises its own types for bad files
            raise ModelError(f"{weights}: not an ultralytics ONNX export ({error}); make one with "
                             f"'{export_command(weights)}'") from error
        self.names = [str(names[i]) for i in range(len(names))]
        self.precision = "int8" if weights.name.endswith(INT8_SUFFIX) else "fp32"
        self.imgsz = int(max(imgsz) if isinstance(imgsz, (list, tuple)) else imgsz)
        self.input = self.session.get_inputs()[0]
        batch, _, height, _ = self.input.shape
        self.static = isinstance(batch, int)  # a static export takes one image of exactly its own size
        if self.static and batch != 1:
            raise ModelError(f"{weights}: exported for batch {batch}; re-export with '{export_command(weights)}'")

    def __call__(self, batch: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {self.input.name: batch})[0])


def model_stem(model: Path) -> str:
    """A model file's name without its kind: best for best.pt, best.onnx and best.int8.onnx."""
    return model.name.removesuffix(INT8_SUFFIX).removesuffix(".onnx").removesuffix(".pt")


def int8_path(model: str | Path) -> Path:
    """Where `detect.py --export int8` puts the int8 model of a .pt (or .onnx) model: NAME.int8.onnx beside it."""
    return Path(model).with_name(model_stem(Path(model)) + INT8_SUFFIX)


def checkpoint_path(export: str | Path) -> Path:
    """The .pt model that an .onnx or .int8.onnx export beside it was made from."""
    return Path(export).with_name(model_stem(Path(export)) + ".pt")


def export_command(export: Path) -> str:
    """The command that makes an export: an int8 model (NAME.int8.onnx) or a plain ONNX one, from the .pt beside it."""
    kind = "int8" if export.name.endswith(INT8_SUFFIX) else "onnx"
    return f"python detect.py --weights {checkpoint_path(export)} --export {kind}"


def load_backend(weights: str | Path, device: str = "cpu", threads: int | None = None, precision: str = "auto"):
    """A backend for a .pt, .onnx or .int8.onnx file; a missing file gets an error that says how to get one.
    `precision` is the .pt's (an ONNX model runs as it was exported)."""
    weights = Path(weights)
    if not weights.is_file():
        hint = (f"make it with '{export_command(weights)}'" if weights.suffix == ".onnx"
                else "train one with 'python train.py' or pass --weights")
        raise ModelError(f"{weights}: model file not found; {hint}")
    if weights.suffix == ".onnx":  # an int8 model too: onnxruntime runs its QDQ nodes as int8 kernels
        return OnnxBackend(weights, device, threads)
    backend = TorchBackend(weights, device, precision)
    if threads:  # after loading: ultralytics' select_device sets torch to its own count (cpu_count - 1)
        torch.set_num_threads(threads)
    return backend


class Detector:
    """A loaded digit model: call `detect(images)` as often as needed; the model is loaded once.

    Args:
        weights: an ultralytics .pt checkpoint or its ONNX export (.onnx, run by onnxruntime).
        imgsz: the model's input size; default: the size the model was trained (or exported) at.
        conf: minimum confidence of a digit.
        iou: NMS IoU threshold (per class, as ultralytics).
        device: "cpu", "0" or "cuda:0", ...
        threads: CPU threads for inference (default: the libraries' own default).
        batch: windows (images or tiles) per model call.
        max_det: most digits kept per window.
        precision: a .pt model's arithmetic: "auto" (bf16 on a CPU with native bf16, else fp32), "fp32" or "bf16".
        max_gain: most an image is enlarged as a whole (tiles enlarge more); math.inf: to fill the input, as
            ultralytics does.
        backend: an already loaded backend to use instead of loading `weights`: a callable from an NCHW float32
            batch to the raw (batch, 4 + classes, anchors) output, with `names`, `imgsz` and `static`.
    """

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS, imgsz: int | None = None, conf: float = 0.25,
                 iou: float = 0.7, device: str = "cpu", threads: int | None = None, batch: int = 8,
                 max_det: int = 300, precision: str = "auto", max_gain: float = MAX_GAIN, backend=None):
        self.backend = backend or load_backend(weights, device, threads, precision)
        self.weights = Path(weights)
        self.joint = orientation.is_joint(self.backend.names)  # orientation-aware: it reports digits 0-9 and turns
        self.names = DIGITS if self.joint else self.backend.names
        self.groups = torch.from_numpy(orientation.NMS_GROUPS) if self.joint else None
        self.imgsz = imgsz or self.backend.imgsz
        if self.imgsz % 32:
            raise ValueError(f"imgsz must be a multiple of 32 (the model's largest stride), got {self.imgsz}")
        if self.backend.static and self.imgsz != self.backend.imgsz:
            raise ModelError(f"{weights}: exported for imgsz {self.backend.imgsz} only, not {self.imgsz}")
        self.conf, self.iou, self.max_det, self.max_gain = conf, iou, max_det, max_gain
        self.batch = 1 if self.backend.static else batch

    def detect(self, images: list[np.ndarray], tile: bool | None = None, tile_size: int | None = None,
               conf: float | None = None) -> list[Detections]:
        """Digits in each BGR uint8 image, in its own pixels. `tile`: None decides per image (tiles for images too
        large for imgsz, and for images of small digits), True forces tiles (of `tile_size` pixels, default
        TILE_SHRINK x imgsz), False never tiles. `conf`: this call's minimum confidence instead of the
        detector's."""
        conf = self.conf if conf is None else conf
        plans = [plan_windows(im.shape[1], im.shape[0], self.imgsz, tile, tile_size) for im in images]
        found: list[list] = [[] for _ in images]  # per image: (boxes, scores, window) for each window
        seconds = [0.0] * len(images)
        self.run_windows(images, plans, conf, found, seconds)
        if tile is None:  # a second pass, of tiles, for the images whose digits came out small
            plans = [self.small_digit_tiles(image, runs, tile_size) for image, runs in zip(images, found)]
            self.run_windows(images, plans, conf, found, seconds)
        results = []
        for k, image in enumerate(images):
            began = time.perf_counter()
            detections = self.collect(found[k], image.shape[1], image.shape[0])
            detections.seconds = seconds[k] + time.perf_counter() - began
            results.append(detections)
        return results

    def small_digit_tiles(self, image: np.ndarray, runs: list, tile_size: int | None) -> list[Window]:
        """Tiles for an image that ran as a whole only and whose digits came out small there; else none."""
        if len(runs) > 1:  # already tiled for its size
            return []
        boxes, scores, _ = runs[0]
        height, width = image.shape[:2]
        if not small_digits(boxes, scores, input_gain(width, height, self.imgsz, self.max_gain)):
            return []
        return tiles(width, height, self.imgsz, tile_size)

    def run_windows(self, images: list[np.ndarray], plans: list[list[Window]], conf: float, found: list[list],
                    seconds: list[float]) -> None:
        """Run each image's planned windows in batches, appending (boxes, scores, window) to its `found` list and
        its share of the time to `seconds`."""
        jobs = [(k, window) for k, windows in enumerate(plans) for window in windows]
        for start in range(0, len(jobs), self.batch):
            began = time.perf_counter()
            chunk = jobs[start:start + self.batch]
            boxed = [letterbox(images[k][w.y0:w.y1, w.x0:w.x1], self.imgsz, self.max_gain if w.whole else math.inf)
                     for k, w in chunk]
            raw = self.backend(to_input([pixels for pixels, _ in boxed]))
            kept = nms(raw, conf, self.iou, self.max_det, self.groups)
            for (k, window), (_, lb), (boxes, scores) in zip(chunk, boxed, kept):
                found[k].append((to_window_pixels(boxes, lb, window), scores, window))
            share = (time.perf_counter() - began) / len(chunk)
            for k, _ in chunk:
                seconds[k] += share

    def collect(self, found: list, width: int, height: int) -> Detections:
        """One image's detections from its windows, merged, most confident first: one box per glyph even from a
        single window, where class-aware NMS keeps a second box of another digit on the same ink (on 390 of 452
        test pages; each read as an extra digit and voting for the page's turn)."""
        boxes = np.concatenate([b for b, _, _ in found])  # every image has at least its whole-image window
        scores = torch.cat([s for _, s, _ in found]).numpy()
        windows = [w for b, _, w in found for _ in range(len(b))]
        keep = merge(boxes, scores.max(1, initial=0), windows, width, height)
        boxes, scores = boxes[keep], scores[keep]
        turn = orientation.page_turn(scores) if self.joint else None
        if turn is not None:  # each box gets the digit that fits the page's turn
            scores = orientation.digit_scores(scores, turn.turn)
        order = np.argsort(-scores.max(1, initial=0), kind="stable")
        boxes, scores = boxes[order], scores[order]
        top_classes = np.argsort(-scores, axis=1, kind="stable")[:, :TOP_K].astype(np.int64)
        top_scores = np.take_along_axis(scores, top_classes, axis=1).astype(np.float32)
        return Detections(boxes.astype(np.float32), top_scores[:, 0], top_classes[:, 0], top_classes, top_scores,
                          turn=turn.turn if turn else 0, turn_confidence=turn.confidence if turn else None,
                          windows=len(found))


class LastAxisDFL(torch.nn.Module):
    """ultralytics' DFL, exported: each box side as the expected value of its distribution over `bins` (B, 4 x
    bins, A) -> (B, 4, A), the same numbers, with the softmax over the last axis: onnxruntime runs one over a middle
    axis (as ultralytics writes it) through transposes, 7x slower: 11.8 against 1.6 ms per 480 page on one thread,
    9% of an int8 page (measured)."""

    def __init__(self, bins: torch.Tensor):
        super().__init__()
        self.register_buffer("bins", bins)  # (n, 1): 0, 1, ..., n - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape
        return (x.view(b, 4, self.bins.shape[0], a).transpose(2, 3).softmax(-1) @ self.bins).view(b, 4, a)


def export_onnx(weights: str | Path = DEFAULT_WEIGHTS, imgsz: int | None = None) -> Path:
    """Export a .pt model to ONNX beside it (dynamic batch and size, simplified, its DFL as LastAxisDFL) and return
    the .onnx path."""
    weights = Path(weights)
    if not weights.is_file():
        raise ModelError(f"{weights}: model file not found; train one with 'python train.py' or pass --weights")
    from ultralytics import YOLO

    model = YOLO(str(weights))
    size = imgsz or TorchBackend.trained_size(model.model)
    head = model.model.model[-1]
    if hasattr(getattr(head, "dfl", None), "conv"):  # reg_max 1 has no DFL (an Identity)
        head.dfl = LastAxisDFL(head.dfl.conv.weight.detach().view(-1, 1))
    return Path(model.export(format="onnx", dynamic=True, simplify=True, imgsz=size, device="cpu"))


def to_window_pixels(boxes: torch.Tensor, lb: Letterbox, window: Window) -> np.ndarray:
    """Boxes from the model's input pixels to the image's pixels, clipped to the window."""
    boxes = boxes.numpy().astype(np.float32).copy()
    boxes[:, [0, 2]] = np.clip((boxes[:, [0, 2]] - lb.pad_x) / lb.gain_x, 0, window.x1 - window.x0) + window.x0
    boxes[:, [1, 3]] = np.clip((boxes[:, [1, 3]] - lb.pad_y) / lb.gain_y, 0, window.y1 - window.y0) + window.y0
    return boxes
