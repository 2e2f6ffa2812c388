"""Rotation augmenter: quarter-turn copies (0, 90, 180, 270 degrees counter-clockwise) of a labeled YOLO set.

Images, polygons and boxes are turned together by digitdet.turns: a quarter turn maps an axis-aligned box onto an
axis-aligned box, so the boxes are exact; polygon labels are turned first and boxed after. Sources are never
modified: the output is built in a temporary folder beside OUT_DIR and renamed into place, and every output image
is listed in OUT_DIR/manifest.csv with its source and turn (the column `angle`).

Usage:
    python -m augment.rotate SRC_DATA.yaml OUT_DIR                     # train split: 4 copies; val/test copied
    python -m augment.rotate SRC_DATA.yaml OUT_DIR --splits train val  # turn val too (changes what it measures)
    python -m augment.rotate SRC_DATA.yaml OUT_DIR --turns 0 180 --format jpg --quality 90 --workers 4
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2

from digitdet import cli, workers as pool
from digitdet.atomic import build_into, refuse_overlap
from digitdet.images import exif_orientation, read_image
from digitdet.labels import (SPLITS, DatasetError, Label, load_dataset, label_path, read_labels, require_valid,
                             write_data_yaml, write_labels)
from digitdet.turns import TURNS, check_turns, turn_image, turn_points

MANIFEST_FIELDS = ("split", "source_image", "angle", "output_image")  # angle: the copy's turn (a stable file format)
MIN_JOBS_PER_WORKER = 32  # starting a worker process costs about as much as turning this many images


def turn_label(label: Label, turn: int) -> Label:
    return Label(label.cls, turn_points(label.points, turn))


@dataclass(frozen=True)
class Job:
    """One source image and what to write for it; small and picklable for the worker processes."""

    image: Path
    split: str
    out_root: Path
    turns: tuple[int, ...]
    suffix: str  # output suffix, or "" to keep the source's
    jpeg_quality: int
    n_classes: int

    def output_name(self, turn: int) -> str:
        return f"{self.image.stem}_rot{turn:03d}{self.suffix or self.image.suffix.lower()}"


def write_turns(job: Job) -> list[tuple]:
    """Write the job's turned copies and labels; return its manifest rows."""
    labels = read_labels(label_path(job.image), job.n_classes)
    upright = None
    rows = []
    for turn in job.turns:
        name = job.output_name(turn)
        image_out = job.out_root / "images" / job.split / name
        copy_bytes = turn == 0 and image_out.suffix == job.image.suffix.lower() and exif_orientation(job.image) == 1
        if copy_bytes:  # lossless and fast: the untouched source already is the 0-degree copy
            shutil.copyfile(job.image, image_out)
        else:
            # as displayed: labels refer to that; no pixel limit, as the dataset was validated and training reads it
            upright = read_image(job.image, max_pixels=None) if upright is None else upright
            params = [cv2.IMWRITE_JPEG_QUALITY, job.jpeg_quality] if image_out.suffix in {".jpg", ".jpeg"} else []
            if not cv2.imwrite(str(image_out), turn_image(upright, turn), params):
                raise OSError(f"{image_out}: could not write image")
        write_labels(label_path(image_out), [turn_label(label, turn) for label in labels])
        rows.append((job.split, str(job.image), turn, f"images/{job.split}/{name}"))
    return rows


def copy_unchanged(image: Path, split: str, out_root: Path) -> tuple:
    """Copy a split that is not turned byte for byte, label file included (polygons stay polygons)."""
    image_out = out_root / "images" / split / image.name
    shutil.copyfile(image, image_out)
    if label_path(image).exists():
        shutil.copyfile(label_path(image), label_path(image_out))
    return split, str(image), 0, f"images/{split}/{image.name}"


def refuse_name_clashes(split: str, images: list[Path]) -> None:
    seen: dict[str, Path] = {}
    for image in images:
        if image.stem in seen:
            raise DatasetError(f"{image}: same file name as {seen[image.stem]} in split '{split}'; outputs would clash")
        seen[image.stem] = image


def worker_init() -> None:
    cv2.setNumThreads(1)  # parallelism comes from the processes; more threads only contend for the cores


