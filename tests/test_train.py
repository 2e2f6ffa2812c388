"""train.py and digitdet.datasets: digit class mapping, derived datasets, start weights, real (tiny) training runs."""

import json

import pytest
import yaml

import train
from digitdet import datasets
from digitdet.labels import DatasetError, label_path, load_dataset
from synth import DIGITS, box_line, make_dataset, rectangle_image
from ultralytics import YOLO
from ultralytics.utils.callbacks import base as callbacks

W = H = 64
BOX = (8, 16, 40, 56)


@pytest.fixture(autouse=True)
def derived_dir(tmp_path, monkeypatch):
    """Derived datasets go to the test's tmp folder, never into the project's .cache/."""
    folder = tmp_path / "derived"
    monkeypatch.setattr(datasets, "DERIVED_DIR", folder)
    return folder


def small_set(root, names, classes=(0, 1), layout="roboflow"):
    """Two train images and one val image, one box each, with the given class ids."""
    item = lambda name, cls: (name, rectangle_image(W, H, BOX), [box_line(cls, BOX, W, H)])  # noqa: E731
    splits = {"train": [item(f"t{i}.png", c) for i, c in enumerate(classes)], "val": [item("v.png", classes[0])]}
    return make_dataset(root, splits, layout, names=names)


def derived_labels(data_yaml, split="train"):
    """The class id of each image's (single) label line, by image name."""
    return {image.name: label_path(image).read_text().split()[0] for image in load_dataset(data_yaml).images(split)}


def train_args(weights):
    return YOLO(str(weights)).ckpt["train_args"]


# Class names -> digits


def test_digit_names_in_order_map_to_themselves(tmp_path):
    names, mapping = datasets.digit_classes(DIGITS, tmp_path / "data.yaml")
    assert names == DIGITS and mapping == {i: i for i in range(10)}


def test_digit_names_in_any_order_map_by_name(tmp_path):
    names, mapping = datasets.digit_classes(["7", "0", " 3 "], tmp_path / "data.yaml")
    assert names == DIGITS and mapping == {0: 7, 1: 0, 2: 3}


def test_a_class_that_is_not_a_digit_is_refused_by_name(tmp_path):
    with pytest.raises(DatasetError, match=r"data\.yaml: class names \['seven', '10'\] are not digits"):
        datasets.digit_classes(["0", "seven", "10"], tmp_path / "data.yaml")


def test_allow_other_classes_trains_them_after_the_digits(tmp_path):
    names, mapping = datasets.digit_classes(["cat", "1", "dog"], tmp_path / "data.yaml", allow_other_classes=True)
    assert names == DIGITS + ["cat", "dog"] and mapping == {0: 10, 1: 1, 2: 11}


def test_a_digit_named_twice_is_refused(tmp_path):
    with pytest.raises(DatasetError, match=r"\['3'\] appear more than once"):
        datasets.digit_classes(["3", "1", "3"], tmp_path / "data.yaml")


# Derived datasets


def test_reordered_dict_names_are_renumbered_in_a_copy(tmp_path):
    source = small_set(tmp_path / "export", names={0: "7", 1: "2"}, classes=(0, 1))
    before = {p: p.read_bytes() for p in (tmp_path / "export").rglob("*") if p.is_file()}
    data_yaml = datasets.prepare_data(source, rotate=False)
    config = yaml.safe_load(data_yaml.read_text())
    assert config["names"] == dict(enumerate(DIGITS)) and config["path"] == str(data_yaml.parent)
    assert derived_labels(data_yaml) == {"t0_rot000.png": "7", "t1_rot000.png": "2"}
    assert derived_labels(data_yaml, "val") == {"v.png": "7"}
    assert {p: p.read_bytes() for p in before} == before  # the source is untouched


def test_other_classes_are_refused_before_anything_is_written(tmp_path, derived_dir):
    source = small_set(tmp_path / "export", names=["0", "zero"])
    with pytest.raises(DatasetError, match=r"\['zero'\] are not digits"):
        datasets.prepare_data(source)
    assert not derived_dir.exists()


def test_allowed_other_classes_get_ids_after_the_digits(tmp_path):
    source = small_set(tmp_path / "export", names=["zero", "4"])
    data_yaml = datasets.prepare_data(source, rotate=False, allow_other_classes=True)
    assert yaml.safe_load(data_yaml.read_text())["names"] == dict(enumerate(DIGITS + ["zero"]))
    assert derived_labels(data_yaml) == {"t0_rot000.png": "10", "t1_rot000.png": "4"}


