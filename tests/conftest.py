"""Shared test setup: offline runtime first, then small fixtures. Every test uses local data only."""

from pathlib import Path

import pytest

from digitdet import runtime

runtime.setup()  # before any test imports ultralytics

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST_DIR = SHARED_DATA / "mnist"
SIGNS_YAML = SHARED_DATA / "roboflow-number-signs" / "data.yaml"


@pytest.fixture(scope="session")
def signs_yaml() -> Path:
    if not SIGNS_YAML.exists():
        pytest.skip(f"{SIGNS_YAML} not found (shared data sits beside the checkout)")
    return SIGNS_YAML
