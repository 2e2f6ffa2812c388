"""detect.py and digitdet.detector: boxes in original pixels, EXIF, formats, tiling, bad files, JSON and CSV.

Model tests use the tiny_model fixture (weak, trained for a few epochs), so their assertions hold for any model:
the same pixels reach the model whatever the route, and the boxes must follow the geometry exactly.
"""

import csv
import json
import math
import re
import shutil

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import detect
from digitdet import detector as det
from digitdet import draw, results
from digitdet.detector import Detections, Detector, Window
from digitdet.images import ImageReadError, read_image
from fakes import FixedBackend, InkBlobs, draw_digits, written

LOW_CONF = 0.001  # a weak model's scores are low; geometry must hold for every box it gives


def page_files(tiny_pages):
    return sorted((tiny_pages.parent / "images" / "test").glob("*.jpg"))


@pytest.fixture(scope="module")
def page(tiny_pages) -> np.ndarray:
    return read_image(page_files(tiny_pages)[0])


# ---- letterbox, NMS, tiles, merge: exact arithmetic, no model ----

@pytest.mark.parametrize("height, width", [(300, 500), (500, 300), (123, 457), (1000, 1000), (60, 90)])
def test_letterbox_maps_boxes_back_to_original_pixels(height, width):
    image = np.full((height, width, 3), 255, np.uint8)
    x1, y1, x2, y2 = round(width * 0.3), round(height * 0.4), round(width * 0.7), round(height * 0.9)
    image[y1:y2, x1:x2] = 0
    boxed, lb = det.letterbox(image, 160)
    assert boxed.shape == (160, 160, 3)
    ys, xs = np.nonzero(boxed[..., 0] < 60)  # the dark rectangle in the model's input (the padding is grey 114)
    found = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32)
    mapped = det.to_window_pixels(found, lb, Window(0, 0, width, height))[0]
    tolerance = 1.5 / min(lb.gain_x, lb.gain_y)  # one input pixel of resampling blur, in original pixels
    np.testing.assert_allclose(mapped, [x1, y1, x2, y2], atol=tolerance)
    assert abs(lb.pad_x - (160 - round(width * lb.gain_x)) / 2) <= 0.5  # centred like ultralytics
    assert abs(lb.pad_y - (160 - round(height * lb.gain_y)) / 2) <= 0.5


def test_nms_matches_ultralytics_and_keeps_class_scores():
    from ultralytics.utils.nms import non_max_suppression

    generator = torch.Generator().manual_seed(0)
    n, nc = 400, 10
    centres = torch.rand(2, n, generator=generator) * 140 + 10
    sizes = torch.rand(2, n, generator=generator) * 30 + 5
    scores = torch.rand(nc, n, generator=generator) ** 4
    raw = torch.cat([centres, sizes, scores])[None]  # (1, 4 + nc, anchors) as the model's head gives
    ours = det.nms(raw, 0.25, 0.5, 300)[0]
    theirs = non_max_suppression(raw, 0.25, 0.5, max_det=300)[0]
    assert len(ours[0]) == len(theirs) > 10
    torch.testing.assert_close(ours[0], theirs[:, :4])
    torch.testing.assert_close(ours[1].max(1).values, theirs[:, 4])
    torch.testing.assert_close(ours[1].argmax(1).float(), theirs[:, 5])
    assert ours[1].shape[1] == nc  # every class score survives, for the top-3


def test_tiles_cover_large_images_with_overlap_and_only_when_needed():
    assert det.plan_windows(640, 640, 640) == [Window(0, 0, 640, 640, whole=True)]
    assert len(det.plan_windows(1280, 960, 640)) == 1  # 40 px digits are still 20 px at the input
    windows = det.plan_windows(4000, 3000, 640)
    assert windows[0].whole and len(windows) > 1
    side = det.TILE_SHRINK * 640
    coverage = np.zeros((3000, 4000), np.uint8)
    for w in windows[1:]:
        assert 0 <= w.x0 < w.x1 <= 4000 and 0 <= w.y0 < w.y1 <= 3000
        assert (w.x1 - w.x0, w.y1 - w.y0) == (side, side)
        coverage[w.y0:w.y1, w.x0:w.x1] += 1
    assert coverage.min() >= 1
    xs = sorted({w.x0 for w in windows[1:]})
    assert all(side - (b - a) >= det.TILE_OVERLAP * side for a, b in zip(xs, xs[1:]))
    forced = det.plan_windows(300, 200, 640, tile=True)
    assert len(forced) >= 1 + 2 and all(w.x1 <= 300 and w.y1 <= 200 for w in forced)
    assert len(det.plan_windows(4000, 3000, 640, tile=False)) == 1