def test_rotation_quadruples_train_only_and_is_reused_until_the_source_changes(tmp_path, derived_dir):
    source = small_set(tmp_path / "export", names=DIGITS, classes=(3, 5))
    data_yaml = datasets.prepare_data(source)
    derived = load_dataset(data_yaml)
    assert data_yaml.parent.parent == derived_dir
    assert len(derived.images("train")) == 4 * 2 and len(derived.images("val")) == 1
    assert sorted(set(derived_labels(data_yaml).values())) == ["3", "5"]

    (data_yaml.parent / "marker").touch()  # a rebuild would replace the folder and lose this
    assert datasets.prepare_data(source) == data_yaml and (data_yaml.parent / "marker").exists()

    label = tmp_path / "export" / "train" / "labels" / "t0.txt"
    label.write_text(box_line(4, BOX, W, H) + "\n")
    rebuilt = datasets.prepare_data(source)
    assert rebuilt != data_yaml and derived_labels(rebuilt)["t0_rot090.png"] == "4"


def test_no_rotate_with_digit_names_links_the_source_files(tmp_path):
    source = small_set(tmp_path / "export", names=DIGITS)
    derived = load_dataset(datasets.prepare_data(source, rotate=False))
    original = load_dataset(source)
    for split in ("train", "val"):
        linked, files = derived.images(split), original.images(split)
        assert [p.name for p in linked] == [p.name for p in files]
        for a, b in zip(linked, files):
            assert a.read_bytes() == b.read_bytes() and a.parent != b.parent
            assert label_path(a).read_bytes() == label_path(b).read_bytes()


def test_bad_labels_are_refused_with_file_and_line(tmp_path):
    source = small_set(tmp_path / "export", names=DIGITS)
    (tmp_path / "export" / "train" / "labels" / "t1.txt").write_text("1 0.5 0.5 0.2 0.2\n12 0.5 0.5 0.2 0.2\n")
    for rotate in (True, False):
        with pytest.raises(DatasetError, match=r"t1\.txt:2: class id 12 is outside names"):
            datasets.prepare_data(source, rotate=rotate)


def test_a_set_without_val_is_refused(tmp_path):
    source = make_dataset(tmp_path / "export", {"train": [("a.png", rectangle_image(W, H, BOX), [])]})
    with pytest.raises(DatasetError, match="no 'val' split"):
        datasets.prepare_data(source)


# Weights, options, command line


def test_start_weights_prefer_given_then_pretrained_then_scratch(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "PRETRAINED", tmp_path / "yolov8n.pt")
    assert train.start_weights(None) == "yolov8n.yaml"
    (tmp_path / "yolov8n.pt").write_bytes(b"")
    assert train.start_weights(None) == str(tmp_path / "yolov8n.pt")
    (tmp_path / "mine.pt").write_bytes(b"")
    assert train.start_weights(tmp_path / "mine.pt") == str(tmp_path / "mine.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt: weights not found"):
        train.start_weights(tmp_path / "missing.pt")


def test_flips_cannot_be_turned_back_on(tmp_path):
    options = train.train_options(tmp_path / "data.yaml", {"lr0": 0.002}, epochs=1)
    assert options["fliplr"] == 0 and options["flipud"] == 0 and options["lr0"] == 0.002
    with pytest.raises(ValueError, match="fliplr"):
        train.train_options(tmp_path / "data.yaml", {"fliplr": 0.5})


def test_command_line_options():
    opt = train.parse_opt(["--no-rotate", "--export", "--device", "0,1", "--freeze", "10", "--allow-other-classes"])
    assert (opt.rotate, opt.export, opt.device, opt.freeze, opt.allow_other_classes) == (False, True, "0,1", 10, True)
    assert train.parse_opt(["--no-turns"]).rotate is False  # the flag's name; --no-rotate is its older one
    opt = train.parse_opt(["--export", "out"])
    assert (opt.rotate, opt.export, opt.data, opt.name) == (True, "out", train.DEFAULT_DATA, "digits")
    assert not opt.resume and opt.weights is None and opt.device is None and opt.overrides == []
    opt = train.parse_opt(["--set", "lr0=0.002", "optimizer=AdamW", "mosaic=0", "--time", "1.5"])
    assert dict(opt.overrides) == {"lr0": 0.002, "optimizer": "AdamW", "mosaic": 0} and opt.time == 1.5
    with pytest.raises(SystemExit):
        train.parse_opt(["--set", "lr0"])


