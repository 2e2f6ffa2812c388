"""YOLO datasets: read and write data.yaml and label files, and validate them with file and line for every problem.

Both layouts that users have are understood:
  ultralytics  root/images/train/a.jpg  + root/labels/train/a.txt   (data.yaml: train: images/train)
  Roboflow     root/train/images/a.jpg  + root/train/labels/a.txt   (data.yaml: train: ../train/images)

A label line is `class cx cy w h` (normalized box) or Roboflow's `class x1 y1 x2 y2 ...` (normalized polygon).
Every label is kept as points (a box as its four corners), so that geometric transforms treat both alike and a
polygon is turned before it is boxed.

Command line:
    python -m digitdet.labels check path/to/data.yaml
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from digitdet import cli
from digitdet.boxes import xywh_to_xyxy, xyxy_to_xywh
from digitdet.images import check_image, read_header

IMAGE_SUFFIXES = {".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"}
SPLITS = ("train", "val", "test")
DIGITS = [str(d) for d in range(10)]  # class names of a digit dataset: class i is the digit i
TOLERANCE = 0.01  # coordinates this far outside [0, 1] are clipped (exports round); beyond it they are errors


class DatasetError(ValueError):
    """A dataset that cannot be used; the message names the file (and line) at fault."""


def yolo_line(cls: int, cx: float, cy: float, w: float, h: float) -> str:
    """A YOLO box line `class cx cy w h` (normalized); 10 significant digits keep the source's precision without
    float noise."""
    return f"{cls} {cx:.10g} {cy:.10g} {w:.10g} {h:.10g}"


@dataclass(frozen=True)
class Label:
    """One object: its class and its outline as normalized (x, y) points (a box's four corners, or a polygon)."""

    cls: int
    points: np.ndarray

    @classmethod
    def from_box(cls, class_id: int, cx: float, cy: float, w: float, h: float) -> Label:
        x1, y1, x2, y2 = xywh_to_xyxy([cx, cy, w, h])[0]
        return cls(class_id, np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64))

    @property
    def box(self) -> tuple[float, float, float, float]:
        """The bounding box (cx, cy, w, h) of the points, normalized."""
        return tuple(xyxy_to_xywh([*self.points.min(axis=0), *self.points.max(axis=0)])[0].tolist())

    def line(self) -> str:
        """The YOLO box line."""
        return yolo_line(self.cls, *self.box)


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else f"{self.path}"
        return f"{where}: {self.message}"


