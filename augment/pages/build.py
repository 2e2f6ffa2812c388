"""Writing a dataset: images made in chunks by worker processes, with labels, sidecars and data.yaml (`run`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from augment import photo
from augment.pages import fonts
from augment.pages.closeups import CloseUp
from augment.pages.layout import Layout, WrittenNumber
from augment.pages.mix import MIXES, chance
from augment.pages.preview import write_preview
from augment.pages.render import render
from augment.pages.writer import Sources, Writer
from digitdet import mnist
from digitdet import workers as pool
from digitdet.atomic import build_into, refuse_overlap
from digitdet.boxes import as_boxes, enclosing, to_yolo
from digitdet.labels import DIGITS, SPLITS, label_path, numbers_path, write_data_yaml, yolo_line
from digitdet.reading import group_lines

COUNTS = {"train": 8000, "val": 1000, "test": 1000}
CHUNK = 16  # pages per worker task
MIN_PAGES_PER_WORKER = 50  # starting a worker process (about 1 s: OpenCV, albumentations) costs about this


def reading_order(numbers: list[WrittenNumber]) -> list[WrittenNumber]:
    """Numbers top to bottom by line, left to right within a line: by detect.py's own line rule (digitdet.reading),
    so that pages are scored against the order their reader uses."""
    boxes = as_boxes([n.box for n in numbers])
    lines = group_lines(boxes, [[i] for i in range(len(numbers))], slope=0.0)
    return [numbers[members[0]] for line in lines for members in line]


def plan_page(rng: np.random.Generator, sources: Sources, size: int) -> Layout:
    """A random layout: a close-up now and then (as the mix has them), else a page `size` pixels square."""
    return (CloseUp if chance(rng, sources.mix.close_ups) else Writer)(rng, sources, size).plan()


def make_page(rng: np.random.Generator, sources: Sources, size: int) -> tuple[np.ndarray, Layout, np.ndarray]:
    """An image: (RGB image, its layout with the numbers in reading order, each digit's box after the photo
    effects)."""
    layout = plan_page(rng, sources, size)
    layout.numbers = reading_order(layout.numbers)
    image = render(layout)
    digits = [d for n in layout.numbers for d in n.digits]
    outlines = photo.outlines([d.hull for d in digits], [(d.x, d.y) for d in digits])
    image, boxes = photo.photograph(image, *outlines, int(rng.integers(2**31)))
    return image, layout, boxes


def page_record(name: str, layout: Layout, boxes: np.ndarray) -> dict:
    """The sidecar JSON of an image: its numbers in reading order with their boxes in pixels (rows of `boxes`) and
    where each digit comes from."""
    records, boxes = [], iter(np.round(np.asarray(boxes, np.float64), 2).tolist())
    for number in layout.numbers:
        digit_boxes = [next(boxes) for _ in number.digits]
        records.append({"digits": "".join(str(d.cls) for d in number.digits),
                        "box": list(enclosing(digit_boxes)),
                        "digit_boxes": digit_boxes,
                        "sources": [d.source for d in number.digits]})
    return {"image": name, "width": layout.width, "height": layout.height, "kind": layout.kind, "numbers": records}


def page_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Each page's own random stream, so a page does not depend on the others or on the workers."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SPLITS.index(split), index)))


def load_sources(mnist_folder: Path, shown: dict[str, fonts.Fonts], mix: str = "full") -> dict[str, Sources]:
    """Each split's MNIST pool, the fonts it shows (fonts.for_split) and the mix (mix.MIXES)."""
    pools = mnist.load_pools(mnist_folder, tuple(shown))
    return {split: Sources(pools[split], shown[split], MIXES[mix]) for split in shown}


_sources: dict[str, Sources] = {}


def start_worker(mnist_folder: Path, shown: dict[str, fonts.Fonts], mix: str) -> None:
    """Load the digit pools once per process; worker processes run in parallel, so one OpenCV thread each."""
    cv2.setNumThreads(1)
    _sources.update(load_sources(mnist_folder, shown, mix))


@dataclass(frozen=True)
class Chunk:
    split: str
    start: int
    stop: int
    out_root: Path
    size: int
    seed: int


def write_chunk(chunk: Chunk) -> int:
    """Write pages start..stop-1 of a split; return how many."""
    for index in range(chunk.start, chunk.stop):
        image, layout, boxes = make_page(page_rng(chunk.seed, chunk.split, index), _sources[chunk.split], chunk.size)
        path = chunk.out_root / "images" / chunk.split / f"{index:06d}.jpg"
        if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise OSError(f"{path}: could not write image")
        classes = [d.cls for n in layout.numbers for d in n.digits]
        label_path(path).write_text(yolo_lines(classes, boxes, layout.width, layout.height))
        numbers_path(path).write_text(json.dumps(page_record(path.name, layout, boxes)))
    return chunk.stop - chunk.start