def test_main_passes_set_values_to_ultralytics(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(train, "run", lambda **kwargs: seen.update(kwargs) or tmp_path)
    assert train.main(["--set", "lr0=0.002", "fliplr=0.5", "--epochs", "3"]) == 0
    assert seen["lr0"] == 0.002 and seen["fliplr"] == 0.5 and seen["epochs"] == 3 and "overrides" not in seen


def test_main_reports_a_refused_dataset(tmp_path, capsys):
    source = small_set(tmp_path / "export", names=["0", "x"])
    assert train.main(["--data", str(source), "--project", str(tmp_path / "runs")]) == 1
    assert "['x'] are not digits" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


# Real training (tiny: a few images, imgsz 128-160, 1-3 epochs)


def test_tiny_model_from_scratch_has_digit_names_and_no_flips(tiny_model, tiny_pages):
    run_dir = tiny_model.parent.parent
    assert not list(tiny_pages.parent.rglob("*.cache"))  # ultralytics' label caches stay out of the source
    assert YOLO(str(tiny_model)).names == dict(enumerate(DIGITS))
    args = train_args(tiny_model)
    assert args["model"] == "yolov8n.yaml" and args["fliplr"] == 0 and args["flipud"] == 0
    assert len((run_dir / "results.csv").read_text().splitlines()) == 1 + 3  # header and one line per epoch
    assert (run_dir / "weights" / "last.pt").is_file() and (run_dir / "BoxPR_curve.png").is_file()


def test_continue_from_saved_weights_on_rotated_pages_and_export(tiny_model, tiny_pages, tmp_path):
    run_dir = train.run(data=tiny_pages, weights=tiny_model, epochs=1, imgsz=128, batch=8, workers=0,
                        project=tmp_path / "runs", name="more", export=tmp_path / "shipped", plots=False)
    best = run_dir / "weights" / "best.pt"
    args = train_args(best)
    assert args["model"] == str(tiny_model) and args["fliplr"] == 0 and args["flipud"] == 0
    assert len(load_dataset(args["data"]).images("train")) == 4 * len(load_dataset(tiny_pages).images("train"))
    assert YOLO(str(best)).names == dict(enumerate(DIGITS))
    assert (tmp_path / "shipped" / "best.pt").read_bytes() == best.read_bytes()
    provenance = json.loads((tmp_path / "shipped" / "best.json").read_text())
    assert provenance["data"] == str(tiny_pages) and provenance["run"] == str(run_dir) and provenance["rotate"]
    assert (provenance["epochs"], provenance["imgsz"], provenance["device"]) == (1, 128, "cpu")
    assert provenance["max_gain"] == train.MAX_GAIN
    assert {"metrics/mAP50(B)", "metrics/mAP50-95(B)"} <= provenance["metrics"].keys()


def test_fine_tune_on_a_roboflow_export(tiny_model, signs_yaml, tmp_path):
    run_dir = train.run(data=signs_yaml, weights=tiny_model, epochs=1, imgsz=128, batch=16, workers=0,
                        project=tmp_path / "runs", name="signs", freeze=10, plots=False)
    best = run_dir / "weights" / "best.pt"
    args = train_args(best)
    assert (args["fliplr"], args["flipud"], args["freeze"]) == (0, 0, 10)
    assert len(load_dataset(args["data"]).images("train")) == 4 * len(load_dataset(signs_yaml).images("train"))
    assert YOLO(str(best)).names == dict(enumerate(DIGITS))


def test_resume_continues_an_interrupted_run(tiny_model, tiny_pages, tmp_path, monkeypatch):
    def interrupt(trainer):
        raise RuntimeError("interrupted")

    options = dict(data=tiny_pages, weights=tiny_model, epochs=2, imgsz=128, batch=8, workers=0,
                   project=tmp_path / "runs", name="cut", rotate=False, plots=False)
    with monkeypatch.context() as patch:  # the run stops right after saving its first epoch
        patch.setitem(callbacks.default_callbacks, "on_model_save", [interrupt])
        with pytest.raises(RuntimeError, match="interrupted"):
            train.run(**options)
    run_dir = train.run(resume=True, name="cut", project=tmp_path / "runs", workers=0)
    assert run_dir == tmp_path / "runs" / "cut"
    assert len((run_dir / "results.csv").read_text().splitlines()) == 1 + 2
    with pytest.raises(ValueError, match="this run finished"):
        train.run(resume=True, name="cut", project=tmp_path / "runs")