def test_merge_drops_cut_digits_and_duplicates_but_keeps_neighbours():
    width = height = 1000
    whole, left, right = Window(0, 0, 1000, 1000, True), Window(0, 0, 600, 1000), Window(400, 0, 1000, 1000)
    boxes = np.array([
        [560, 100, 600, 150],  # cut by the left tile's right edge (its inner edge)
        [560, 100, 620, 150],  # the same digit, whole in the right tile
        [100, 300, 140, 350], [145, 300, 185, 350],  # two neighbouring digits, left tile
        [102, 302, 141, 351],  # the first of them again, from the whole-image pass, less sure
        [0, 500, 40, 550],  # at the image's own left edge: not cut by a tile
    ], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.7, 0.6, 0.5])
    windows = [left, right, left, left, whole, left]
    kept = det.merge(boxes, scores, windows, width, height)
    assert sorted(kept.tolist()) == [1, 2, 3, 5]


# ---- reading images ----

def turned_by_exif(upright: np.ndarray, orientation: int) -> np.ndarray:
    """Stored pixels that a viewer shows as `upright` given the EXIF orientation (the inverse of displaying)."""
    inverse = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
               5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, 1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
               8: lambda a: np.rot90(a, -1)}
    return np.ascontiguousarray(inverse[orientation](upright))


def save_with_orientation(pixels_bgr: np.ndarray, path, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels_bgr[..., ::-1]).save(path, quality=95, exif=exif)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_shows_the_upright_pixels(tmp_path, orientation):
    upright = np.zeros((48, 80, 3), np.uint8)
    upright[:, :40] = (255, 255, 255)  # left half white
    upright[:16] = (0, 0, 255)  # top band red: any wrong turn or mirror moves one of them
    path = tmp_path / "photo.jpg"
    save_with_orientation(turned_by_exif(upright, orientation), path, orientation)
    pixels = read_image(path)
    assert pixels.shape == upright.shape
    assert np.abs(pixels.astype(int) - upright).mean() < 4
    np.testing.assert_array_equal(pixels, cv2.imread(str(path), cv2.IMREAD_COLOR))  # OpenCV agrees


