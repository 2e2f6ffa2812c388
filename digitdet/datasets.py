"""Training data derived from a YOLO dataset: classes mapped to digits, the train split turned four ways, cached.

train.py trains on the data.yaml that `prepare_data` returns. The dataset is validated first (every bad image or
label line listed), classes are matched to digits by name ('0'..'9' in any order; others refused unless allowed),
and a derived copy is written when anything must change: the train split turned 0/90/180/270 (augment.rotate),
labels renumbered so that class i is digit i, or, for orientation-aware training, each turned box given the joint
class of its digit at that turn (digitdet.orientation). When nothing changes the images and labels are hard-linked,
so that ultralytics' label cache lands in the copy, never in the user's dataset. Copies live in DERIVED_DIR, keyed
on a fingerprint of the source files (paths, sizes, times) and settings, and are reused until the source changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from ultralytics.utils import LOGGER

from augment import rotate as rotation
from digitdet import runtime
from digitdet.atomic import build_into, refuse_overlap
from digitdet.labels import (DIGITS, DatasetError, Dataset, class_id, label_path, load_dataset, refuse_repeated_names,
                             require_valid, write_data_yaml)
from digitdet.orientation import JOINT_NAMES, joint_class
from digitdet.turns import TURNS

DERIVED_DIR = runtime.CACHE_DIR / "datasets"  # turned / relabeled copies of source datasets
DERIVATION_VERSION = 1  # bump when the derived layout changes, so old copies are not reused


def digit_classes(names: list[str], yaml_path: Path, allow_other_classes: bool = False) -> tuple[list[str], dict]:
    """The class names to train with ('0'..'9', then any other classes) and the map source id -> training id."""
    names = [str(n).strip() for n in names]
    refuse_repeated_names(names, yaml_path)
    others = [n for n in names if n not in DIGITS]
    if others and not allow_other_classes:
        raise DatasetError(f"{yaml_path}: class names {others} are not digits ('0' to '9'); rename them in "
                           f"'names', or pass --allow-other-classes to train them as classes 10, 11, ...")
    trained = DIGITS + others
    return trained, {i: trained.index(n) for i, n in enumerate(names)}


def fingerprint(dataset: Dataset, *settings) -> str:
    """A short hash of the data.yaml, every image and label file (path, size, mtime) and the derivation settings."""
    digest = hashlib.sha256(repr((DERIVATION_VERSION, settings)).encode() + dataset.yaml_path.read_bytes())
    for split in sorted(dataset.splits):
        for image in dataset.images(split):
            for path in (image, label_path(image)):
                stat = path.stat() if path.exists() else None
                digest.update(f"{split}|{path}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def relabel(paths, new_class) -> None:
    """Rewrite the class id of every label line in `paths` as new_class(old id) (boxes and polygons alike)."""
    for path in paths:
        lines = [line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip()]
        path.write_text("".join(f"{new_class(class_id(cls))} {rest}\n" for cls, rest in lines))


def turns_of_labels(root: Path) -> dict[Path, int]:
    """The quarter turn of each written label file, from the rotation augmenter's manifest.csv."""
    rows = rotation.read_manifest(root / "manifest.csv")
    return {label_path(root / row["output_image"]): row["angle"] for row in rows}


def write_copy(dataset: Dataset, building: Path, out: Path, names: list[str], mapping: dict, rotate: bool,
               orientation: bool, workers: int) -> None:
    """A copy in ultralytics' layout: train turned 4 ways (or copied as is), val/test copied, classes renumbered;
    with `orientation`, the turned copies' classes are joint classes (digit x turn, digitdet.orientation)."""
    turns = TURNS if rotate else (0,)
    rotation.run(dataset.yaml_path, building, splits=("train",), turns=turns, workers=workers, overwrite=True)
    if orientation:  # one pass: each box gets the joint class of its digit at its copy's turn
        names, turns = JOINT_NAMES, turns_of_labels(building)
        for path in (building / "labels").rglob("*.txt"):
            relabel([path], lambda cls, turn=turns[path]: joint_class(mapping[cls], turn))
    else:
        relabel((building / "labels").rglob("*.txt"), mapping.__getitem__)
    splits = {split: f"images/{split}" for split in dataset.splits}
    write_data_yaml(building / "data.yaml", out, names, splits, source=str(dataset.yaml_path), rotated=rotate)


def write_links(dataset: Dataset, building: Path, out: Path, names: list[str]) -> None:
    """The source's images and label files in ultralytics' layout, as hard links (copies across file systems).

    No rotation and no renumbering is needed, so nothing is rewritten; but ultralytics writes a label cache beside
    the labels it reads, and that must land here, never in the user's dataset.
    """
    require_valid(dataset)
    for split in dataset.splits:
        images = dataset.images(split)
        rotation.refuse_name_clashes(split, images)
        for image in images:
            link_or_copy(image, building / "images" / split / image.name)
            if label_path(image).exists():
                link_or_copy(label_path(image), building / "labels" / split / label_path(image).name)
    splits = {split: f"images/{split}" for split in dataset.splits}
    write_data_yaml(building / "data.yaml", out, names, splits, source=str(dataset.yaml_path), rotated=False)


def link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed there
        shutil.copyfile(source, target)


def prepare_data(data: str | Path, rotate: bool = True, allow_other_classes: bool = False, workers: int = 1,
                 orientation: bool = False) -> Path:
    """Validate a dataset and return the data.yaml to train on: absolute paths, classes '0'..'9' (+ others), or
    with `orientation` the 40 joint classes (the train split turned 4 ways, each box labelled with its turn)."""
    dataset = load_dataset(data)
    if "val" not in dataset.splits:
        raise DatasetError(f"{dataset.yaml_path}: no 'val' split; training measures the model on it every epoch")
    if orientation and (allow_other_classes or not rotate):
        raise ValueError("orientation-aware training needs the rotated copies and digit classes only "
                         "(it cannot be combined with --no-turns or --allow-other-classes)")
    names, mapping = digit_classes(dataset.names, dataset.yaml_path, allow_other_classes)
    renumber = any(old != new for old, new in mapping.items())
    out = DERIVED_DIR / f"{dataset.root.name}-{fingerprint(dataset, rotate, names, mapping, orientation)}"
    refuse_overlap(out, dataset.sources(), dataset.read_folders())
    if (out / "data.yaml").exists():
        LOGGER.info(f"train.py: reusing {out} (source unchanged)")
        return out / "data.yaml"
    with build_into(out) as building:
        if rotate or renumber:
            write_copy(dataset, building, out, names, mapping, rotate, orientation, workers)
        else:
            write_links(dataset, building, out, names)
    LOGGER.info(f"train.py: training data in {out}" + (" (train split turned 0/90/180/270)" if rotate else ""))
    return out / "data.yaml"

