"""What detection found in an image, read as numbers, and its outputs: the terminal line, JSON records and CSV rows.

detect.py writes these for files and app.py shows them for uploads; both get an ImageResult from `read_result`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from digitdet.atomic import replaced
from digitdet.detector import Detections
from digitdet.reading import Number, read_numbers

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


def read_result(path: Path, detections: Detections, names: list[str], width: int, height: int) -> ImageResult:
    """One width x height image's detections with the numbers they read, as on the upright page."""
    numbers = read_numbers(detections.boxes, detections.classes, detections.confidences, names, detections.turn,
                           (width, height))
    return ImageResult(path, width, height, detections, numbers)


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


def write_text(path: Path, write) -> None:
    """Write a text file through `write(f)`, never leaving it half-written."""
    with replaced(path) as temporary, open(temporary, "w", newline="") as f:
        write(f)


def write_json(path: Path, report: Report, names: list[str]) -> None:
    """Every image's record, and each failed image with its reason, one image per line (greppable, diffable)."""
    records = [to_record(r, names) for r in report.results]
    records += [{"image": str(p), "error": reason} for p, reason in report.failed]
    body = ",\n".join(json.dumps(record) for record in records)
    write_text(path, lambda f: f.write(f'{{"names": {json.dumps(names)},\n"images": [\n{body}\n]}}\n'))


def write_csv(path: Path, report: Report, names: list[str]) -> None:
    """One row per digit of every image (CSV_FIELDS)."""
    def write(f):
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for result in report.results:
            writer.writerows(csv_rows(result, names))

    write_text(path, write)
