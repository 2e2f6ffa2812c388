"""Page builder: tight boxes around every kind of digit's ink (MNIST, font hands, print, seven segments, close-ups),
labels that agree with the sidecars, disjoint splits and held-out fonts, distractors without unlabelled digits, and
a seed that fixes every byte."""

import dataclasses
import json
import os
import shutil

import cv2
import numpy as np
import pytest
import yaml

from augment import pages, photo
from augment.pages import __main__ as cli
from augment.pages import build, documents, fonts, ink, printed, render, segments, writer
from augment.pages.closeups import CloseUp
from augment.pages.hands import FontHand
from augment.pages.layout import Digit, Layout, WrittenNumber, numbers_of
from augment.pages.mix import pick
from augment.pages.preview import choose
from digitdet import mnist
from digitdet.boxes import from_yolo
from digitdet.labels import Label, label_path, load_dataset, numbers_path, read_labels, require_valid
from digitdet.reading import GAP_FACTOR

SPLIT_SOURCES = {"train": ("train", 0, 50_000), "val": ("train", 50_000, 60_000), "test": ("test", 0, 10_000)}
HELD_OUT = {font.name for font in fonts.FONTS if font.held_out}


@pytest.fixture(scope="module")
def found():
    """The installed fonts; all of FONTS must be (.ci/run installs them): without them a developer skips, CI fails."""
    found = fonts.find(warn=False)
    if missing := sorted({font.package for font in fonts.FONTS if font.name not in found}):
        message = f"fonts not installed: apt-get install {' '.join(missing)}"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def sources(mnist_dir, found):
    return build.load_sources(mnist_dir, {split: fonts.for_split(found, split) for split in ("train", "val", "test")})


@pytest.fixture(scope="module")
def full_pages(tmp_path_factory, mnist_dir, found):
    """A few generated images of the full mix (train 12, val 4, test 8, pages 320 x 320); returns its data.yaml."""
    out = tmp_path_factory.mktemp("full") / "pages"
    return pages.run(mnist_dir, out, counts={"train": 12, "val": 4, "test": 8}, size=320, seed=0, workers=1,
                     progress=False)


@pytest.fixture(scope="module")
def layouts(sources):
    """Planned 640 x 640 pages (no close-ups), before rendering."""
    return [writer.Writer(build.page_rng(7, "train", i), sources["train"], 640).plan() for i in range(40)]


@pytest.fixture(scope="module")
def close_ups(sources):
    return [CloseUp(build.page_rng(8, "train", i), sources["train"], 640).plan() for i in range(60)]


def all_digits(layout):
    return [d for n in layout.numbers for d in n.digits]


def kind(source: str) -> str:
    """A digit's kind from its source: 'train:123' -> 'mnist', 'hand:Breip' -> 'hand', 'print:...', 'segments'."""
    prefix = source.split(":")[0]
    return "mnist" if prefix in ("train", "test") else prefix


def font_name(source: str) -> str | None:
    return source.split(":", 1)[1] if kind(source) in ("hand", "print") else None


def page_files(yaml_path):
    dataset = load_dataset(yaml_path)
    return [(split, image) for split in dataset.splits for image in dataset.images(split)]


def test_pages_form_a_valid_dataset(full_pages):
    dataset = load_dataset(full_pages)
    summaries = require_valid(dataset)
    assert dataset.root == full_pages.parent and dataset.names == [str(d) for d in range(10)]
    assert {split: s.images for split, s in summaries.items()} == {"train": 12, "val": 4, "test": 8}
    assert sum(s.boxes for s in summaries.values()) > 100
    for _, image in page_files(full_pages):
        record = json.loads(numbers_path(image).read_text())
        shape = cv2.imread(str(image)).shape
        assert shape[:2] == (record["height"], record["width"])
        if record["kind"] == "page":
            assert shape == (320, 320, 3)
        else:
            assert record["kind"] == "close-up" and max(shape) <= 320