@dataclass
class Dataset:
    """A data.yaml resolved to absolute image folders (or list files) per split."""

    yaml_path: Path
    root: Path
    names: list[str]
    splits: dict[str, list[Path]] = field(default_factory=dict)

    def images(self, split: str) -> list[Path]:
        """The split's images, sorted, from its folders and .txt list files."""
        found: list[Path] = []
        for source in self.splits.get(split, []):
            if source.is_dir():
                found += [p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
            else:  # a list file, one image path per line (spaces are part of a path), relative to the dataset root
                lines = [line.strip() for line in read_text(source).splitlines() if line.strip()]
                found += [(self.root / p).resolve() if not Path(p).is_absolute() else Path(p) for p in lines]
        return sorted(found)

    def sources(self) -> list[Path]:
        """What an output made from this dataset must never replace: its data.yaml, root, split folders and lists."""
        return [self.yaml_path, self.root] + [p for paths in self.splits.values() for p in paths]

    def read_folders(self) -> list[Path]:
        """The split folders, whose every image is read: an output inside one would be read back as a source."""
        return [p for paths in self.splits.values() for p in paths if p.is_dir()]


def read_text(path: Path) -> str:
    """A text file's content; a DatasetError names the file (and line) when it is a folder or not UTF-8 text."""
    if path.is_dir():
        raise DatasetError(f"{path}: is a folder, not a text file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise DatasetError(f"{path}:{line}: not UTF-8 text (byte {error.start}); save it as UTF-8") from None


def beside(image: Path, folder: str, suffix: str) -> Path:
    """The file for an image in a parallel folder: the last `images` folder of its path becomes `folder`."""
    parts = list(image.parts)
    if "images" not in parts:
        raise DatasetError(f"{image}: image is not inside an 'images' folder, so its {folder} file cannot be found")
    i = len(parts) - 1 - parts[::-1].index("images")
    parts[i] = folder
    return Path(*parts).with_suffix(suffix)


def label_path(image: Path) -> Path:
    """An image's YOLO label file: images/train/a.jpg -> labels/train/a.txt (as ultralytics)."""
    return beside(image, "labels", ".txt")


def numbers_path(image: Path) -> Path:
    """An image's sidecar of numbers in reading order: images/test/a.jpg -> numbers/test/a.json (page builder)."""
    return beside(image, "numbers", ".json")


def parse_names(names, yaml_path: Path) -> list[str]:
    """`names` as a list, or as a dict {0: '0', ...} with keys 0..n-1; each name once."""
    if isinstance(names, dict) and names:
        try:
            by_id = {int(k): v for k, v in names.items()}
        except (TypeError, ValueError):
            raise DatasetError(f"{yaml_path}: 'names' keys must be class ids 0..{len(names) - 1}, got "
                               f"{list(names)}") from None
        if sorted(by_id) != list(range(len(by_id))):
            raise DatasetError(f"{yaml_path}: 'names' keys must be 0..{len(by_id) - 1}, got {sorted(by_id)}")
        names = [by_id[k] for k in range(len(by_id))]
    if not isinstance(names, list) or not names:
        raise DatasetError(f"{yaml_path}: 'names' must be a non-empty list or dict of class names")
    names = [str(n) for n in names]
    refuse_repeated_names(names, yaml_path)
    return names


def refuse_repeated_names(names: list[str], yaml_path: Path) -> None:
    """Two classes with one name (spaces around it aside) could not be told apart."""
    if repeated := sorted(n for n, count in Counter(n.strip() for n in names).items() if count > 1):
        raise DatasetError(f"{yaml_path}: class names {repeated} appear more than once in 'names'")


def resolve_split(root: Path, entry: str) -> Path:
    """A split path from data.yaml; Roboflow writes `../train/images` meaning root/train/images (as ultralytics)."""
    path = Path(entry) if Path(entry).is_absolute() else (root / entry).resolve()
    if not path.exists() and entry.startswith("../"):
        path = (root / entry[3:]).resolve()
    return path


def load_dataset(yaml_path: str | Path) -> Dataset:
    """Read a data.yaml; `path` (default: the yaml's folder) is the root that split paths are relative to."""
    yaml_path = Path(yaml_path).resolve()
    if not yaml_path.is_file():
        raise DatasetError(f"{yaml_path}: data.yaml not found")
    if header := read_header(yaml_path, max_pixels=None):
        raise DatasetError(f"{yaml_path}: is a {header.kind} image, not a data.yaml; give the dataset's data.yaml")
    try:
        config = yaml.safe_load(read_text(yaml_path)) or {}
    except yaml.YAMLError as error:
        raise DatasetError(f"{yaml_path}: not valid YAML: {error}") from error
    if not isinstance(config, dict) or "names" not in config:
        raise DatasetError(f"{yaml_path}: expected a mapping with at least 'names' and 'train'")
    root = Path(config.get("path") or yaml_path.parent)
    root = root if root.is_absolute() else (yaml_path.parent / root).resolve()
    dataset = Dataset(yaml_path, root, parse_names(config["names"], yaml_path))
    for split in SPLITS:
        entries = config.get(split)
        if entries:
            entries = entries if isinstance(entries, list) else [entries]
            dataset.splits[split] = [resolve_split(root, str(e)) for e in entries]
    if "train" not in dataset.splits:
        raise DatasetError(f"{yaml_path}: no 'train' split")
    for split, sources in dataset.splits.items():
        for source in sources:
            if not source.exists():
                raise DatasetError(f"{yaml_path}: {split} path {source} does not exist")
    return dataset


def class_id(text: str) -> int:
    """A label line's class id: a whole number, also when written as one (`1.0`, as ultralytics reads it)."""
    value = float(text)
    if not value.is_integer():
        raise ValueError(f"class id {text} is not a whole number")
    return int(value)


def parse_line(text: str, n_classes: int) -> Label:
    """One label line as a Label; raises ValueError with a short reason."""
    fields = text.split()
    try:
        numbers = [float(v) for v in fields]
    except ValueError:
        raise ValueError(f"numbers do not parse: {text.strip()!r}") from None
    cls, values = class_id(fields[0]), numbers[1:]
    if not 0 <= cls < n_classes:
        raise ValueError(f"class id {cls} is outside names (0..{n_classes - 1})")
    if len(values) == 4:
        if values[2] <= 0 or values[3] <= 0:  # checked before corners are made, which would hide the sign
            raise ValueError(f"box has zero or negative size: {text.strip()!r}")
        label = Label.from_box(cls, *values)
    elif len(values) >= 6 and len(values) % 2 == 0:
        label = Label(cls, np.array(values, dtype=np.float64).reshape(-1, 2))
    else:
        raise ValueError(f"expected 'class cx cy w h' or a polygon 'class x1 y1 x2 y2 x3 y3 ...', "
                         f"got {len(fields)} fields")
    if not np.isfinite(label.points).all():
        raise ValueError("coordinates must be finite numbers")
    if label.points.min() < -TOLERANCE or label.points.max() > 1 + TOLERANCE:
        raise ValueError(f"coordinates outside [0, 1]: {text.strip()!r}")
    _, _, w, h = label.box
    if w <= 0 or h <= 0:
        raise ValueError(f"box has zero or negative size: {text.strip()!r}")
    return Label(cls, np.clip(label.points, 0.0, 1.0))


def read_labels_checked(path: Path, n_classes: int) -> tuple[list[Label], list[Problem]]:
    """All good labels of a file, and a Problem for each bad line. A missing file is a background image."""
    if not path.exists():
        return [], []
    if path.is_dir():
        return [], [Problem(path, None, "is a folder, not a label file; remove or rename it")]
    labels, problems = [], []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            text = line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            problems.append(Problem(path, number, "not UTF-8 text; save the file as UTF-8"))
            continue
        if text.strip():
            try:
                labels.append(parse_line(text, n_classes))
            except ValueError as error:
                problems.append(Problem(path, number, str(error)))
    return labels, problems


def read_labels(path: Path, n_classes: int) -> list[Label]:
    """The labels of a file; raises DatasetError naming the file and line of the first bad one."""
    labels, problems = read_labels_checked(path, n_classes)
    if problems:
        raise DatasetError(str(problems[0]))
    return labels


def write_labels(path: Path, labels: list[Label]) -> None:
    path.write_text("".join(label.line() + "\n" for label in labels))


def write_data_yaml(path: Path, root: Path, names: list[str], splits: dict[str, str], **extra) -> None:
    """A data.yaml with an absolute `path` (ultralytics resolves relative ones against its own datasets folder)."""
    config = {"path": str(root), **splits, "names": dict(enumerate(names)), **extra}
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@dataclass
class SplitSummary:
    images: int = 0
    backgrounds: int = 0
    boxes: int = 0
    classes: Counter = field(default_factory=Counter)


def orphan_labels(images: list[Path]) -> list[Problem]:
    """Label files in the label folders of these images that belong to no image."""
    stems = {label_path(p) for p in images}
    folders = {p.parent for p in stems}
    return [Problem(f, None, "label file without an image") for d in folders for f in sorted(d.glob("*.txt"))
            if f not in stems]


def validate(dataset: Dataset, splits: list[str] | None = None) -> tuple[dict[str, SplitSummary], list[Problem]]:
    """Check the splits (default: all): images readable (digitdet.images.check_image: decoded whole), label lines
    valid, no labels without images, every image inside an 'images' folder (so that its labels can be found)."""
    summaries, problems = {}, []
    for split in splits or dataset.splits:
        summary = summaries[split] = SplitSummary()
        images = dataset.images(split)
        if not images:
            problems.append(Problem(dataset.yaml_path, None, f"split '{split}' has no images"))
        homeless = sorted({image.parent for image in images if "images" not in image.parts})
        problems += [Problem(folder, None, "its images are in no folder named 'images', so their label files "
                             "cannot be found: the last 'images' folder of an image's path becomes 'labels' "
                             "(images/train/a.jpg -> labels/train/a.txt); rename the folder") for folder in homeless]
        images = [image for image in images if image.parent not in homeless]
        for image in images:
            if reason := check_image(image):
                problems.append(Problem(image, None, reason))
            labels, bad = read_labels_checked(label_path(image), len(dataset.names))
            problems += bad
            summary.images += 1
            summary.backgrounds += not labels
            summary.boxes += len(labels)
            summary.classes.update(label.cls for label in labels)
        problems += orphan_labels(images)
    return summaries, problems


def require_valid(dataset: Dataset, splits: list[str] | None = None) -> dict[str, SplitSummary]:
    """Validate (the splits given, default all), and raise a DatasetError listing every problem when there are any."""
    summaries, problems = validate(dataset, splits)
    if problems:
        listing = "\n  ".join(str(p) for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise DatasetError(f"{dataset.yaml_path}: {len(problems)} problem(s):\n  {listing}{more}")
    return summaries


def format_summary(dataset: Dataset, summaries: dict[str, SplitSummary], problems: list[Problem]) -> str:
    lines = [f"{dataset.yaml_path}  (root {dataset.root}, {len(dataset.names)} classes)"]
    for split, s in summaries.items():
        lines.append(f"  {split:<5}  {s.images:6d} images  {s.boxes:7d} boxes  {s.backgrounds:5d} backgrounds")
    totals = sum((s.classes for s in summaries.values()), Counter())
    lines.append("  boxes per class: " + "  ".join(f"{n}:{totals[i]}" for i, n in enumerate(dataset.names)))
    lines.append(f"  problems: {len(problems)}")
    lines += [f"    {p}" for p in problems]
    return "\n".join(lines)


@cli.one_line_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m digitdet.labels", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="summarize a dataset and list every problem; exit 1 if any")
    check.add_argument("data", type=Path, help="the dataset's data.yaml")
    args = parser.parse_args(argv)
    dataset = load_dataset(args.data)
    summaries, problems = validate(dataset)
    print(format_summary(dataset, summaries, problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