def test_grayscale_rgba_and_16_bit_images(tmp_path):
    gray = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (5, 1))
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    np.testing.assert_array_equal(read_image(tmp_path / "gray.png"), np.dstack([gray] * 3))

    rgba = np.zeros((4, 6, 4), np.uint8)  # black ink everywhere, but only the left half is opaque
    rgba[:, :3, 3] = 255
    cv2.imwrite(str(tmp_path / "ink.png"), rgba)
    pixels = read_image(tmp_path / "ink.png")
    assert (pixels[:, :3] == 0).all() and (pixels[:, 3:] == 255).all()  # transparent means paper, not black

    deep = np.array([[0, 257 * 100, 65535]], np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    np.testing.assert_array_equal(read_image(tmp_path / "deep.png")[0, :, 0], [0, 100, 255])

    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        read_image(tmp_path / "broken.jpg")


def test_annotations_are_legible_on_white_and_on_black():
    detections = Detections(np.array([[20, 30, 60, 90]], np.float32), np.array([0.87], np.float32),
                            np.array([4]), np.array([[4, 9, 1]]), np.array([[0.87, 0.1, 0.01]], np.float32))
    for background in (0, 255):
        image = np.full((120, 120, 3), background, np.uint8)
        drawn = draw.annotate(image, detections, [str(i) for i in range(10)])
        edge = drawn[30:91, 18:23].reshape(-1, 3).astype(int)  # across the box's left edge
        assert np.abs(edge - background).max(axis=1).max() > 150  # something stands out from the background
        assert (drawn[:30, 20:60] != background).any()  # the label above the box
        assert (image == background).all()  # the input is not drawn on


# ---- the whole pipeline around a stand-in model with known answers ----

@pytest.fixture
def blobs() -> Detector:
    return Detector("ink-blobs", backend=InkBlobs())


def assert_found(detections: Detections, digits, tolerance: float):
    """Each drawn digit found exactly once, with its class, its box within `tolerance` pixels, and top-3 scores."""
    assert len(detections) == len(digits)
    for digit, *box in digits:
        error = np.abs(detections.boxes - np.array(box, np.float32)).max(axis=1)
        i = int(error.argmin())
        assert error[i] <= tolerance, (digit, box, detections.boxes[i])
        assert detections.classes[i] == digit
        assert detections.top_classes[i].tolist() == [digit, (digit + 1) % 10, (digit + 2) % 10]
        np.testing.assert_allclose(detections.top_scores[i], [0.9, 0.3, 0.1], atol=1e-6)


def test_boxes_in_original_pixels_for_any_input_size(blobs):
    paper = np.full((200, 320, 3), 255, np.uint8)  # not square: the letterbox pads top and bottom
    digits = written(["4821 07", "15"], x0=30, y0=40, height=40, width=24, pitch=30, space=30, line_pitch=70)
    image = draw_digits(paper, digits)
    for scale in (1, 2, 3):
        big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        scaled = [(d, *(scale * v for v in box)) for d, *box in digits]
        (found,) = blobs.detect([big], tile=False)
        assert_found(found, scaled, tolerance=1.01 * 2 * scale)  # a blob edge pixel at the input is 2 x scale
    small = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)  # enlarged at the input
    (found,) = blobs.detect([small], tile=False)
    assert_found(found, [(d, *(v / 2 for v in box)) for d, *box in digits], tolerance=1.01)


def test_exif_rotated_jpeg_gives_the_boxes_of_the_upright_image(blobs, tmp_path):
    digits = written(["90 3", "512"], x0=40, y0=30, height=48, width=28, pitch=36, space=40, line_pitch=80)
    upright = draw_digits(np.full((200, 320, 3), 255, np.uint8), digits)
    for orientation in (3, 6, 8):
        photo = tmp_path / f"phone{orientation}.jpg"
        save_with_orientation(turned_by_exif(upright, orientation), photo, orientation)
        report = detect.run(photo, detector=blobs, save_dir=tmp_path / "out", save_json=True, verbose=False)
        (result,) = report.results
        assert (result.width, result.height) == (320, 200)
        assert_found(result.detections, digits, tolerance=4.01)  # JPEG blurs edges by a pixel at the input
        assert [n.digits for n in result.numbers] == ["90", "3", "512"]


