"""app.py and digitdet.collect, called directly: detection and reading, corrections, saved pages, refused uploads.

Most tests run the real Detector with a fixed backend (a stand-in for the network that returns known boxes), so
every box, number and label line can be checked exactly; one test runs the tiny trained model against detect.py.
"""

import cv2
import gradio as gr
import numpy as np
import pytest

import app
import detect
import train
from digitdet import collect, datasets
from digitdet.detector import Detector
from digitdet.images import read_image
from digitdet.labels import label_path, load_dataset, read_labels, require_valid
from fakes import FixedBackend

SIZE = 320  # the fixed backend's input size: a 320 x 320 image is neither resized nor padded, so boxes are exact
# (x1, y1, x2, y2), class, score. Reading order: "12" and "7" on the first line, "4" on the second.
FIXED = [((40, 100, 70, 160), 1, 0.90), ((76, 100, 106, 160), 2, 0.80), ((200, 110, 230, 170), 7, 0.35),
         ((40, 220, 70, 280), 4, 0.60)]
UNCHANGED = (gr.skip(),) * 4


@pytest.fixture
def backend():
    return FixedBackend(FIXED, imgsz=SIZE)


@pytest.fixture
def digit_app(backend, tmp_path):
    return app.DigitApp(Detector("fixed.pt", backend=backend), tmp_path / "collected")


@pytest.fixture
def page_file(tmp_path):
    """A white page with a dark rectangle under each FIXED box, as a PNG upload."""
    image = np.full((SIZE, SIZE, 3), 255, np.uint8)
    for (x1, y1, x2, y2), _, _ in FIXED:
        image[y1:y2, x1:x2] = 40
    path = tmp_path / "upload" / "page.png"
    path.parent.mkdir()
    cv2.imwrite(str(path), image)
    return path