def run_jobs(jobs: list[Job], workers: int, progress: bool) -> list[tuple]:
    workers = min(workers, len(jobs) // MIN_JOBS_PER_WORKER)
    results = pool.run(write_turns, jobs, workers, initializer=worker_init,
                       chunksize=max(1, min(32, len(jobs) // (8 * max(workers, 1)))),
                       progress=dict(desc="turning", unit="img", disable=not progress))
    return [row for rows in results for row in rows]


def run(data: str | Path, out_dir: str | Path, splits: tuple[str, ...] = ("train",), turns: tuple[int, ...] = TURNS,
        image_format: str = "same", jpeg_quality: int = 95, workers: int = 2, overwrite: bool = False,
        progress: bool = True) -> Path:
    """Write quarter-turn copies of a YOLO dataset and return the new data.yaml.

    Args:
        data: the source data.yaml (ultralytics or Roboflow layout; box or polygon labels).
        out_dir: the folder to create; refused if it exists, unless `overwrite`.
        splits: the splits to turn; the dataset's other splits are copied unchanged.
        turns: counter-clockwise quarter turns to write for each image, from 0, 90, 180, 270.
        image_format: "same" keeps each source's format; "png" or "jpg" converts.
        jpeg_quality: JPEG quality of written JPEGs (1-100).
        workers: worker processes (1 runs in this process).
        overwrite: replace an existing `out_dir` once the new one is complete.
        progress: show a progress bar.
    """
    dataset = load_dataset(data)
    check_turns(turns)
    if bad := [s for s in splits if s not in dataset.splits]:
        raise DatasetError(f"{dataset.yaml_path}: no split {bad} (it has {sorted(dataset.splits)})")
    out_dir = Path(out_dir).resolve()
    refuse_overlap(out_dir, dataset.sources(), dataset.read_folders())
    require_valid(dataset)  # every problem is listed before anything is written
    images = {split: dataset.images(split) for split in dataset.splits}
    for split in dataset.splits:
        refuse_name_clashes(split, images[split])
    suffix = {"same": "", "png": ".png", "jpg": ".jpg"}[image_format]

    with build_into(out_dir, overwrite) as building:
        for split in dataset.splits:
            (building / "images" / split).mkdir(parents=True)
            (building / "labels" / split).mkdir(parents=True)
        jobs = [Job(image, split, building, tuple(turns), suffix, jpeg_quality, len(dataset.names))
                for split in splits for image in images[split]]
        rows = run_jobs(jobs, workers, progress)
        rows += [copy_unchanged(image, split, building)
                 for split in dataset.splits if split not in splits for image in images[split]]
        write_manifest(building / "manifest.csv", rows)
        write_data_yaml(building / "data.yaml", out_dir, dataset.names,
                        {split: f"images/{split}" for split in SPLITS if split in dataset.splits},
                        rotated_splits=list(splits), angles=list(turns), source=str(dataset.yaml_path))
    return out_dir / "data.yaml"


def write_manifest(path: Path, rows: list[tuple]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(MANIFEST_FIELDS)
        writer.writerows(sorted(rows, key=lambda row: (row[0], row[3])))


def read_manifest(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [dict(row, angle=int(row["angle"])) for row in csv.DictReader(f)]


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m augment.rotate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="source data.yaml (YOLO or Roboflow export)")
    parser.add_argument("out_dir", type=Path, help="folder to create with the rotated dataset and its data.yaml")
    parser.add_argument("--splits", nargs="+", default=["train"], choices=SPLITS,
                        help="splits to turn (default: train); the others are copied unchanged")
    parser.add_argument("--turns", "--angles", nargs="+", type=int, default=list(TURNS), choices=TURNS,
                        help="counter-clockwise quarter turns to write (default: 0 90 180 270)")
    parser.add_argument("--format", dest="image_format", default="same", choices=("same", "png", "jpg"),
                        help="output image format (default: same as each source)")
    parser.add_argument("--quality", dest="jpeg_quality", type=cli.integer(1, 100), default=95,
                        help="JPEG quality, 1-100 (default: 95)")
    parser.add_argument("--workers", type=cli.integer(1), default=min(8, os.cpu_count() or 1),
                        help="worker processes")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it exists")
    return parser.parse_args(argv)


@cli.one_line_errors
def main(argv: list[str] | None = None) -> int:
    opt = parse_opt(argv)
    data_yaml = run(opt.data, opt.out_dir, tuple(opt.splits), tuple(opt.turns), opt.image_format,
                    opt.jpeg_quality, opt.workers, opt.overwrite)
    print(f"wrote {data_yaml}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
