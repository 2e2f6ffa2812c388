"""Read detected digits as numbers: group boxes into numbers and lines, in reading order.

1. Numbers: digits are chained left to right; a digit continues the number whose last digit it overlaps
   vertically (half of the smaller height at least) with a gap of at most GAP_FACTOR times their mean height.
2. Skew: the page's slope is the median slope of the bottoms (the baseline) of the numbers of 3 or more digits.
3. Lines: along that slope, numbers are taken top to bottom by their centre; a number joins the current line when
   its centre lies within half a mean digit height of the line's mean centre (the page builder's own rule, so
   generated pages read back as written). Within a line, numbers are read left to right.

A page at a quarter turn (an orientation-aware model says which, digitdet.orientation) is read upright: its boxes
are turned back before grouping, and the numbers' boxes are given in the page's own pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from digitdet.boxes import as_boxes, enclosing
from digitdet.turns import upright_boxes

LINE_OVERLAP = 0.5  # a digit continues a number if this share of the smaller height overlaps its last digit
GAP_FACTOR = 0.6  # a horizontal gap wider than this times the two digits' mean height starts a new number
MAX_SLOPE = 0.25  # about 14 degrees: "slight skew"; steeper fits come from noise, not from the page


@dataclass
class Number:
    """Digits read together. `members` index the input boxes, left to right; `box` is their union (x1, y1, x2, y2)."""

    digits: str
    box: tuple[float, float, float, float]
    members: list[int]
    line: int  # index of its line, top to bottom
    confidence: float  # the weakest digit's confidence: a number is only as sure as its least sure digit


def read_numbers(boxes_xyxy, classes, confidences=None, names: Sequence[str] | None = None, turn: int = 0,
                 image_size: tuple[int, int] | None = None) -> list[Number]:
    """Group digit boxes into numbers in reading order (lines top to bottom, numbers left to right).

    Args:
        boxes_xyxy: (N, 4) boxes in pixels (any array-like, numpy or torch).
        classes: (N,) class ids.
        confidences: (N,) scores, or None (all 1).
        names: the digit string of each class id; default str(class id).
        turn: the page's quarter turn (degrees counter-clockwise): the page is read as if turned back upright.
        image_size: (width, height) of the image, needed when `turn` is not 0.
    Returns:
        the numbers; each Number's `members` are indices into the inputs.
    """
    boxes = as_boxes(_to_numpy(boxes_xyxy))
    classes = np.asarray(_to_numpy(classes)).reshape(-1).astype(int)
    confidences = np.ones(len(boxes)) if confidences is None else np.asarray(_to_numpy(confidences), float).reshape(-1)
    if not len(boxes) == len(classes) == len(confidences):
        raise ValueError(f"boxes, classes and confidences differ in length: "
                         f"{len(boxes)}, {len(classes)}, {len(confidences)}")
    if turn:
        if image_size is None:
            raise ValueError("read_numbers: a turned page needs its image_size (width, height)")
        upright = upright_boxes(boxes, turn, *image_size)
    else:
        upright = boxes
    groups = group_numbers(upright)
    lines = group_lines(upright, groups, page_slope(upright, groups))
    numbers = []
    for line_index, line in enumerate(lines):
        for members in line:
            text = "".join(names[c] if names is not None else str(c) for c in classes[members])
            box = enclosing(boxes[members])
            numbers.append(Number(text, tuple(float(v) for v in box), [int(i) for i in members], line_index,
                                  float(confidences[members].min())))
    return numbers


def _to_numpy(values):
    return values.detach().cpu().numpy() if hasattr(values, "detach") else values


def group_numbers(boxes: np.ndarray) -> list[list[int]]:
    """Chain digits left to right into numbers; each number's members are sorted by x."""
    numbers: list[list[int]] = []
    for i in np.argsort((boxes[:, 0] + boxes[:, 2]) / 2, kind="stable"):
        best, best_gap = None, np.inf
        for number in numbers:
            last = number[-1]
            gap = boxes[i, 0] - boxes[last, 2]
            height = (boxes[i, 3] - boxes[i, 1] + boxes[last, 3] - boxes[last, 1]) / 2
            if gap <= GAP_FACTOR * height and abs(gap) < best_gap and vertical_overlap(boxes[i], boxes[last]) >= \
                    LINE_OVERLAP:
                best, best_gap = number, abs(gap)
        if best is None:
            numbers.append([int(i)])
        else:
            best.append(int(i))
    return numbers


def vertical_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """The share of the smaller box's height that the two boxes overlap vertically."""
    smaller = min(a[3] - a[1], b[3] - b[1])
    return (min(a[3], b[3]) - max(a[1], b[1])) / smaller if smaller > 0 else 0.0


def page_slope(boxes: np.ndarray, numbers: list[list[int]]) -> float:
    """dy/dx of the writing: the median over numbers of 3+ digits of their baseline's slope (0 if none)."""
    slopes = []
    for members in numbers:
        if len(members) >= 3:
            x, bottom = (boxes[members, 0] + boxes[members, 2]) / 2, boxes[members, 3]
            if np.ptp(x) > 0:
                slopes.append(np.polyfit(x, bottom, 1)[0])
    return float(np.clip(np.median(slopes), -MAX_SLOPE, MAX_SLOPE)) if slopes else 0.0


def group_lines(boxes: np.ndarray, numbers: list[list[int]], slope: float) -> list[list[list[int]]]:
    """Numbers into lines, top to bottom along `slope`; each line's numbers left to right.

    Plain Python over the few numbers of a page: the page builder orders every page it makes with this."""
    x1, y1, x2, y2 = boxes.T.tolist() if len(boxes) else ([], [], [], [])
    level = [sum((y1[i] + y2[i]) / 2 - slope * (x1[i] + x2[i]) / 2 for i in m) / len(m) for m in numbers]  # deskewed
    height = [sum(y2[i] - y1[i] for i in m) / len(m) for m in numbers]
    lines: list[list[int]] = []
    for k in sorted(range(len(numbers)), key=level.__getitem__):
        if lines:
            line = lines[-1]
            mean_level = sum(level[j] for j in line) / len(line)
            mean_height = (sum(height[j] for j in line) + height[k]) / (len(line) + 1)
            if abs(level[k] - mean_level) <= mean_height / 2:
                line.append(k)
                continue
        lines.append([k])
    return [[numbers[k] for k in sorted(line, key=lambda k: min(x1[i] for i in numbers[k]))] for line in lines]
