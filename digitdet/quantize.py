"""Static int8 quantization of a digit model's ONNX export with ONNX Runtime (`detect.py --export int8`).

QDQ format, int8 weights per output channel, uint8 activations whose ranges (MinMax) come from calibration pages:
a seeded sample of a dataset's train split, never its val or test pages, letterboxed and scaled exactly as the
Detector feeds the model (digitdet.detector.letterbox and to_input).

Kept in fp32, because quantizing them lost accuracy (the shipped model on 100 val pages: mAP50 0.449 in fp32):
- the Detect head's box decoding (DFL softmax, anchor offsets, and the concat of boxes in input pixels with 0-1
  class scores, which share one range when quantized): all of it in int8 gave mAP50 0.000, only the final concat
  in fp32 0.383, the DFL in int8 mAP50-95 0.311 instead of 0.326;
- the first convolution block: its uint8 input (page pixels, mostly near white) times int8 weights overflows the
  16-bit pair sums of the int8 multiply (vpmaddubsw) that CPUs without VNNI use, mAP50 0.337; with 7-bit weights
  everywhere instead (reduce_range) 0.447. With 3 input channels it is also faster in fp32.
The head's last convolutions stay int8: keeping them in fp32 changed mAP50 by -0.001.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from digitdet.atomic import replaced
from digitdet.detector import MAX_GAIN, ModelError, export_command, export_onnx, int8_path, letterbox, to_input
from digitdet.images import read_image
from digitdet.labels import DatasetError, load_dataset
from digitdet.runtime import PROJECT_ROOT

if TYPE_CHECKING:
    import onnx

DEFAULT_DATA = PROJECT_ROOT / "data.yaml"
CALIBRATION_SPLIT = "train"  # never val or test: those pages score the model
CALIBRATION_PAGES = 64
SEED = 0
BUILD_HINT = "build pages with 'python -m augment.pages --mnist ../shared/data/mnist --out data/pages'"


def calibration_pages(data: str | Path, count: int = CALIBRATION_PAGES, seed: int = SEED) -> list[Path]:
    """A seeded sample of `count` images of the dataset's train split (all of them when it has fewer), sorted."""
    try:
        dataset = load_dataset(data)
    except DatasetError as error:
        raise DatasetError(f"{error}; calibration needs train pages: {BUILD_HINT}, or pass --data") from error
    pages = dataset.images(CALIBRATION_SPLIT)
    if not pages:
        raise DatasetError(f"{dataset.yaml_path}: no {CALIBRATION_SPLIT} images to calibrate on; {BUILD_HINT}")
    pick = np.random.default_rng(seed).choice(len(pages), size=min(count, len(pages)), replace=False)
    return [pages[i] for i in sorted(pick)]


class PageReader:
    """onnxruntime's CalibrationDataReader over pages: one letterboxed page per model input, read when asked."""

    def __init__(self, pages: list[Path], imgsz: int, input_name: str):
        self.pages, self.imgsz, self.input_name = pages, imgsz, input_name
        self.bar = tqdm(total=len(pages), desc="calibrating", unit="page")
        self.next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.next == len(self.pages):
            self.bar.close()
            return None
        pixels, _ = letterbox(read_image(self.pages[self.next]), self.imgsz, MAX_GAIN)
        self.next += 1
        self.bar.update()
        return {self.input_name: to_input([pixels])}


def fp32_nodes(model: onnx.ModelProto, path: Path) -> list[str]:
    """Names of the nodes kept in fp32 (see the module's docstring): the block of the first convolution and the
    Detect head's nodes outside its box (cv2) and class (cv3) convolution branches."""
    blocks = {int(m[1]) for node in model.graph.node if (m := re.match(r"/model\.(\d+)/", node.name))}
    first = [node for node in model.graph.node if node.op_type == "Conv" and model.graph.input[0].name in node.input]
    if not blocks or len(first) != 1:
        raise ModelError(f"{path}: not an ultralytics YOLO ONNX export; make one with '{export_command(path)}'")
    first_block = first[0].name.split("/")[1]
    head = max(blocks)
    return [node.name for node in model.graph.node
            if node.name.startswith(f"/{first_block}/")
            or (node.name.startswith(f"/model.{head}/") and not re.match(rf"/model\.{head}/cv[23]\.", node.name))]


def quantize(model_path: str | Path, data: str | Path = DEFAULT_DATA, out: str | Path | None = None,
             imgsz: int | None = None, count: int = CALIBRATION_PAGES, seed: int = SEED) -> Path:
    """Quantize an ultralytics ONNX export to int8, calibrated on `count` train pages of `data` at `imgsz` (default:
    the export's size); writes `out` (default: NAME.int8.onnx beside it) and returns its path."""
    import onnx  # here, not above: importing it takes seconds, which detect.py should not pay for every run
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model_path = Path(model_path)
    out = Path(out) if out else int8_path(model_path)
    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as error:  # onnx raises DecodeError and others for a damaged file
        raise ModelError(f"{model_path}: not an ONNX model ({error}); make one with "
                         f"'{export_command(model_path)}'") from error
    exclude = fp32_nodes(model, model_path)
    meta = {p.key: p.value for p in model.metadata_props}
    size = ast.literal_eval(meta.get("imgsz", "640"))
    imgsz = imgsz or int(max(size) if isinstance(size, (list, tuple)) else size)
    pages = calibration_pages(data, count, seed)
    with replaced(out) as temporary:
        quantize_static(str(model_path), str(temporary), PageReader(pages, imgsz, model.graph.input[0].name),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
                        calibrate_method=CalibrationMethod.MinMax)
        quantized = onnx.load(str(temporary))
        onnx.helper.set_model_props(quantized, {**meta, "quantization": (
            f"int8 static QDQ, per-channel weights; calibrated on {len(pages)} {CALIBRATION_SPLIT} pages of "
            f"{Path(data)} (seed {seed}) at imgsz {imgsz}; {len(exclude)} nodes in fp32")})
        onnx.save(quantized, str(temporary))
    return out


def export_int8(weights: str | Path, imgsz: int | None = None, data: str | Path = DEFAULT_DATA,
                count: int = CALIBRATION_PAGES, seed: int = SEED) -> Path:
    """Export a .pt model to ONNX beside it, quantize that to NAME.int8.onnx beside it, and return that path."""
    calibration_pages(data, count, seed)  # missing pages fail here, not after the export
    return quantize(export_onnx(weights, imgsz), data, imgsz=imgsz, count=count, seed=seed)