def test_the_mnist_mix_holds_pages_of_mnist_handwriting_only(tiny_pages):
    """The tests' shared pages (conftest.tiny_pages) are of the "mnist" mix: no print, font hand or close-up."""
    config = yaml.safe_load(tiny_pages.read_text())
    assert config["mix"] == "mnist" and config["fonts"] == {"train": [], "val": [], "test": []}
    for _, image in page_files(tiny_pages):
        record = json.loads(numbers_path(image).read_text())
        assert record["kind"] == "page" and cv2.imread(str(image)).shape == (320, 320, 3)
        assert all(kind(s) == "mnist" for n in record["numbers"] for s in n["sources"])


@pytest.mark.parametrize("which", ["full", "mnist"])
def test_sidecars_agree_with_labels(full_pages, tiny_pages, which):
    for _, image in page_files(full_pages if which == "full" else tiny_pages):
        record = json.loads(numbers_path(image).read_text())
        size = [record["width"], record["height"]] * 2
        assert record["image"] == image.name
        labels = read_labels(label_path(image), 10)
        digit_boxes = np.array([b for n in record["numbers"] for b in n["digit_boxes"]]).reshape(-1, 4)
        assert "".join(n["digits"] for n in record["numbers"]) == "".join(str(label.cls) for label in labels)
        label_boxes = from_yolo([label.box for label in labels], record["width"], record["height"])
        np.testing.assert_allclose(label_boxes, digit_boxes, atol=0.006)  # the sidecar rounds to 0.01 px
        assert (digit_boxes >= 0).all() and (digit_boxes <= size).all()
        assert (digit_boxes[:, 2:] > digit_boxes[:, :2]).all()
        for number in record["numbers"]:
            boxes = np.array(number["digit_boxes"])
            assert len(number["digits"]) == len(boxes) == len(number["sources"])
            assert number["box"] == [*boxes[:, :2].min(axis=0), *boxes[:, 2:].max(axis=0)]


def test_splits_use_disjoint_mnist_digits_and_test_pages_only_held_out_fonts(full_pages):
    used = {}
    for split, image in page_files(full_pages):
        record = json.loads(numbers_path(image).read_text())
        used.setdefault(split, set()).update(s for n in record["numbers"] for s in n["sources"])
    for split, sources in used.items():
        source, start, stop = SPLIT_SOURCES[split]
        handwritten = [s for s in sources if kind(s) == "mnist"]
        assert handwritten and all(s.split(":")[0] == source and start <= int(s.split(":")[1]) < stop
                                   for s in handwritten)
        named = {font_name(s) for s in sources} - {None}
        assert named <= HELD_OUT if split == "test" else not named & HELD_OUT, (split, named)
    shown = yaml.safe_load(full_pages.read_text())["fonts"]  # what data.yaml says each split may show
    assert set(shown["test"]) == HELD_OUT and not (set(shown["train"]) | set(shown["val"])) & HELD_OUT


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_held_out_fonts_only_on_test_pages(sources, split):
    """Every font a page shows, in its digits and in its letters and signs: held-out ones on test pages only, and
    nothing else there."""
    shown = set()
    for i in range(80):
        layout = build.plan_page(build.page_rng(3, split, i), sources[split], 320)
        shown |= {font_name(d.source) for d in all_digits(layout)} | {font_name(m.source) for m in layout.marks}
    shown -= {None}
    assert len(shown) >= 3  # fonts were used at all
    assert shown <= HELD_OUT if split == "test" else not shown & HELD_OUT, shown


def test_same_seed_same_files_with_any_workers(tmp_path, mnist_dir, monkeypatch):
    counts = {"train": 12, "val": 4, "test": 4}
    serial = pages.run(mnist_dir, tmp_path / "serial", counts=counts, size=320, seed=0, workers=1, progress=False)
    monkeypatch.setattr(build, "CHUNK", 5)  # other chunks, spread over two processes
    monkeypatch.setattr(build, "MIN_PAGES_PER_WORKER", 1)
    again = pages.run(mnist_dir, tmp_path / "again", counts={"train": 12, "val": 4, "test": 4}, size=320, seed=0,
                      workers=2, progress=False)
    other = pages.run(mnist_dir, tmp_path / "other", counts={"train": 2}, size=320, seed=1, workers=1,
                      progress=False)
    first = sorted(p.relative_to(serial.parent) for p in serial.parent.rglob("*") if p.is_file())
    assert first == sorted(p.relative_to(again.parent) for p in again.parent.rglob("*") if p.is_file())
    for relative in first:
        if relative.name != "data.yaml":  # it names its own folder
            assert (serial.parent / relative).read_bytes() == (again.parent / relative).read_bytes(), relative
    image = "images/train/000000.jpg"
    assert (serial.parent / image).read_bytes() != (other.parent / image).read_bytes()