def test_tiling_finds_40_pixel_digits_in_a_large_photo(blobs):
    width, height = 12 * blobs.imgsz, 9 * blobs.imgsz  # as a 4000 x 3000 photo is for imgsz 333
    windows = det.plan_windows(width, height, blobs.imgsz)
    assert len(windows) > 1  # tiled automatically
    rng = np.random.default_rng(0)
    digits = []
    for n in range(40):  # 40 pixels tall, anywhere: many across tile edges
        x, y = int(rng.integers(0, width - 30)), int(rng.integers(0, height - 40))
        if all(x + 60 < d[1] or d[3] + 30 < x or y + 70 < d[2] or d[4] + 30 < y for d in digits):  # 30 apart
            digits.append((n % 10, x, y, x + 30, y + 40))
    photo = draw_digits(np.full((height, width, 3), 255, np.uint8), digits)
    seams = [d for d in digits if any(w.x0 < d[1] < w.x1 < d[3] or w.y0 < d[2] < w.y1 < d[4] for w in windows[1:])]
    assert len(seams) >= 5  # the merge is put to the test

    (untiled,) = blobs.detect([photo], tile=False)
    assert len(untiled) == 0  # 40 pixels shrink to 3 at the model's input: a model misses them
    blobs.backend.calls = 0
    (tiled,) = blobs.detect([photo])
    assert tiled.windows == len(windows)
    assert blobs.backend.calls == -(-len(windows) // blobs.batch)  # windows go through in batches
    assert_found(tiled, digits, tolerance=2.01)  # an edge pixel at the input is 2 pixels here


def test_pages_of_small_digits_are_tiled_and_pages_of_large_ones_are_not(blobs):
    side = 2 * blobs.imgsz  # the input shows the page at half size
    paper = np.full((side, side, 3), 255, np.uint8)
    for height, tiled in ((2 * det.SMALL_DIGITS + 4, False), (2 * det.SMALL_DIGITS - 4, True)):  # 50, 46 px in
        digits = [(3, 20, 20, 60, 20 + height), (7, 120, 20, 160, 20 + height)]
        (found,) = blobs.detect([draw_digits(paper, digits)])
        assert found.windows == (1 + len(det.tiles(side, side, blobs.imgsz)) if tiled else 1), height
        assert_found(found, digits, tolerance=2.01)

    large = [(1, 20, 20, 60, 130)]  # one large digit beside many small ones: the median decides
    tall = [(d, 20 + 14 * i, 200, 30 + 14 * i, 220) for i, d in enumerate([4, 5, 6])]  # 10 px at the input
    (found,) = blobs.detect([draw_digits(paper, large + tall)])
    assert found.windows > 1


def test_tiles_find_the_digits_too_small_for_the_whole_page(blobs):
    side = 2 * blobs.imgsz
    found_whole = written(["4821", "07"], x0=20, y0=20, height=20, width=12, pitch=20, space=20, line_pitch=60)
    too_small = written(["15"], x0=20, y0=200, height=14, width=9, pitch=20, space=20, line_pitch=0)
    page = draw_digits(np.full((side, side, 3), 255, np.uint8), found_whole + too_small)  # 10 and 7 px in
    (whole,) = blobs.detect([page], tile=False)
    assert_found(whole, found_whole, tolerance=2.01)  # a stand-in model misses digits under 8 px at its input
    (tiled,) = blobs.detect([page])
    assert tiled.windows > 1
    assert_found(tiled, found_whole + too_small, tolerance=2.01)  # a tile shows them 1.7x larger


def test_only_confident_digits_decide_the_tiles():
    boxes = np.array([[0, 0, 10, 100], [0, 0, 10, 100], [0, 0, 10, 20]], np.float32)  # 100, 100, 20 px tall
    scores = torch.tensor([[0.9, 0.0], [0.0, 0.3], [0.2, 0.1]])
    assert not det.small_digits(boxes, scores, gain=1.0)  # median of 100 and 100: the 20 px box is not confident
    assert det.small_digits(boxes, scores, gain=0.4)  # 40 px at the input
    assert not det.small_digits(boxes[2:], scores[2:], gain=1.0)  # no confident digit: nothing to decide on
    assert not det.small_digits(np.zeros((0, 4), np.float32), torch.zeros(0, 2), gain=1.0)


def test_small_images_are_enlarged_at_most_max_gain(blobs):
    """An image smaller than the input is enlarged MAX_GAIN times and padded, not enlarged to fill the input (the
    model misses digits far larger than it was trained on); max_gain=inf fills it, as ultralytics does."""
    image = np.full((40, 60, 3), 255, np.uint8)
    for max_gain, (x1, y1, x2, y2) in ((det.MAX_GAIN, (35, 50, 125, 110)), (math.inf, (0, 26, 160, 133))):
        backend = FixedBackend(imgsz=160)
        Detector("fixed", max_gain=max_gain, backend=backend).detect([image], tile=False)
        (batch,) = backend.inputs
        ys, xs = np.nonzero((batch[0] != det.PAD_VALUE / 255).any(0))  # the image's pixels among the padding
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x1, y1, x2, y2), max_gain
    backend = FixedBackend(imgsz=160)
    Detector("fixed", backend=backend).detect([image], tile=True)
    (batch,) = backend.inputs
    assert len(batch) == 1 + len(det.tiles(60, 40, 160))
    assert (batch[1:] != det.PAD_VALUE / 255).any(1).all()  # tiles (36 pixels) still fill the input: 4.4x

    digits = written(["905", "27"], x0=10, y0=10, height=20, width=12, pitch=16, space=16, line_pitch=30)
    (found,) = blobs.detect([draw_digits(np.full((70, 90, 3), 255, np.uint8), digits)], tile=False)
    assert_found(found, digits, tolerance=1.01)  # a blob edge pixel at the input is 1 / 1.5 pixels here

    side, height = 100, 31  # the input shows this page 1.5x (not 1.6x): digits 46.5 px tall, under SMALL_DIGITS
    paper = draw_digits(np.full((side, side, 3), 255, np.uint8), [(3, 10, 10, 30, 10 + height), (7, 50, 10, 70, 41)])
    assert height * det.MAX_GAIN < det.SMALL_DIGITS < height * blobs.imgsz / side
    (found,) = blobs.detect([paper])
    assert found.windows == 1 + len(det.tiles(side, side, blobs.imgsz))  # tiled for the size the model saw
    (filled,) = Detector("ink-blobs", max_gain=math.inf, backend=InkBlobs()).detect([paper])
    assert filled.windows == 1


