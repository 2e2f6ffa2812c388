"""digitdet: find and read every handwritten digit in a photo or scanned page (YOLOv8).

Importing the package sets ultralytics, matplotlib, albumentations, onnxruntime and Gradio up to run offline and
keep their caches in the project (digitdet.runtime), so every script, worker process and test has that before any
of those libraries is imported: import digitdet (any module of it) before them.
"""

from digitdet import runtime

runtime.setup()
