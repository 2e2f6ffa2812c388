"""Offline runtime: a real ultralytics training step and prediction open no network connection."""

import subprocess
import sys
import textwrap

import pytest

from synth import box_line, make_dataset, rectangle_image

# Runs in a fresh interpreter so that ultralytics' import-time probes happen under the patch too.
SCRIPT = textwrap.dedent("""
    import socket, sys
    attempts = []
    def refuse(name):
        def blocked(*args, **kwargs):
            attempts.append((name, repr(args)[:120]))
            raise OSError(f"network access attempted: {name}{args!r}")
        return blocked
    socket.socket.connect = refuse("connect")
    socket.socket.connect_ex = refuse("connect_ex")
    socket.getaddrinfo = refuse("getaddrinfo")
    socket.create_connection = refuse("create_connection")

    import digitdet  # importing the package sets ultralytics up offline
    from ultralytics import YOLO

    data, project = sys.argv[1], sys.argv[2]
    model = YOLO("yolov8n.yaml")
    model.train(data=data, epochs=1, imgsz=64, batch=2, workers=0, device="cpu", project=project, name="net",
                fliplr=0.0, plots=True, verbose=False)
    results = model.predict(data.rsplit("/", 1)[0] + "/images/train", imgsz=64, verbose=False)
    assert len(results) == 2
    print("ATTEMPTS", attempts)
    sys.exit(1 if attempts else 0)
""")


@pytest.mark.slow
def test_training_step_and_prediction_open_no_network_connection(tmp_path):
    boxes = [(10 + i, 12, 30 + i, 40) for i in range(2)]
    items = [(f"{i}.png", rectangle_image(64, 64, box), [box_line(i, box, 64, 64)]) for i, box in enumerate(boxes)]
    data = make_dataset(tmp_path / "set", {"train": items, "val": items})
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(data), str(tmp_path / "runs")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ATTEMPTS []" in result.stdout
    assert (tmp_path / "runs" / "net" / "weights" / "last.pt").exists()
    assert (tmp_path / "runs" / "net" / "results.png").exists()  # plots drew text with the local font
