"""Stand-in models for tests: backends whose raw output is known, so the pipeline around a model is checked exactly.

A backend is what digitdet.detector.Detector runs: a callable from a batch of input images (batch, 3, imgsz, imgsz)
to YOLOv8's raw output (batch, 4 + classes, anchors), with `names`, `imgsz` and `static` (whether its batch size is
fixed). Also: digits drawn as grey blocks that InkBlobs reads back.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from digitdet import orientation
from digitdet.boxes import xyxy_to_xywh
from digitdet.detector import MIN_INPUT_DIGIT
from digitdet.labels import DIGITS


def raw_output(found: list[list[tuple]], n_classes: int, anchors: int | None = None) -> torch.Tensor:
    """The raw output of a batch: for each image, its boxes as (x1, y1, x2, y2, {class: score}) at the input."""
    raw = torch.zeros(len(found), 4 + n_classes, anchors or max([len(boxes) for boxes in found] + [1]))
    for b, boxes in enumerate(found):
        for k, (*box, scores) in enumerate(boxes):
            raw[b, :4, k] = torch.from_numpy(xyxy_to_xywh(box)[0])
            for cls, score in scores.items():
                raw[b, 4 + cls, k] = score
    return raw


class FixedBackend:
    """The same boxes whatever the input: each ((x1, y1, x2, y2), class, score) of `boxes` scores `score` for its
    class, a tenth of it for class (c + 1) % 10 and a twentieth for (c + 2) % 10. It counts its calls and keeps its
    inputs."""

    names = DIGITS
    static = False

    def __init__(self, boxes=(), imgsz: int = 64):
        self.boxes, self.imgsz = list(boxes), imgsz
        self.calls = 0
        self.inputs = []

    def __call__(self, batch: np.ndarray) -> torch.Tensor:
        self.calls += 1
        self.inputs.append(batch)
        scores = [(*box, {cls: score, (cls + 1) % 10: score / 10, (cls + 2) % 10: score / 20})
                  for box, cls, score in self.boxes]
        return raw_output([scores] * len(batch), len(self.names))


class InkBlobs:
    """A stand-in model for exact geometry: each dark blob at the model's input is a digit, its class coded in its
    grey level (class k is drawn at level 10 k) and its top-3 scores fixed (k: 0.9, k+1: 0.3, k+2: 0.1). Like a real
    model it misses digits under MIN_INPUT_DIGIT / 2 pixels at its input. The boxes are the blobs' pixel bounds, so
    every step between the image and the model and back (reading, letterbox, tiles, batches, NMS, merging,
    mapping to original pixels, reading order, outputs) must keep them where they were drawn."""

    names = DIGITS
    imgsz = 160
    static = False
    calls = 0
    ANCHORS = 100

    def __call__(self, batch: np.ndarray) -> torch.Tensor:
        self.calls += 1
        return raw_output([self.blobs(image) for image in batch], len(self.names), self.ANCHORS)

    def blobs(self, image: np.ndarray) -> list[tuple]:
        grey = image.mean(0) * 255
        ink = (grey < 100).astype(np.uint8)
        _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=4)
        found = []
        for x, y, w, h, _ in [s for s in stats[1:] if s[3] >= MIN_INPUT_DIGIT / 2][:self.ANCHORS]:
            level = np.median(grey[y:y + h, x:x + w][ink[y:y + h, x:x + w] > 0])
            found.append((x, y, x + w, y + h, self.scores(int(np.clip(round(level / 10), 0, 9)), w, h)))
        return found

    def scores(self, digit: int, width: int, height: int) -> dict[int, float]:
        return {(digit + rank) % 10: score for rank, score in enumerate((0.9, 0.3, 0.1))}


class SizedBlobs(InkBlobs):
    """InkBlobs whose one class score grows with the blob's size at the input, so that blobs of distinct sizes
    have distinct confidences (no ties for a precision-recall curve to order differently)."""

    def scores(self, digit: int, width: int, height: int) -> dict[int, float]:
        return {digit: float(height * 64 + width) / 4096}


class AsTorchModule(torch.nn.Module):
    """A backend as a torch module with an ultralytics model's attributes, so that ultralytics' own validator (and
    predictor) run it as they run a model."""

    def __init__(self, backend):
        super().__init__()
        self.backend = backend
        self.names = dict(enumerate(backend.names))
        self.stride = torch.tensor([32.0])
        self.unused = torch.nn.Parameter(torch.zeros(1))  # ultralytics reads the device and dtype of a parameter

    def forward(self, images: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return self.backend(images.cpu().numpy())


class UprightDigits:
    """A real model's backend read as ten digits on an upright page: an orientation-aware model's 40 joint class
    scores folded by orientation.digit_scores at turn 0; a plain model's output as it is. ultralytics' validator
    knows nothing of turns and scores joint classes against digit labels as they are; through this both it and our
    Detector score the same ten classes of the same model."""

    def __init__(self, backend):
        self.backend, self.imgsz, self.static = backend, backend.imgsz, backend.static
        self.joint = orientation.is_joint(backend.names)
        self.names = DIGITS if self.joint else backend.names

    def __call__(self, batch: np.ndarray) -> torch.Tensor:
        raw = self.backend(batch)
        if not self.joint:
            return raw
        scores = raw[:, 4:].transpose(1, 2)  # (batch, anchors, 40); digit_scores takes them as rows
        digits = torch.from_numpy(orientation.digit_scores(scores.numpy(), 0))
        digits = digits.reshape(*scores.shape[:2], -1).transpose(1, 2)
        return torch.cat([raw[:, :4], digits], 1)


class TurnedBlobs(InkBlobs):
    """InkBlobs as an orientation-aware model on a page at a known turn: each blob scores its digit at that turn,
    and 6s and 9s also score their upside-down twin (the glyph is the same), a little higher."""

    names = orientation.JOINT_NAMES
    turn = 0

    def blobs(self, image: np.ndarray) -> list[tuple]:
        opposite = (self.turn + 180) % 360
        found = []
        for *box, scores in super().blobs(image):
            digit = max(scores, key=scores.get)
            joint = {orientation.joint_class(digit, self.turn): 0.8}
            if digit in (6, 9):
                joint[orientation.joint_class(orientation.UPSIDE_DOWN[digit], opposite)] = 0.85
            found.append((*box, joint))
        return found


def draw_digits(image: np.ndarray, digits: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    """Draw (digit, x1, y1, x2, y2) as solid blocks of grey 10 x digit on a copy of the image."""
    image = image.copy()
    for digit, x1, y1, x2, y2 in digits:
        image[y1:y2, x1:x2] = 10 * digit
    return image


def written(lines: list[str], x0: int, y0: int, height: int, width: int, pitch: int, space: int, line_pitch: int):
    """Blocks for lines of text such as '4821 07': (digit, x1, y1, x2, y2) in reading order."""
    blocks = []
    for row, text in enumerate(lines):
        x, y = x0, y0 + row * line_pitch
        for char in text:
            if char == " ":
                x += space
                continue
            blocks.append((int(char), x, y, x + width, y + height))
            x += pitch
    return blocks
