"""MNIST handwritten digits from the four standard idx .gz files, checked, and split into disjoint digit pools.

The folder comes from an argument or the DIGITDET_MNIST environment variable. Only when neither is given does
`mnist_dir()` fall back to a cache folder, downloading the files into it if they are missing (users with the
internet); tests always pass a folder.

Pools (no digit image is in two of them):
  train  MNIST training digits 0 .. 49,999
  val    MNIST training digits 50,000 .. 59,999
  test   the 10,000 MNIST test digits
"""

from __future__ import annotations

import gzip
import os
import sys
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitdet.labels import DatasetError

ENV_VAR = "DIGITDET_MNIST"
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # idx: 0x0000, type 0x08 (unsigned byte), then 3 or 1 dimensions
SIDE = 28
FILES = {  # set: (images file, labels file, number of digits)
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60_000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10_000),
}
VAL_START = 50_000  # training digits from here on are the val pool
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")


class MnistError(DatasetError):
    """A missing, wrong or truncated MNIST file; the message names it."""


@dataclass(frozen=True)
class Digits:
    """Digit images (N x 28 x 28, white ink on black), their classes, and where each came from in MNIST."""

    images: np.ndarray
    labels: np.ndarray
    source: str  # the MNIST set: "train" or "test"
    first: int  # MNIST index of images[0] in that set

    def __len__(self) -> int:
        return len(self.labels)

    def name(self, i: int) -> str:
        """Where digit i came from, e.g. 'train:51234'."""
        return f"{self.source}:{self.first + i}"


def read_idx(path: Path, magic: int, shape: tuple[int, ...]) -> np.ndarray:
    """The uint8 array of an idx .gz file, after checking its magic number, dimensions and length."""
    if not path.is_file():
        raise MnistError(f"{path}: MNIST file not found")
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as error:  # not gzip, or cut short
        raise MnistError(f"{path}: not a complete gzip file ({error})") from None
    header = 4 + 4 * len(shape)
    if len(data) < header:
        raise MnistError(f"{path}: truncated: {len(data)} bytes, shorter than the idx header")
    found_magic = int.from_bytes(data[:4], "big")
    if found_magic != magic:
        raise MnistError(f"{path}: magic number {found_magic}, expected {magic}; is this the right MNIST file?")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(len(shape)))
    if dims != shape:
        raise MnistError(f"{path}: dimensions {dims}, expected {shape}")
    body = np.frombuffer(data, np.uint8, offset=header)
    if body.size != np.prod(shape):
        raise MnistError(f"{path}: {body.size} data bytes, expected {int(np.prod(shape))} (truncated or padded)")
    return body.reshape(shape)


def load(directory: str | Path, which: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """One MNIST set ('train' or 'test'): images (N x 28 x 28 uint8) and labels (N uint8)."""
    images_name, labels_name, count = FILES[which]
    directory = Path(directory)
    images = read_idx(directory / images_name, IMAGES_MAGIC, (count, SIDE, SIDE))
    labels = read_idx(directory / labels_name, LABELS_MAGIC, (count,))
    if labels.max() > 9:
        raise MnistError(f"{directory / labels_name}: label {labels.max()} is not a digit")
    return images, labels


def load_pools(directory: str | Path, splits: tuple[str, ...] = ("train", "val", "test")) -> dict[str, Digits]:
    """The disjoint digit pools of the page builder's splits (see the module docstring)."""
    pools = {}
    if {"train", "val"} & set(splits):
        images, labels = load(directory, "train")
        pools["train"] = Digits(images[:VAL_START], labels[:VAL_START], "train", 0)
        pools["val"] = Digits(images[VAL_START:], labels[VAL_START:], "train", VAL_START)
    if "test" in splits:
        pools["test"] = Digits(*load(directory, "test"), "test", 0)
    return {split: pools[split] for split in splits}


def mnist_dir(directory: str | Path | None = None) -> Path:
    """The MNIST folder: the argument, else $DIGITDET_MNIST, else a cache folder (downloading into it if needed)."""
    if directory is not None:
        return Path(directory)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    from digitdet.runtime import CACHE_DIR

    cache = CACHE_DIR / "mnist"
    names = [name for images, labels, _ in FILES.values() for name in (images, labels)]
    if not all((cache / name).is_file() for name in names):
        download(cache, names)
    return cache


def download(folder: Path, names: list[str]) -> None:
    """Fetch the MNIST files into `folder`, each written under a temporary name and renamed when complete."""
    folder.mkdir(parents=True, exist_ok=True)
    print(f"No MNIST folder given (--mnist or ${ENV_VAR}): downloading MNIST into {folder}", file=sys.stderr)
    for name in names:
        if (folder / name).is_file():
            continue
        partial = folder / f".{name}.part"
        for mirror in MIRRORS:
            try:
                urllib.request.urlretrieve(mirror + name, partial)
                partial.replace(folder / name)
                break
            except OSError as error:
                print(f"  {mirror + name}: {error}", file=sys.stderr)
        else:
            partial.unlink(missing_ok=True)
            raise MnistError(f"{folder / name}: could not download MNIST (no internet?); pass a folder holding the "
                             f"four idx .gz files with --mnist or ${ENV_VAR}")
