"""Annotated copies of images: each digit's box and a 'digit .confidence' label, legible on light and dark paper."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from digitdet.detector import Detections
from digitdet.reading import Number
from digitdet.results import ImageResult
from digitdet.turns import back, turn_boxes, turn_image


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


def annotate_result(image: np.ndarray, result: ImageResult, names: list[str], upright: bool = False) -> np.ndarray:
    """The image annotated with its result; `upright`: turned back upright when the model found the page turned."""
    detections, undo = result.detections, back(result.detections.turn)
    if upright and undo:
        detections = replace(detections, boxes=turn_boxes(detections.boxes, undo, result.width, result.height)
                             .astype(np.float32))
        image = turn_image(image, undo)
    return annotate(image, detections, names, result.numbers)
