"""Offline setup for ultralytics, matplotlib, onnxruntime and Gradio, run on import of the digitdet package.

`setup()` must run before any of those libraries is imported; digitdet/__init__.py calls it, so importing any
digitdet module (scripts, tests and worker processes all do, first) is enough.

This machine (and many users' machines) cannot reach the internet. Ultralytics otherwise probes DNS on import,
checks PyPI for updates, sends telemetry, pip-installs missing packages and downloads Arial.ttf from GitHub for
its plots; matplotlib and onnxruntime write caches into the home folder; Gradio sends telemetry to api.gradio.app,
asks it for a newer version and keeps uploads in /tmp. Everything here is project-local.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from digitdet.atomic import replaced

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = Path(os.environ.get("DIGITDET_CACHE", PROJECT_ROOT / ".cache"))
FONTS = ("Arial.ttf", "Arial.Unicode.ttf")  # the fonts ultralytics' plots and annotators ask for


def setup() -> Path:
    """Make ultralytics, matplotlib and onnxruntime run with no network access. Idempotent; returns the cache dir."""
    config_dir = CACHE_DIR / "ultralytics"
    os.environ["YOLO_OFFLINE"] = "1"  # no DNS probes, PyPI update checks, telemetry or Sentry
    os.environ["YOLO_AUTOINSTALL"] = "0"  # never pip-install a missing requirement mid-run
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    os.environ.setdefault("MPLCONFIGDIR", str(CACHE_DIR / "matplotlib"))
    os.environ.setdefault("XDG_CACHE_HOME", str(CACHE_DIR / "xdg"))
    os.environ.setdefault("TORCH_HOME", str(CACHE_DIR / "torch"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")  # no display here, and scripts only write PNGs
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no telemetry and no version check against api.gradio.app
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("GRADIO_TEMP_DIR", str(CACHE_DIR / "gradio"))  # the web app's uploads and results
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"  # albumentations asks PyPI for a newer version on every import
    install_fonts(config_dir / "Ultralytics")
    return CACHE_DIR


def install_fonts(folder: Path) -> None:
    """Put matplotlib's DejaVuSans where ultralytics looks for Arial, so it never downloads a font."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in FONTS:
        if not (folder / name).exists():
            import matplotlib  # only its bundled font file is needed

            source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
            with replaced(folder / name) as temporary:  # parallel processes never see half a font
                shutil.copyfile(source, temporary)


def project_path(path: str | Path) -> Path:
    """An absolute path; ultralytics resolves relative ones against its own settings, not the current folder."""
    return Path(path).expanduser().resolve()