def files_under(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ---- detection and reading ----

def test_upload_is_detected_and_read_in_reading_order(digit_app, page_file):
    page, annotated, numbers, rows, message = digit_app.from_upload(str(page_file), 0.25)
    d = page.result.detections
    assert [b.tolist() for b in d.boxes] == [list(FIXED[i][0]) for i in (0, 1, 3, 2)]  # most confident first
    assert [n.digits for n in page.result.numbers] == ["12", "7", "4"]
    assert annotated.shape == (SIZE, SIZE, 3)
    assert numbers.endswith("```\n12 7\n4\n```")  # numbers line by line, as on the page
    assert "4 digits, 3 numbers: 12 7 4" in numbers  # detect.py's summary line
    assert message == ""
    assert [row[:5] for row in rows] == [[1, "1", True, 0.9, "12"], [2, "2", True, 0.8, "12"],
                                         [3, "7", True, 0.35, "7"], [4, "4", True, 0.6, "4"]]
    assert rows[0][5:] == ["1 (0.900)", "2 (0.090)", "3 (0.045)"]  # the three best classes and their scores


def test_app_reads_a_page_as_detect_py_does(tiny_model, tiny_pages, tmp_path):
    """The real tiny model: the app's boxes and numbers for an upload are detect.py's for the same file."""
    source = sorted((tiny_pages.parent / "images" / "test").glob("*.jpg"))[0]
    conf = 0.001  # the tiny model is weak; its scores are low
    page = app.DigitApp(Detector(tiny_model), tmp_path / "collected").from_upload(str(source), conf)[0]
    expected = detect.run(source, tiny_model, conf=conf, save_images=False, verbose=False).results[0]
    assert len(expected.detections) > 0
    np.testing.assert_array_equal(page.result.detections.boxes, expected.detections.boxes)
    np.testing.assert_array_equal(page.result.detections.classes, expected.detections.classes)
    assert [n.digits for n in page.result.numbers] == [n.digits for n in expected.numbers]


def test_slider_reruns_the_model_at_the_new_threshold(digit_app, page_file, backend):
    page = digit_app.from_upload(str(page_file), 0.25)[0]
    page, _, numbers, rows, message = digit_app.rerun(page, 0.5)
    assert backend.calls == 2
    assert [n.digits for n in page.result.numbers] == ["12", "4"]  # the 7 scores 0.35
    assert len(rows) == 3 and numbers.endswith("```\n12\n4\n```")
    page, _, numbers, rows, message = digit_app.rerun(page, 0.95)
    assert rows == [] and "No digits found at confidence 0.95;" in message
    assert digit_app.rerun(None, 0.5) == (*UNCHANGED, "")


def test_drawing_is_dark_ink_on_white_paper(digit_app, backend):
    drawing = np.zeros((SIZE, SIZE, 4), np.uint8)  # the canvas: transparent where nothing is drawn
    drawing[100:160, 40:70] = (0, 0, 0, 255)
    page = digit_app.from_drawing({"background": None, "layers": [], "composite": drawing}, 0.25)[0]
    assert page.image.shape == (SIZE, SIZE, 3)
    assert (page.image[100:160, 40:70] == 0).all() and (page.image[:100] == 255).all()
    assert page.result.path.name == "drawing"
    blank = digit_app.from_drawing({"background": None, "layers": [], "composite": np.zeros_like(drawing)}, 0.25)
    assert blank == (*UNCHANGED, "Draw some digits on the canvas first.")
    assert backend.calls == 1


def test_camera_picture_is_converted_to_bgr(digit_app):
    picture = np.zeros((SIZE, SIZE, 3), np.uint8)
    picture[..., 0] = 200  # red in RGB
    page = digit_app.from_camera(picture, 0.25)[0]
    assert (page.image[..., 2] == 200).all() and (page.image[..., :2] == 0).all()


# ---- corrections and saved pages ----

def corrected_rows(rows):
    """Row #2's digit 2 becomes 3, and row #3 (the 7) is dropped."""
    rows = [list(row) for row in rows]
    rows[1][1] = "3"
    rows[2][2] = False
    return rows


def test_preview_applies_corrections_without_the_model(digit_app, page_file, backend):
    page, _, _, rows, _ = digit_app.from_upload(str(page_file), 0.25)
    annotated, numbers, message = digit_app.preview(page, corrected_rows(rows))
    assert numbers.endswith("```\n13\n4\n```") and message == ""
    assert annotated.shape == (SIZE, SIZE, 3)
    assert backend.calls == 1


def test_saving_a_corrected_page_writes_a_yolo_dataset(digit_app, page_file, tmp_path):
    page, _, _, rows, _ = digit_app.from_upload(str(page_file), 0.25)
    message = digit_app.save(page, corrected_rows(rows))
    root = tmp_path / "collected"
    images = sorted((root / "images" / "train").glob("*.jpg"))
    assert len(images) == 1 and images[0].name in message and "3 digit label(s)" in message
    assert f"python train.py --data {root / 'data.yaml'}" in message
    # boxes of rows #1, #2 (now a 3) and #4 in 320 x 320 pixels, as normalized centre and size
    assert label_path(images[0]).read_text() == ("1 0.171875 0.40625 0.09375 0.1875\n"
                                                 "3 0.284375 0.40625 0.09375 0.1875\n"
                                                 "4 0.171875 0.78125 0.09375 0.1875\n")
    saved = read_image(images[0])
    assert saved.shape == page.image.shape
    assert np.abs(saved.astype(int) - page.image).mean() < 2  # JPEG quality 95
    dataset = load_dataset(root / "data.yaml")
    assert dataset.names == collect.DIGITS
    assert dataset.images("train") == images and dataset.images("val") == images  # no val page yet
    assert [label.cls for label in read_labels(label_path(images[0]), 10)] == [1, 3, 4]
    require_valid(dataset)


def test_every_fifth_page_goes_to_val_and_train_py_fine_tunes_on_it(digit_app, page_file, tiny_model, tmp_path,
                                                                      monkeypatch):
    page, _, _, rows, _ = digit_app.from_upload(str(page_file), 0.25)
    splits = [digit_app.save(page, rows).split(" split of")[0].rsplit(" ", 1)[1] for _ in range(5)]
    assert splits == ["train"] * 4 + ["val"]
    data_yaml = tmp_path / "collected" / "data.yaml"
    dataset = load_dataset(data_yaml)
    assert len(dataset.images("train")) == 4 and len(dataset.images("val")) == 1
    assert len({p.name for p in dataset.images("train")}) == 4  # server-made names never collide
    monkeypatch.setattr(datasets, "DERIVED_DIR", tmp_path / "derived")
    run_dir = train.run(data=data_yaml, weights=tiny_model, epochs=1, imgsz=64, batch=2, workers=0,
                        project=tmp_path / "runs", name="collected", rotate=False, plots=False)
    assert (run_dir / "weights" / "best.pt").is_file()


@pytest.mark.parametrize("edit, error", [
    (lambda rows: rows[0].__setitem__(1, "x"), "row 1 (digit #1): the digit must be one of 0-9, not 'x'"),
    (lambda rows: rows[1].__setitem__(0, 9), "row 2: there is no digit #9 (the digits are #1 to #4)"),
    (lambda rows: rows[1].__setitem__(0, 1), "row 2: digit #1 appears twice"),
])
def test_a_bad_correction_is_refused_and_saves_nothing(digit_app, page_file, tmp_path, edit, error):
    page, _, _, rows, _ = digit_app.from_upload(str(page_file), 0.25)
    rows = [list(row) for row in rows]
    edit(rows)
    assert digit_app.save(page, rows).startswith(f"**Not saved:** {error}")
    assert files_under(tmp_path / "collected") == []
    assert digit_app.preview(page, rows)[2].startswith(f"**Cannot apply the corrections:** {error}")


def test_an_unticked_or_deleted_row_drops_its_box_and_a_dropped_non_digit_is_fine(digit_app, page_file, tmp_path):
    page, _, _, rows, _ = digit_app.from_upload(str(page_file), 0.25)
    rows = [list(row) for row in rows]
    rows[0][1], rows[0][2] = "not a digit", False
    digit_app.save(page, [rows[0], rows[1], rows[3]])  # row #3 deleted
    labels = next((tmp_path / "collected" / "labels" / "train").glob("*.txt")).read_text().splitlines()
    assert [line.split()[0] for line in labels] == ["2", "4"]


def test_nothing_to_save_before_an_image(digit_app, tmp_path):
    assert "Nothing to save yet" in digit_app.save(None, [])
    assert files_under(tmp_path / "collected") == []


# ---- refused uploads ----

def refused(digit_app, path):
    """The message of a refused upload, after checking that nothing changed and the model never ran."""
    result = digit_app.from_upload(str(path), 0.25)
    assert result[:4] == UNCHANGED
    assert digit_app.detector.backend.calls == 0
    assert files_under(digit_app.collect_dir) == []
    return result[4]


def test_an_upload_over_the_size_limit_is_refused(backend, page_file, tmp_path):
    small = app.DigitApp(Detector("fixed.pt", backend=backend), tmp_path / "collected", max_bytes=1024)
    size = page_file.stat().st_size
    assert size > 1024
    assert refused(small, page_file) == (f"**Upload refused:** the file is {size / 1024:.1f} KB; the limit is "
                                         f"1.0 KB. Nothing was changed.")


@pytest.mark.parametrize("name, content, reason", [
    ("notes.png", b"these are not the pixels you are looking for", "the file is not an image"),
    ("empty.jpg", b"", "the file is empty"),
    ("anim.gif", "gif", "GIF images are not supported"),
    ("cut.jpg", "truncated jpeg", "the JPEG image is damaged or incomplete"),
])
def test_a_file_that_is_not_a_usable_image_is_refused(digit_app, tmp_path, name, content, reason):
    path = tmp_path / name
    picture = np.full((64, 64, 3), 128, np.uint8)
    if content == "gif":
        from PIL import Image
        Image.fromarray(picture).save(path, format="GIF")
    elif content == "truncated jpeg":
        encoded = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))[1]
        path.write_bytes(encoded.tobytes()[: len(encoded) // 2])
    else:
        path.write_bytes(content)
    message = refused(digit_app, path)
    assert message.startswith("**Upload refused:** ") and reason in message


def test_an_image_with_too_many_pixels_is_refused_before_decoding(page_file):
    with pytest.raises(collect.UploadError, match=r"320 x 320 pixels; the limit is 0.1 megapixels"):
        collect.read_upload(page_file, max_pixels=100_000)


def test_a_missing_model_gets_a_clear_message(tmp_path, capsys):
    assert app.main(["--weights", str(tmp_path / "none.pt")]) == 1
    error = capsys.readouterr().err
    assert f"{tmp_path / 'none.pt'}: model file not found" in error and "--weights" in error
