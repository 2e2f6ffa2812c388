"""The shipped model (weights/best.pt) on the committed example page: a regression test of the real model.

examples/page.jpg was made by the page builder from MNIST test digits (never trained on); examples/page.json is
its sidecar, the numbers as written. A retrained model must still read them all, as README's first example shows.
"""

import json

import pytest

import detect
from digitdet.detector import DEFAULT_WEIGHTS, Detector
from digitdet.runtime import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "examples" / "page.jpg"


@pytest.fixture(scope="module")
def shipped() -> Detector:
    return Detector(DEFAULT_WEIGHTS)


def written_numbers() -> list[str]:
    return [number["digits"] for number in json.loads(EXAMPLE.with_suffix(".json").read_text())["numbers"]]


def test_shipped_files_stay_small():
    assert DEFAULT_WEIGHTS.stat().st_size < 7 * 2**20
    assert EXAMPLE.stat().st_size < 300 * 2**10


def test_the_shipped_model_reads_the_example_page_as_written(shipped):
    report = detect.run(EXAMPLE, detector=shipped, save_images=False, verbose=False)
    (result,) = report.results
    assert [n.digits for n in result.numbers] == written_numbers()
    assert not report.save_dir.exists()  # nothing to save, no results/detectN folder