def without(layout: Layout, digit: Digit) -> Layout:
    """The layout less one digit."""
    kept = [WrittenNumber([d for d in n.digits if d is not digit]) for n in layout.numbers]
    return Layout(**{**vars(layout), "numbers": kept})


def assert_tight(layout: Layout, digit: Digit, page: np.ndarray) -> None:
    """What the digit draws is its box exactly: nothing outside, ink on each edge, and its hull is its ink's."""
    changed = (page != render.render(without(layout, digit)).astype(int)).any(axis=2)
    (y1, x1), (y2, x2) = np.argwhere(changed).min(axis=0), np.argwhere(changed).max(axis=0) + 1
    assert (x1, y1, x2, y2) == digit.box, digit.source  # nothing drawn outside the box, and its edges are drawn on
    ink_mask = digit.ink
    assert ink_mask[0].any() and ink_mask[-1].any() and ink_mask[:, 0].any() and ink_mask[:, -1].any()
    assert changed[digit.y: digit.y + ink_mask.shape[0], digit.x: digit.x + ink_mask.shape[1]][ink_mask].all()
    hull = cv2.convexHull(cv2.findNonZero(ink_mask.view(np.uint8))).reshape(-1, 2)
    assert sorted(map(tuple, digit.hull.tolist())) == sorted(map(tuple, hull.tolist()))
    assert photo.outline_boxes(*photo.outlines([digit.hull], [(digit.x, digit.y)])).tolist() == [list(digit.box)]


