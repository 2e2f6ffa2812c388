"""Shared test setup: offline runtime first, then small fixtures. Every test uses local data only."""

import os
from pathlib import Path

import pytest

import digitdet  # noqa: F401 - before any test imports ultralytics: it sets it up offline

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST_DIR = SHARED_DATA / "mnist"
SIGNS_YAML = SHARED_DATA / "roboflow-number-signs" / "data.yaml"


def require_shared(path: Path) -> Path:
    """Shared data sits beside the checkout; a developer without it skips, CI (which always has it) fails."""
    if not path.exists():
        message = f"{path} not found (shared data sits beside the checkout, in ../shared/data)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    return path


def pytest_collection_modifyitems(items):
    """A test that needs tiny_model is slow: the model is trained for it (once per session)."""
    for item in items:
        if "tiny_model" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def signs_yaml() -> Path:
    return require_shared(SIGNS_YAML)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return require_shared(MNIST_DIR / "t10k-images-idx3-ubyte.gz").parent


@pytest.fixture(scope="session")
def tiny_pages(tmp_path_factory, mnist_dir) -> Path:
    """A few generated pages of MNIST handwriting (train 12, val 4, test 4, 320 x 320); returns its data.yaml.

    The "mnist" mix: the pages the shipped model was trained on, so that comparisons on them measure the tools, not
    how the model copes with print and close-ups (tests/test_pages.py builds the full mix)."""
    from augment import pages

    out = tmp_path_factory.mktemp("tiny") / "pages"
    return pages.run(mnist_dir, out, counts={"train": 12, "val": 4, "test": 4}, size=320, seed=0, workers=1,
                     progress=False, mix="mnist")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_pages) -> Path:
    """yolov8n trained from scratch for a few epochs on tiny_pages at imgsz 160: weak, but a real model."""
    import train
    from digitdet import datasets

    project = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:  # derived data.yaml files go beside the run, not into .cache/
        patch.setattr(datasets, "DERIVED_DIR", project / "datasets")
        run_dir = train.run(data=tiny_pages, epochs=3, imgsz=160, batch=8, workers=0, project=project, name="tiny",
                            rotate=False)
    return run_dir / "weights" / "best.pt"