def test_json_csv_and_terminal_line_of_a_known_page(blobs, tmp_path, capsys):
    digits = written(["4821 07", "15"], x0=30, y0=40, height=40, width=24, pitch=30, space=30, line_pitch=70)
    page = tmp_path / "page.png"
    cv2.imwrite(str(page), draw_digits(np.full((200, 320, 3), 255, np.uint8), digits))
    detect.run([page], detector=blobs, save_dir=tmp_path / "out", save_json=True, save_csv=True, tile=False)
    line = capsys.readouterr().out.splitlines()[0]
    assert re.fullmatch(r"page\.png: 8 digits, 3 numbers: 4821 07 15 \(\d+ ms\)", line), line

    (record,) = json.loads((tmp_path / "out" / "detections.json").read_text())["images"]
    assert (record["image"], record["width"], record["height"], record["tiles"]) == (str(page), 320, 200, 0)
    assert [(n["digits"], n["line"]) for n in record["numbers"]] == [("4821", 0), ("07", 0), ("15", 1)]
    found = record["digits"]
    for number in record["numbers"]:
        assert "".join(found[i]["digit"] for i in number["members"]) == number["digits"]
        members = [found[i]["box"] for i in number["members"]]
        assert number["box"] == [min(b[0] for b in members), min(b[1] for b in members),
                                 max(b[2] for b in members), max(b[3] for b in members)]
    for d in found:
        k = int(d["digit"])
        assert d["confidence"] == 0.9
        assert d["top3"] == [{"digit": str(k), "p": 0.9}, {"digit": str((k + 1) % 10), "p": 0.3},
                             {"digit": str((k + 2) % 10), "p": 0.1}]
        truth = next(box for digit, *box in digits if digit == k and abs(box[0] - d["box"][0]) <= 2)
        np.testing.assert_allclose(d["box"], truth, atol=2.01)

    rows = list(csv.DictReader((tmp_path / "out" / "detections.csv").open()))
    assert list(rows[0]) == list(results.CSV_FIELDS)
    assert len(rows) == len(found)
    for row in rows:
        d = found[int(row["digit_index"])]
        assert [float(row[k]) for k in ("x1", "y1", "x2", "y2")] == d["box"]
        assert (row["digit"], float(row["confidence"])) == (d["digit"], d["confidence"])
        assert [(row[f"top{k}"], float(row[f"p{k}"])) for k in (1, 2, 3)] == [(t["digit"], t["p"]) for t in d["top3"]]
        number = record["numbers"][int(row["number_index"])]
        assert row["number"] == number["digits"]
        assert number["members"][int(row["position_in_number"])] == int(row["digit_index"])


# ---- with a real (tiny, weak) model: loading, batching, the command line, ONNX ----

