"""The shipped model (weights/best.pt) on the committed example page: a regression test of the real model.

examples/page.jpg was made by the page builder from held-out sources (MNIST test digits, never trained on, and a
phone number printed in Andika, a typeface training never shows): 23 digits in 7 numbers; examples/page.json is its
sidecar, the numbers as written. A retrained model must still read them all, as README's first example shows.
"""

import json

import cv2
import pytest
import torch

import detect
from digitdet.detector import DEFAULT_WEIGHTS, Detector, letterbox, to_input
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


def test_bf16_inference_finds_the_boxes_of_fp32():
    """Under bf16 the convolutions round (the outputs differ from fp32's), but the boxes are decoded in fp32: each
    digit's box stays within half a pixel of fp32's (2.3 pixels off when decoded in bf16), and its score within a few
    hundredths."""
    fp32, bf16 = (Detector(DEFAULT_WEIGHTS, precision=precision) for precision in ("fp32", "bf16"))
    assert (fp32.backend.precision, bf16.backend.precision) == ("fp32", "bf16")
    image, _ = letterbox(cv2.imread(str(EXAMPLE)), fp32.imgsz)
    exact, rounded = (detector.backend(to_input([image]))[0] for detector in (fp32, bf16))
    digits = exact[4:].max(0).values > 0.25
    assert digits.sum() >= 2 and not torch.equal(exact, rounded)
    assert (exact[:4, digits] - rounded[:4, digits]).abs().max() < 0.5
    assert (exact[4:, digits] - rounded[4:, digits]).abs().max() < 0.05