def yolo_lines(classes: list[int], boxes: np.ndarray, width: int, height: int) -> str:
    """An image's label file: one line per box (x1, y1, x2, y2 in pixels).

    Normalized for all boxes at once: a Label per box costs about 1 ms a page.
    """
    return "".join(yolo_line(cls, *box) + "\n" for cls, box in zip(classes, to_yolo(boxes, width, height).tolist()))


def write_chunks(chunks: list[Chunk], mnist_folder: Path, sources: dict[str, Sources], mix: str, workers: int,
                 progress: bool) -> None:
    """Write the chunks here with `sources`, or in worker processes that load the MNIST pools again from
    `mnist_folder` and are sent the fonts and the mix's name."""
    total = sum(c.stop - c.start for c in chunks)
    workers = min(workers, total // MIN_PAGES_PER_WORKER)
    _sources.update(sources)  # for this process's own chunks (workers <= 1)
    try:
        pool.run(write_chunk, chunks, workers, initializer=start_worker,
                 initargs=(mnist_folder, {split: s.fonts for split, s in sources.items()}, mix),
                 progress={"total": total, "desc": "pages", "unit": "page", "disable": not progress}, count=int)
    finally:
        _sources.clear()


def run(mnist_dir: str | Path | None, out_dir: str | Path, counts: dict[str, int] | None = None, size: int = 640,
        seed: int = 0, workers: int = 2, overwrite: bool = False, progress: bool = True,
        preview: str | Path | None = None, mix: str = "full") -> Path:
    """Build a dataset of synthetic pages and close-ups and return its data.yaml.

    Args:
        mnist_dir: folder with the four MNIST idx .gz files; None: $DIGITDET_MNIST, else download (digitdet.mnist).
        out_dir: the folder to create; refused if it exists, unless `overwrite`.
        counts: pages per split, e.g. {"train": 8000, "val": 1000, "test": 1000}; splits with 0 are left out.
        size: page side in pixels (pages are square; close-ups are smaller, of several shapes).
        seed: the random seed; the same seed gives the same files.
        workers: worker processes (1 runs in this process).
        overwrite: replace an existing `out_dir` once the new one is complete.
        progress: show a progress bar.
        preview: if given, write a contact sheet of 16 images with their boxes and digits to this PNG.
        mix: what the images hold, a name of mix.MIXES: "full", or "mnist" (MNIST handwriting on pages only).
    """
    counts = {split: n for split, n in (COUNTS if counts is None else counts).items() if n > 0}
    if bad := set(counts) - set(SPLITS):
        raise ValueError(f"unknown splits {sorted(bad)}; splits are {SPLITS}")
    if "train" not in counts:
        raise ValueError("a dataset needs train pages")
    if size < 64:
        raise ValueError(f"page size {size} is too small (at least 64 pixels)")
    if mix not in MIXES:
        raise ValueError(f"unknown mix {mix!r}; mixes are {sorted(MIXES)}")
    folder = mnist.mnist_dir(mnist_dir)
    splits = tuple(counts)
    found = fonts.find() if MIXES[mix].fonts else {}  # warns once about missing fonts
    shown = {split: fonts.for_split(found, split) for split in splits}
    sources = load_sources(folder, shown, mix)  # checks the MNIST files before anything is written
    out_dir = Path(out_dir).resolve()
    refuse_overlap(out_dir, [folder])
    with build_into(out_dir, overwrite) as building:
        for split in splits:
            for kind in ("images", "labels", "numbers"):
                (building / kind / split).mkdir(parents=True)
        chunks = [Chunk(split, start, min(start + CHUNK, n), building, size, seed)
                  for split, n in counts.items() for start in range(0, n, CHUNK)]
        write_chunks(chunks, folder, sources, mix, workers, progress)
        write_data_yaml(building / "data.yaml", out_dir, DIGITS, {split: f"images/{split}" for split in splits},
                        generator="augment.pages", seed=seed, size=size, counts=counts, mix=mix,
                        mnist=str(folder.resolve()),
                        fonts={split: [face.name for face in f.hands + f.typefaces] for split, f in shown.items()},
                        missing_fonts=[f.name for f in fonts.FONTS if f.name not in found] if MIXES[mix].fonts else [])
    if preview is not None:
        write_preview(out_dir, Path(preview))
    return out_dir / "data.yaml"