def test_bad_files_are_reported_and_skipped(tiny_model, tiny_pages, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(page_files(tiny_pages)[0], folder / "good.jpg")
    (folder / "corrupt.jpg").write_bytes(np.random.default_rng(0).bytes(2000))
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image, and not in a folder's image list")
    out = tmp_path / "out"
    code = detect.main([str(folder), str(tmp_path / "missing.png"), "--weights", str(tiny_model), "--save-dir",
                        str(out), "--json", "--conf", str(LOW_CONF)])
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("good.jpg: ")
    for name in ("corrupt.jpg", "empty.png", "missing.png"):
        assert name in captured.err
    assert "notes.txt" not in captured.err + captured.out
    assert (out / "good.jpg").exists() and not (out / "corrupt.jpg").exists()
    records = json.loads((out / "detections.json").read_text())["images"]
    assert [r["image"].split("/")[-1] for r in records if "error" in r] == ["missing.png", "corrupt.jpg", "empty.png"]
    assert [r["image"].split("/")[-1] for r in records if "error" not in r] == ["good.jpg"]

    assert detect.main([str(folder / "good.jpg"), "--weights", str(tmp_path / "none.pt")]) == 1
    assert "none.pt: model file not found" in capsys.readouterr().err


def test_a_batch_gives_each_image_its_own_digits(blobs, tiny_model, tiny_pages):
    papers = [np.full((200, 320, 3), 255, np.uint8), np.full((320, 320, 3), 255, np.uint8),
              np.full((1600, 1200, 3), 255, np.uint8)]  # the last one is tiled: windows of images mix in batches
    drawn = [[(k, 40 + 50 * k, 60, 70 + 50 * k, 100) for k in range(n)] for n in (1, 3, 5)]
    images = [draw_digits(paper, digits) for paper, digits in zip(papers, drawn)]
    blobs.batch = 4
    for found, digits in zip(blobs.detect(images), drawn):
        assert_found(found, digits, tolerance=2.01)  # an input pixel is 2 image pixels in each case

    model = Detector(tiny_model, threads=2)  # a real network gives each image of a batch what it gives it alone
    inputs = det.to_input([det.letterbox(read_image(p), model.imgsz)[0] for p in page_files(tiny_pages)[:3]])
    together = model.backend(inputs)
    for k in range(3):
        torch.testing.assert_close(together[k:k + 1], model.backend(inputs[k:k + 1]), atol=1e-3, rtol=1e-3)


def test_onnx_export_runs_like_pytorch(tiny_model, page, tmp_path):
    weights = tmp_path / "best.pt"
    shutil.copy(tiny_model, weights)
    assert detect.main(["--export", "onnx", "--weights", str(weights)]) == 0
    onnx = Detector(weights.with_suffix(".onnx"), threads=2)
    torch_model = Detector(weights, threads=2, precision="fp32")  # the export is fp32
    assert onnx.imgsz == torch_model.imgsz and onnx.names == torch_model.names
    batch = det.to_input([det.letterbox(page, onnx.imgsz)[0]] * 2)  # a batch of 2: the export is dynamic
    torch.testing.assert_close(onnx.backend(batch), torch_model.backend(batch), atol=2e-3, rtol=1e-3)
    cv2.imwrite(str(tmp_path / "page.png"), page)
    assert detect.main([str(tmp_path / "page.png"), "--weights", str(weights), "--onnx", "--save-dir",
                        str(tmp_path / "out"), "--conf", str(LOW_CONF)]) == 0
    assert (tmp_path / "out" / "page.png").exists()


def test_one_box_per_glyph_on_an_image_run_whole():
    """Class-aware NMS keeps a second box of another digit on the same ink; the detector keeps the surer one only,
    and a neighbouring digit stays."""
    glyph, again, neighbour = (10, 10, 30, 40), (10, 11, 30, 41), (36, 10, 56, 40)
    detector = Detector("fixed.pt", backend=FixedBackend([(glyph, 6, 0.8), (again, 7, 0.4), (neighbour, 1, 0.7)]))
    (found,) = detector.detect([np.full((64, 64, 3), 255, np.uint8)], tile=False)
    assert found.windows == 1
    assert found.classes.tolist() == [6, 1]
    np.testing.assert_allclose(found.boxes, [glyph, neighbour], atol=1e-4)