@pytest.mark.parametrize("which", ["mnist", "hand", "print", "segments", "close-up"])
def test_every_kind_of_digit_gets_a_tight_box(layouts, close_ups, which):
    """On images rendered without photo effects, each kind of digit changes exactly the pixels of its box, which is
    the box of its ink, whatever else lies around it (print, panels, security lines, signs)."""
    checked = 0
    for layout in close_ups if which == "close-up" else layouts:
        digits = [d for d in all_digits(layout) if which == "close-up" or kind(d.source) == which]
        if not digits:
            continue
        page = render.render(layout).astype(int)
        for digit in digits[:: max(len(digits) // 3, 1)][:3]:  # each check renders the image again: a sample
            assert_tight(layout, digit, page)
            checked += 1
        if checked >= 12:
            break
    assert checked >= 12


def test_close_ups_are_small_and_filled_by_their_digits(close_ups):
    shapes = {(layout.width, layout.height) for layout in close_ups}
    assert len(shapes) > 20 and all(max(shape) <= 640 for shape in shapes)
    assert {w > h for w, h in shapes} == {True, False}  # wide crops and portrait notes
    assert min(w * h for w, h in shapes) < 160 * 70  # a crop as small as an amount field
    fills = [max(d.coverage.shape[0] for d in all_digits(layout)) / layout.height for layout in close_ups
             if layout.numbers]
    assert len(fills) > 50 and 0.7 < max(fills) <= 0.85 and np.median(fills) > 0.35
    kinds = {kind(d.source) for layout in close_ups for d in all_digits(layout)}
    assert kinds == {"mnist", "hand", "print", "segments"}


def test_font_hands_write_about_a_quarter_of_the_handwritten_digits(sources):
    counts = {"mnist": 0, "hand": 0}
    for i in range(150):
        for digit in all_digits(build.plan_page(build.page_rng(5, "train", i), sources["train"], 320)):
            if kind(digit.source) in counts:
                counts[kind(digit.source)] += 1
    assert 0.15 < counts["hand"] / (counts["hand"] + counts["mnist"]) < 0.35, counts


def test_printed_text_holds_no_unlabelled_digit(layouts, close_ups, found):
    """Every printed or written character that is a digit is a labelled Digit of its class; letters and signs are
    marks, and no mark and no printed text line holds a digit."""
    face = fonts.for_split(found, "train").typefaces[0]
    digits, mark, _ = printed.typeset(face, "Tel. +41 (079) 123-45", 24, 10, 40, 0.9, documents.PRINT_INKS[0])
    assert [d.cls for d in digits] == [4, 1, 0, 7, 9, 1, 2, 3, 4, 5] and mark.text == "Tel.+()-"
    assert all(d.source == f"print:{face.name}" for d in digits)
    everything = layouts + close_ups
    marks = [m for layout in everything for m in layout.marks]
    assert len(marks) > 100 and not any(char.isdigit() for m in marks for char in m.text)
    assert {m.text for m in marks} & {"$", "€", "%", ".", ",", "/", ":", "-"}  # signs are there, unlabelled
    assert any(set(m.text) & set("OlISBZg") for m in marks)  # letters that look like digits
    texts = [text for layout in everything for text, *_ in layout.texts]
    assert texts and not any(char.isdigit() for text in texts for char in text)


@pytest.mark.parametrize("text", ["1,234.50", "12/03/2024", "079 123 45 67"])
def test_printed_digits_are_grouped_as_the_reader_groups_them(found, text):
    """Printed digits split into numbers exactly where a gap is wider than the reader's (GAP_FACTOR times the
    digits' height), and digits a word apart are another number."""
    face = fonts.for_split(found, "train").typefaces[0]
    near, _, end = printed.typeset(face, text, 30, 10, 60, 0.9, documents.PRINT_INKS[0])
    far, _, _ = printed.typeset(face, "77", 30, end + 40, 60, 0.9, documents.PRINT_INKS[0])
    expected, run = [], str(near[0].cls)
    for a, b in zip(near, near[1:]):
        gap, height = b.box[0] - a.box[2], (a.box[3] - a.box[1] + b.box[3] - b.box[1]) / 2
        expected, run = (expected, run + str(b.cls)) if gap <= GAP_FACTOR * height else (expected + [run], str(b.cls))
    numbers = numbers_of(far + near)
    assert ["".join(str(d.cls) for d in n.digits) for n in numbers] == expected + [run, "77"]
    assert len(expected) > 0 or text == "1,234.50"  # the reader splits a date or a phone number somewhere


def test_seven_segment_digits_light_their_segments():
    """Each digit lights its own segments: an 8 lights all of them and fills its cell, every digit lies within the 8,
    no two digits look alike, and a 1 sits on the right of its cell."""
    eight, _, (x8, y8) = segments.digit(8, 30, 56, 7.0, 0.0)
    assert eight.shape == (57, 31) and (x8, y8) == (0, 0)  # the cell's 30 x 56 pixels and the anti-aliased edge
    shapes = []
    for cls in range(10):
        coverage, _, (x, y) = segments.digit(cls, 30, 56, 7.0, 0.0)
        h, w = coverage.shape
        assert (coverage <= eight[y: y + h, x: x + w] + 1e-6).all()
        canvas = np.zeros_like(eight)
        canvas[y: y + h, x: x + w] = coverage
        shapes.append(canvas >= 0.5)
    assert all((a != b).sum() > 50 for i, a in enumerate(shapes) for b in shapes[i + 1:])
    _, _, (x1, _) = segments.digit(1, 30, 56, 7.0, 0.0)
    assert x1 > 15


def test_font_digits_vary_every_time(found):
    """The same font digit written twice differs (distortion), and its ink box stays the glyph's size."""
    hand = FontHand(fonts.for_split(found, "train").hands[0], 0.1)
    rng = np.random.default_rng(0)
    first, second = hand.varied("7", rng, 3), hand.varied("7", rng, 3)
    assert first.shape == second.shape and np.abs(first.astype(int) - second).mean() > 5


def test_missing_fonts_are_named_once_and_the_build_goes_on(tmp_path, mnist_dir, monkeypatch, capsys, found):
    absent = fonts.Font("Nowhere Hand", "nowhere.ttf", "fonts-nowhere", fonts.HAND)
    monkeypatch.setattr(fonts, "FONTS", fonts.FONTS + (absent,))
    assert fonts.main() == 0 and capsys.readouterr().out == "fonts-nowhere\n"  # what .ci/run installs
    with pytest.warns(fonts.MissingFontWarning, match=r"Nowhere Hand \(fonts-nowhere\)") as caught:
        data = pages.run(mnist_dir, tmp_path / "pages", counts={"train": 3}, size=160, workers=1, progress=False)
    assert len([w for w in caught if issubclass(w.category, fonts.MissingFontWarning)]) == 1
    assert "Nowhere Hand" in yaml.safe_load(data.read_text())["missing_fonts"]
    assert len(list((tmp_path / "pages" / "images" / "train").glob("*.jpg"))) == 3


def test_digit_boxes_are_tight_and_contain_everything_the_digit_draws(layouts):
    checked = 0
    for layout in layouts[:8]:
        page = render.render(layout).astype(int)
        for number in layout.numbers[:8]:  # each check renders the page again: a sample of each page's digits
            for digit in number.digits[:2]:
                assert_tight(layout, digit, page)
                checked += 1
    assert checked > 40


def test_ink_is_dark_on_light_paper(layouts):
    for layout in layouts[:6]:
        grey = render.render(layout).astype(float).mean(axis=2)
        paper = np.median(grey)
        assert paper > 150
        for digit in all_digits(layout):
            x1, y1, x2, y2 = digit.box
            assert grey[y1:y2, x1:x2][digit.ink].mean() < paper - 30


def test_page_contents_vary_like_handwriting(layouts):
    digits = [d for layout in layouts for d in all_digits(layout)]
    heights = np.array([d.coverage.shape[0] for d in digits if kind(d.source) in ("mnist", "hand")])
    assert 8 <= heights.min() < 20 and 80 < heights.max() <= 150  # about 12 to 120 pixels on a 640 page
    lengths = {len(n.digits) for layout in layouts for n in layout.numbers}
    assert set(range(1, 9)) <= lengths
    touching = [a for layout in layouts for n in layout.numbers for a, b in zip(n.digits, n.digits[1:])
                if a.box[2] >= b.box[0]]
    assert touching
    assert sum(bool(layout.texts) for layout in layouts) > 5 and sum(bool(layout.rules) for layout in layouts) > 5
    assert sum(bool(layout.strokes) for layout in layouts) > 5
    assert sum(bool(layout.panels) for layout in layouts) > 0 and sum(bool(layout.marks) for layout in layouts) > 10
    assert {kind(d.source) for d in digits} == {"mnist", "hand", "print", "segments"}
    assert len({d.cls for d in digits}) == 10


def test_blank_pages_have_no_digits(monkeypatch, sources):
    monkeypatch.setattr(writer, "BLANK_PAGES", 1.0)
    pages_only = dataclasses.replace(sources["test"], mix=dataclasses.replace(sources["test"].mix, close_ups=0.0))
    image, layout, boxes = build.make_page(build.page_rng(0, "test", 0), pages_only, 320)
    assert layout.numbers == [] and len(boxes) == 0 and image.shape == (320, 320, 3)
    assert build.page_record("000000.jpg", layout, boxes)["numbers"] == []


def test_pick_draws_what_rng_choice_draws():
    odds = (0.5, 0.2, 0.3)
    for seed in range(200):
        choice = np.random.default_rng(seed).choice(len(odds), p=odds)
        assert pick(np.random.default_rng(seed), odds) == choice


def test_random_words_have_2_to_9_letters_and_some_capitals():
    rng = np.random.default_rng(0)
    words = [writer.random_word(rng) for _ in range(2000)]
    assert {len(w) for w in words} == set(range(2, 10))
    assert all(w[1:].islower() and w.isalpha() for w in words)
    assert 0.26 < np.mean([w[0].isupper() for w in words]) < 0.34
    assert set("".join(words).lower()) == set(writer.LETTERS)


def test_large_digits_are_enlarged_as_one_cubic_warp_would(sources):
    """Large digits are resized, then warped (ten times faster than one cubic warp). Upright and unslanted, the
    warp is a scale with the 2-pixel border; a half-pixel slip between the steps would more than double the gaps."""
    for image in sources["test"].digits.images[:10]:
        x, y, w, h = cv2.boundingRect(image)
        scale = 100 / h
        patch = ink.enlarge(image, 100, 0, 0).astype(int)
        warped = cv2.warpAffine(image[y: y + h, x: x + w], np.float32([[scale, 0, 2], [0, scale, 2]]),
                                patch.shape[::-1], flags=cv2.INTER_CUBIC).astype(int)
        assert np.abs(patch - warped).mean() < 4
        assert ((patch >= 128) != (warped >= 128)).sum() < 0.05 * (warped >= 128).sum()


def test_small_digits_are_shrunk_by_averaging():
    """Shrunk to a quarter, one-pixel lines four pixels apart become an even grey, not lines that a warp happens to
    hit or miss."""
    lines = np.zeros((80, 80), np.uint8)
    lines[::4] = 255
    patch = ink.enlarge(lines, 20, 0, 0, average=True)[2:-2, 2:-2].astype(float)
    assert abs(patch[2:-2, 2:-2].mean() - 255 / 4) < 12 and patch[2:-2, 2:-2].std() < 12


def make_number(x, y, width=20, height=30):
    corners = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.int32)
    digit = Digit(1, "train:0", x, y, np.ones((height, width), np.float32), 1.0, corners, writer.INKS[0])
    return WrittenNumber([digit])


def test_reading_order_is_by_line_then_left_to_right():
    line_1 = [make_number(300, 100), make_number(50, 106), make_number(180, 95)]
    line_2 = [make_number(250, 160), make_number(20, 152, height=40)]
    order = build.reading_order(line_2 + line_1)
    assert [(n.box[0], n.box[1]) for n in order] == [(50, 106), (180, 95), (300, 100), (20, 152), (250, 160)]


def test_label_lines_are_the_yolo_lines_of_the_boxes():
    boxes = np.array([[10, 20, 30, 60], [0.5, 1.25, 320, 100.75]], np.float32)
    lines = build.yolo_lines([3, 7], boxes, 320, 160)
    assert lines.splitlines()[0] == "3 0.0625 0.25 0.0625 0.25"
    x1, y1, x2, y2 = boxes[1].astype(np.float64) / [320, 160, 320, 160]
    assert lines.splitlines()[1] == Label.from_box(7, (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1).line()
    assert build.yolo_lines([], np.zeros((0, 4)), 320, 320) == ""


def test_preview_shows_close_ups_beside_pages(full_pages):
    chosen = choose(full_pages.parent, 8)
    kinds = [record["kind"] for _, record in chosen]
    records = [json.loads(numbers_path(image).read_text()) for _, image in page_files(full_pages)]
    available = sum(r["kind"] == "close-up" for r in records)
    assert len(chosen) == 8 and kinds.count("close-up") == min(available, 2) > 0


def test_cli_writes_pages_and_a_preview(tmp_path, mnist_dir):
    out, preview = tmp_path / "pages", tmp_path / "look.png"
    args = ["--mnist", str(mnist_dir), "--out", str(out), "--train", "5", "--val", "0", "--test", "0", "--size",
            "160", "--workers", "1", "--preview", str(preview)]
    assert cli.main(args) == 0
    assert len(list((out / "images" / "train").glob("*.jpg"))) == 5 and not (out / "images" / "val").exists()
    assert cv2.imread(str(preview)).shape == (2 * 400, 4 * 400, 3)  # 5 images: two rows of four tiles
    assert cli.main(args) == 1  # the folder exists and --overwrite was not given
    assert len(list((out / "images" / "train").glob("*.jpg"))) == 5


def test_bad_mnist_folder_is_named_and_nothing_is_written(tmp_path):
    with pytest.raises(mnist.MnistError, match="train-images-idx3-ubyte.gz: MNIST file not found"):
        pages.run(tmp_path / "empty", tmp_path / "pages", counts={"train": 2}, progress=False)
    assert not (tmp_path / "pages").exists()


def test_output_never_replaces_the_mnist_folder(tmp_path, mnist_dir):
    source = tmp_path / "data" / "mnist"
    shutil.copytree(mnist_dir, source)
    with pytest.raises(ValueError, match="would contain the source"):
        pages.run(source, tmp_path / "data", counts={"train": 1}, overwrite=True, progress=False)
    assert sorted(p.name for p in source.iterdir()) == sorted(p.name for p in mnist_dir.iterdir())
