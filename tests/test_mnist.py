"""MNIST loader: real files load and split into disjoint pools; bad files give errors that name them."""

import gzip
import shutil

import numpy as np
import pytest

from digitdet import mnist
from digitdet.mnist import MnistError


def write_idx(path, magic, dims, body: bytes):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    path.write_bytes(gzip.compress(header + body))


def test_read_idx_round_trip(tmp_path):
    values = np.arange(2 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(2, 28, 28)
    write_idx(tmp_path / "x.gz", mnist.IMAGES_MAGIC, (2, 28, 28), values.tobytes())
    assert np.array_equal(mnist.read_idx(tmp_path / "x.gz", mnist.IMAGES_MAGIC, (2, 28, 28)), values)


def test_test_set_loads(mnist_dir):
    images, labels = mnist.load(mnist_dir, "test")
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and set(np.unique(labels)) == set(range(10))
    assert images.max() == 255 and images[:, 0, 0].max() == 0  # white digits on black, centred


def test_pools_are_disjoint_parts_of_mnist(mnist_dir):
    pools = mnist.load_pools(mnist_dir)
    train, val, test = pools["train"], pools["val"], pools["test"]
    assert (len(train), len(val), len(test)) == (50_000, 10_000, 10_000)
    assert (train.name(0), train.name(49_999), val.name(0), val.name(9_999), test.name(0)) == (
        "train:0", "train:49999", "train:50000", "train:59999", "test:0")
    images, labels = mnist.load(mnist_dir, "train")
    assert np.array_equal(val.images[0], images[50_000]) and val.labels[-1] == labels[-1]


def test_missing_file_is_named(tmp_path):
    with pytest.raises(MnistError, match="t10k-images-idx3-ubyte.gz: MNIST file not found"):
        mnist.load(tmp_path, "test")


def test_swapped_file_has_wrong_magic(tmp_path, mnist_dir):
    shutil.copy(mnist_dir / "t10k-labels-idx1-ubyte.gz", tmp_path / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(MnistError, match=r"t10k-images-idx3-ubyte.gz: magic number 2049, expected 2051"):
        mnist.load(tmp_path, "test")


def test_cut_gzip_is_reported(tmp_path, mnist_dir):
    data = (mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()
    shutil.copy(mnist_dir / "t10k-images-idx3-ubyte.gz", tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(MnistError, match="t10k-labels-idx1-ubyte.gz: not a complete gzip file"):
        mnist.load(tmp_path, "test")


def test_short_body_is_reported(tmp_path):
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", mnist.LABELS_MAGIC, (10_000,), bytes(9_999))
    with pytest.raises(MnistError, match="t10k-labels-idx1-ubyte.gz: 9999 data bytes, expected 10000"):
        mnist.read_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", mnist.LABELS_MAGIC, (10_000,))


def test_wrong_dimensions_are_reported(tmp_path):
    write_idx(tmp_path / "x.gz", mnist.IMAGES_MAGIC, (3, 28, 27), bytes(3 * 28 * 27))
    with pytest.raises(MnistError, match=r"x.gz: dimensions \(3, 28, 27\), expected \(3, 28, 28\)"):
        mnist.read_idx(tmp_path / "x.gz", mnist.IMAGES_MAGIC, (3, 28, 28))


def test_labels_must_be_digits(tmp_path, mnist_dir):
    shutil.copy(mnist_dir / "t10k-images-idx3-ubyte.gz", tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", mnist.LABELS_MAGIC, (10_000,), bytes([3] * 9_999 + [12]))
    with pytest.raises(MnistError, match="t10k-labels-idx1-ubyte.gz: label 12 is not a digit"):
        mnist.load(tmp_path, "test")


def test_folder_from_argument_then_environment(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "download", lambda *a: pytest.fail("must not download when a folder is given"))
    monkeypatch.setenv(mnist.ENV_VAR, str(tmp_path / "env"))
    assert mnist.mnist_dir(tmp_path / "arg") == tmp_path / "arg"
    assert mnist.mnist_dir() == tmp_path / "env"


def test_download_only_without_a_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(mnist.ENV_VAR, raising=False)
    monkeypatch.setattr("digitdet.runtime.CACHE_DIR", tmp_path)
    fetched = []
    monkeypatch.setattr(mnist, "download", lambda folder, names: fetched.append((folder, names)))
    assert mnist.mnist_dir() == tmp_path / "mnist"
    assert fetched == [(tmp_path / "mnist", [name for files in mnist.FILES.values() for name in files[:2]])]
