"""What a hostile but realistic user tries: nothing is lost, nothing is half-written, no traceback.

Sources are never written over, whatever outputs are named; decompression bombs and damaged images are refused by
name before they cost memory; killed and interrupted runs leave no worker and no stale folder behind; built
folders follow the umask; bad options and bad files end in one line that names the file and says what to do.
Every file here is tiny: a 20000 x 20000 1-bit PNG is 76 KB.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import detect
import evaluate
import train
from augment import rotate
from digitdet import atomic, cli, collect, datasets, labels, workers
from digitdet.detector import Detector
from digitdet.images import ImageReadError, ImageTooLargeError, check_image, read_image
from digitdet.labels import DatasetError, load_dataset, parse_line, validate
from fakes import FixedBackend
from synth import box_line, make_dataset, rectangle_image

W, H = 40, 30
BOX = (10, 6, 20, 18)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def nothing_finder():
    return Detector("empty.pt", backend=FixedBackend())  # finds nothing: the whole pipeline runs in milliseconds


def split(n: int, prefix: str = "t"):
    return [(f"{prefix}{i}.png", rectangle_image(W, H, BOX), [box_line(i % 10, BOX, W, H)]) for i in range(n)]


@pytest.fixture
def dataset(tmp_path) -> Path:
    return make_dataset(tmp_path / "ds", {"train": split(3), "val": split(2, "v")})


def tree(folder: Path) -> dict[Path, bytes]:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def jpeg_bytes(width: int = 64, height: int = 48) -> bytes:
    image = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (height, width, 3), np.uint8), (5, 5), 2)
    return cv2.imencode(".jpg", image)[1].tobytes()


def one_line(text: str) -> str:
    """The single line of a message; fails when there is a traceback or more lines."""
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


# ---- 1. detect.py never writes over a source ----

def test_detect_never_overwrites_a_source_whatever_the_renaming(tmp_path, nothing_finder):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "x.png"), rectangle_image(W, H, BOX))
    sources = [tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"]
    before = tree(tmp_path)
    # a/x.png's copy is called x.png, b/x.png's x_1.png: the first one lands on b/x.png
    with pytest.raises(ValueError, match=r"b/x\.png: this output is a source, which would be overwritten"):
        detect.run(sources, detector=nothing_finder, save_dir=tmp_path / "b", verbose=False)
    os.link(sources[0], tmp_path / "a" / "linked.png")  # the same file under another name
    (tmp_path / "out").mkdir()
    os.symlink(tmp_path / "a" / "linked.png", tmp_path / "out" / "detections.json")
    with pytest.raises(ValueError, match=r"\(the same file as .*a/x\.png\)"):
        detect.run(sources[:1], detector=nothing_finder, save_dir=tmp_path / "out", save_json=True, verbose=False)
    (tmp_path / "a" / "linked.png").unlink()
    (tmp_path / "out" / "detections.json").unlink()
    assert tree(tmp_path) == before


# ---- 2. an output folder inside a source folder is refused ----

def test_rotation_output_inside_a_split_folder_is_refused(dataset, tmp_path):
    before = tree(tmp_path / "ds")
    with pytest.raises(ValueError, match=r"images/train/rot: output folder lies inside the source folder"):
        rotate.run(dataset, tmp_path / "ds" / "images" / "train" / "rot", workers=1, progress=False)
    assert tree(tmp_path / "ds") == before
    assert rotate.run(dataset, tmp_path / "ds" / "rotated", workers=1, progress=False).exists()  # beside: fine


def test_training_copy_inside_a_split_folder_is_refused(dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "DERIVED_DIR", tmp_path / "ds" / "images" / "train" / ".cache")
    with pytest.raises(ValueError, match="lies inside the source folder"):
        datasets.prepare_data(dataset)
    assert not (tmp_path / "ds" / "images" / "train" / ".cache").exists()


# ---- 3. one pixel limit, checked before decoding, that a flag raises ----

@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """A 20000 x 20000 1-bit PNG: 76 KB on disk, 1.2 GB as BGR pixels."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    Image.new("1", (20000, 20000), 1).save(path, optimize=True)
    return path


def test_a_decompression_bomb_is_refused_by_name_before_decoding(bomb, tmp_path, nothing_finder, capsys,
                                                                   monkeypatch):
    assert bomb.stat().st_size < 200_000

    def decode(*args):
        raise AssertionError("decoded: about a minute and 3 GB")

    monkeypatch.setattr(cv2, "imread", decode)
    report = detect.run([bomb], detector=nothing_finder, save_dir=tmp_path / "out")
    assert report.failed and report.failed[0][0] == bomb and "--max-pixels" in report.failed[0][1]
    assert f"{bomb}: skipped: more than 179 megapixels, over the limit of 50 megapixels" in capsys.readouterr().err


def test_the_pixel_limit_names_the_size_and_a_flag_raises_it(tmp_path, nothing_finder):
    path = tmp_path / "page.png"
    cv2.imwrite(str(path), rectangle_image(W, H, BOX))  # 1200 pixels
    with pytest.raises(ImageTooLargeError, match=r"page\.png: 40 x 30 pixels .* limit of 0\.001 megapixels .* "
                                                 r"pass --max-pixels 1200 to read it"):
        read_image(path, max_pixels=1000)
    assert read_image(path, max_pixels=1200).shape == (H, W, 3)
    assert detect.run([path], detector=nothing_finder, save_dir=tmp_path / "a", max_pixels=1000).failed
    assert not detect.run([path], detector=nothing_finder, save_dir=tmp_path / "b", max_pixels=1200).failed
    assert detect.parse_opt(["a.png", "--max-pixels", "1200"]).max_pixels == 1200


def test_evaluate_and_the_app_share_the_limit(dataset, tmp_path):
    with pytest.raises(ImageTooLargeError, match="pass --max-pixels 1200"):
        evaluate.run(data=dataset, split="val", predictor=lambda images: [], max_pixels=1000, project=tmp_path,
                     verbose=False)
    assert evaluate.parse_opt(["--weights", "w.pt", "--max-pixels", "7"]).max_pixels == 7
    assert collect.MAX_PIXELS == detect.MAX_PIXELS == evaluate.MAX_PIXELS == 50_000_000
    with pytest.raises(collect.UploadError, match="the image is 40 x 30 pixels; the limit is 0.001 megapixels"):
        collect.read_upload(next((tmp_path / "ds" / "images" / "val").glob("*.png")), max_pixels=1000)


# ---- 4, 5. damaged data is found by decoding: a cut-short JPEG is reported, a padded one is read ----

@pytest.fixture
def jpegs(tmp_path) -> dict[str, Path]:
    data = jpeg_bytes()
    files = {"cut": data[: len(data) * 2 // 3], "padded": data + b"\x00\x00\x00\x18ftypmp42" + bytes(3000),
             "whole": data}
    for name, content in files.items():
        (tmp_path / f"{name}.jpg").write_bytes(content)
    return {name: tmp_path / f"{name}.jpg" for name in files}


def test_a_truncated_jpeg_is_reported_and_fails_the_run(jpegs, tmp_path, nothing_finder, capsys):
    report = detect.run([jpegs["cut"], jpegs["whole"]], detector=nothing_finder, save_dir=tmp_path / "out")
    assert [p for p, _ in report.failed] == [jpegs["cut"]]
    assert "image file is truncated" in report.failed[0][1]
    assert f"{jpegs['cut']}: skipped: damaged JPEG image" in capsys.readouterr().err
    with pytest.raises(ImageReadError, match="cut.jpg: damaged JPEG image"):
        evaluate.load_sample(jpegs["cut"], 10, 0)


def test_one_rule_for_damage_everywhere(jpegs, tmp_path):
    """read_image (detect.py, evaluate.py), the validator and the app agree on every file."""
    png = cv2.imencode(".png", rectangle_image(W, H, BOX))[1].tobytes()
    (tmp_path / "cut.png").write_bytes(png[: len(png) // 2])
    for path, readable in [(jpegs["cut"], False), (tmp_path / "cut.png", False), (jpegs["padded"], True),
                           (jpegs["whole"], True)]:
        assert (check_image(path) is None) == readable, path
        try:
            read_image(path)
            assert readable, path
        except ImageReadError:
            assert not readable, path
        try:
            collect.read_upload(path)
            assert readable, path
        except collect.UploadError:
            assert not readable, path


def test_a_padded_jpeg_passes_dataset_validation(jpegs, tmp_path):
    data = make_dataset(tmp_path / "set", {"train": [("a.png", rectangle_image(W, H, BOX), None)]})
    shutil.copy(jpegs["padded"], tmp_path / "set" / "images" / "train" / "motion.jpg")
    shutil.copy(jpegs["cut"], tmp_path / "set" / "images" / "train" / "cut.jpg")
    _, problems = validate(load_dataset(data))
    assert [p.path.name for p in problems] == ["cut.jpg"]


# ---- 6. interrupted runs: workers die with their parent, stale folders are cleared, Ctrl-C is one line ----

def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def alive(pids: list[int]) -> list[int]:
    """The processes still running (a zombie has ended; only its exit status waits to be collected)."""
    def running(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    return [pid for pid in pids if running(pid)]


POOL_SCRIPT = """
import sys, time
from pathlib import Path
from digitdet import atomic, cli, workers

@cli.one_line_errors
def main():
    with atomic.build_into(Path(sys.argv[1])) as building:
        (building / "started").write_text("")
        workers.run(time.sleep, [60] * 4, 2)
    return 0

sys.exit(main())
"""


def start_pool_run(out: Path) -> tuple[subprocess.Popen, list[int]]:
    """A run that builds `out` with two sleeping workers, in its own session (as a terminal's foreground job)."""
    process = subprocess.Popen([sys.executable, "-c", POOL_SCRIPT, str(out)], cwd=ROOT, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(children(process.pid)) < 3:  # 2 workers and multiprocessing's tracker
        time.sleep(0.2)
    time.sleep(1.0)  # the workers are past their start
    return process, children(process.pid)


def test_workers_die_with_a_killed_parent_and_the_next_build_clears_its_folder(tmp_path, capsys):
    out = tmp_path / "out"
    process, pool = start_pool_run(out)
    assert len(pool) >= 2
    process.kill()  # kill -9: no cleanup code runs in the parent
    process.wait()
    deadline = time.time() + 5
    while alive(pool) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(pool)
    (stale,) = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.building-")]
    assert stale.startswith(f".out.building-{process.pid}-")
    with atomic.build_into(out) as building:
        (building / "done").write_text("")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert f"{tmp_path}: removed {stale}, left by an interrupted run" in capsys.readouterr().err


@pytest.mark.parametrize("sent, code, message", [(signal.SIGINT, 130, "interrupted"),
                                                 (signal.SIGTERM, 143, "terminated")])
def test_ctrl_c_and_sigterm_end_in_one_line_and_leave_nothing(tmp_path, sent, code, message):
    process, pool = start_pool_run(tmp_path / "out")
    if sent == signal.SIGINT:
        os.killpg(process.pid, sent)  # a terminal sends Ctrl-C to every process of the job
    else:
        process.send_signal(sent)  # kill's default: the parent only
    assert process.wait(30) == code
    assert one_line(process.stderr.read()) == message
    time.sleep(0.5)
    assert not alive(pool) and list(tmp_path.iterdir()) == []


def test_a_ctrl_c_while_workers_start_is_held_back_not_lost():
    script = ("import os, signal, time\nfrom digitdet import workers\n"
              "with workers.blocking(signal.SIGINT):\n"
              "    os.kill(os.getpid(), signal.SIGINT)\n    time.sleep(0.2)\n    print('held back', flush=True)\n"
              "print('lost')\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout == "held back\n" and "KeyboardInterrupt" in done.stderr


def test_stale_folders_of_other_targets_and_of_live_runs_are_left_alone(tmp_path, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    names = {f".out.building-{dead}-00aa": False,  # this target's, its run is gone: removed
             f"..out.building-{dead}-00bb.building-{dead}-00cc": False,  # a builder that built into one (train.py)
             f".out.building-{os.getpid()}-00dd": True,  # a run still going: kept
             f".other.building-{dead}-00ee": True,  # another target's: kept
             f".out.retired-{dead}-00ff": True}  # the output it replaced, when the new one never arrived: put back
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "file").write_text(name)
    atomic.clear_stale(tmp_path / "out")
    assert (tmp_path / "out" / "file").read_text() == f".out.retired-{dead}-00ff"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out"] + [n for n, kept in names.items()
                                                                          if kept and "retired" not in n])
    err = capsys.readouterr().err
    assert f"removed .out.building-{dead}-00aa, left by an interrupted run" in err
    assert f"{tmp_path / 'out'}: put back from .out.retired-{dead}-00ff" in err


def test_worker_pool_keeps_order_counts_progress_and_passes_errors(capsys):
    assert workers.run(abs, [-3, 2, -1], 1) == [3, 2, 1]
    pages = workers.run(abs, range(-40, 0), 2, progress={"desc": "pages", "total": 80}, count=lambda r: 2)
    assert pages == list(range(40, 0, -1))
    assert "pages: 100%" in capsys.readouterr().err.replace("\r", "\n").splitlines()[-1]
    with pytest.raises(TypeError):
        workers.run(abs, [1, "x", 2], 2)


# ---- 7. built folders follow the umask ----

@pytest.mark.parametrize("umask, mode", [(0o022, 0o755), (0o077, 0o700), (0o002, 0o775)])
def test_built_folders_follow_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        with atomic.build_into(tmp_path / "out") as building:
            (building / "a").write_text("")
    finally:
        os.umask(previous)
    assert (tmp_path / "out").stat().st_mode & 0o777 == mode


# ---- 8. one line naming the file and what to do, instead of a traceback ----

def test_detect_save_dir_naming_a_file(tmp_path, capsys):
    (tmp_path / "notes").write_text("mine")
    cv2.imwrite(str(tmp_path / "a.png"), rectangle_image(W, H, BOX))
    assert detect.main([str(tmp_path / "a.png"), "--save-dir", str(tmp_path / "notes")]) == 1
    assert one_line(capsys.readouterr().err) == (f"error: {tmp_path / 'notes'}: --save-dir names a file, not a "
                                                 f"folder; choose a folder")
    assert (tmp_path / "notes").read_text() == "mine"


def check_command(data: Path, capsys) -> tuple[int, str]:
    code = labels.main(["check", str(data)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out + captured.err


def test_labels_check_reports_bad_files_by_name(dataset, tmp_path, capsys):
    root = tmp_path / "ds"
    (root / "labels" / "train" / "t0.txt").write_bytes(b"0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2 \xe9t\xe9\n")
    (root / "labels" / "train" / "t1.txt").unlink()
    (root / "labels" / "train" / "t1.txt").mkdir()
    code, text = check_command(dataset, capsys)
    assert code == 1
    assert f"{root / 'labels' / 'train' / 't0.txt'}:2: not UTF-8 text; save the file as UTF-8" in text
    assert f"{root / 'labels' / 'train' / 't1.txt'}: is a folder, not a label file" in text


def test_labels_check_names_keys_that_are_not_class_ids(dataset, capsys):
    dataset.write_text("train: images/train\nnames: {a: '0'}\n")
    code, text = check_command(dataset, capsys)
    assert code == 1 and one_line(text) == f"error: {dataset}: 'names' keys must be class ids 0..0, got ['a']"


def test_labels_check_finds_a_split_folder_not_called_images(dataset, tmp_path, capsys):
    (tmp_path / "ds" / "images").rename(tmp_path / "ds" / "pictures")
    dataset.write_text("train: pictures/train\nval: pictures/val\nnames: ['0', '1']\n")
    code, text = check_command(dataset, capsys)
    assert code == 1
    assert f"{tmp_path / 'ds' / 'pictures' / 'train'}: its images are in no folder named 'images'" in text


def test_list_file_paths_may_contain_spaces(dataset, tmp_path, capsys):
    root = tmp_path / "ds"
    (root / "images" / "my scans").mkdir()
    (root / "labels" / "my scans").mkdir()
    shutil.move(root / "images" / "train" / "t0.png", root / "images" / "my scans" / "page 1.png")
    shutil.move(root / "labels" / "train" / "t0.txt", root / "labels" / "my scans" / "page 1.txt")
    (root / "train.txt").write_text("images/my scans/page 1.png\n  images/train/t1.png  \n\nimages/train/t2.png\n")
    dataset.write_text(dataset.read_text().replace("train: images/train", "train: train.txt"))
    assert [p.name for p in load_dataset(dataset).images("train")] == ["page 1.png", "t1.png", "t2.png"]
    code, text = check_command(dataset, capsys)
    assert code == 0 and "problems: 0" in text


def test_an_image_given_as_data_yaml(jpegs, capsys):
    code, text = check_command(jpegs["whole"], capsys)
    assert code == 1
    assert one_line(text) == f"error: {jpegs['whole']}: is a JPEG image, not a data.yaml; give the dataset's data.yaml"


def test_non_utf8_data_yaml_and_labels_in_every_tool(dataset, tmp_path, capsys):
    yaml_text = dataset.read_bytes()
    dataset.write_bytes(yaml_text + b"# caf\xe9\n")
    lines = yaml_text.count(b"\n") + 1
    expected = f"error: {dataset}:{lines}: not UTF-8 text (byte {len(yaml_text) + 5}); save it as UTF-8"
    for main, args in [(rotate.main, [str(dataset), str(tmp_path / "out")]),
                       (evaluate.main, ["--weights", "none.pt", "--data", str(dataset), "--split", "val",
                                        "--project", str(tmp_path)]),
                       (train.main, ["--data", str(dataset), "--weights", "yolov8n.yaml", "--project", str(tmp_path)]),
                       (labels.main, ["check", str(dataset)])]:
        assert main(args) == 1, main
        assert one_line(capsys.readouterr().err) == expected, main
    dataset.write_bytes(yaml_text)
    (tmp_path / "ds" / "labels" / "val" / "v0.txt").write_bytes(b"0 0.5 0.5 0.2 0.2 \xff\n")
    for main, args in [(rotate.main, [str(dataset), str(tmp_path / "out")]),
                       (evaluate.main, ["--weights", "none.pt", "--data", str(dataset), "--split", "val",
                                        "--project", str(tmp_path)])]:
        assert main(args) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err and f"{tmp_path / 'ds' / 'labels' / 'val' / 'v0.txt'}:1: not UTF-8" in err
    assert not (tmp_path / "out").exists()


def test_evaluate_validates_the_split_before_the_model(dataset, tmp_path, capsys):
    (tmp_path / "ds" / "images" / "val" / "empty.png").write_bytes(b"")
    args = ["--weights", str(tmp_path / "none.pt"), "--data", str(dataset), "--split", "val", "--project",
            str(tmp_path / "results")]
    assert evaluate.main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{tmp_path / 'ds' / 'images' / 'val' / 'empty.png'}: unreadable image" in err
    assert "none.pt" not in err and not (tmp_path / "results").exists()  # stopped before loading the model


def test_train_names_a_truncated_checkpoint(dataset, tmp_path, capsys):
    weights = tmp_path / "cut.pt"
    weights.write_bytes((ROOT / "weights" / "best.pt").read_bytes()[:100_000])
    assert train.main(["--data", str(dataset), "--weights", str(weights), "--project", str(tmp_path)]) == 1
    assert one_line(capsys.readouterr().err) == (f"error: {weights}: not a usable ultralytics checkpoint (empty, "
                                                 f"truncated or corrupted: TypeError); give another .pt file")


def test_an_existing_file_as_output_folder_is_refused_even_with_overwrite(dataset, tmp_path, capsys):
    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    assert rotate.main([str(dataset), str(mine), "--overwrite", "--workers", "1"]) == 1
    assert one_line(capsys.readouterr().err) == (f"error: {mine} is a file, not a folder; choose another output "
                                                 f"folder")
    with pytest.raises(FileExistsError, match="is a file, not a folder"):  # the page builder's --out too
        with atomic.build_into(mine, overwrite=True):
            pass
    assert mine.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["ds", "notes.txt"]


# ---- 9. options checked at the door ----

@pytest.mark.parametrize("parse, args, message", [
    (detect.parse_opt, ["a.png", "--batch", "-1"], "argument --batch: must be at least 1, got -1"),
    (detect.parse_opt, ["a.png", "--batch", "0"], "argument --batch: must be at least 1, got 0"),
    (detect.parse_opt, ["a.png", "--conf", "-1"], "argument --conf: must be between 0 and 1, got -1"),
    (detect.parse_opt, ["a.png", "--conf", "2"], "argument --conf: must be between 0 and 1, got 2"),
    (detect.parse_opt, ["a.png", "--iou", "5"], "argument --iou: must be between 0 and 1, got 5"),
    (detect.parse_opt, ["a.png", "--imgsz", "0"], "argument --imgsz: must be at least 32, got 0"),
    (detect.parse_opt, ["a.png", "--imgsz", "100"], "argument --imgsz: must be a multiple of 32, got 100"),
    (detect.parse_opt, ["a.png", "--conf", "nan"], "argument --conf: expected a finite number, got nan"),
    (evaluate.parse_opt, ["--weights", "w.pt", "--batch", "0"], "argument --batch: must be at least 1, got 0"),
    (evaluate.parse_opt, ["--weights", "w.pt", "--iou", "1.5"], "argument --iou: must be between 0 and 1, got 1.5"),
    (rotate.parse_opt, ["d.yaml", "out", "--quality", "101"], "argument --quality: must be between 1 and 100"),
    (rotate.parse_opt, ["d.yaml", "out", "--workers", "0"], "argument --workers: must be at least 1, got 0"),
])
def test_bad_options_are_refused_at_the_door(parse, args, message, capsys):
    with pytest.raises(SystemExit) as stop:
        parse(args)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_range_types_for_every_script():
    count = cli.integer(0)  # e.g. the page builder's --val
    assert count("0") == 0 and count("12") == 12
    for bad in ("-3", "1.5", "x"):
        with pytest.raises(Exception, match="at least 0|whole number"):
            count(bad)
    assert cli.number(0, 1)("0.25") == 0.25


# ---- 10. consistency ----

def test_duplicate_class_names_are_refused_by_every_tool(dataset, capsys):
    dataset.write_text("train: images/train\nval: images/val\nnames: ['0', '1', ' 1']\n")
    code, text = check_command(dataset, capsys)
    assert code == 1 and one_line(text) == f"error: {dataset}: class names ['1'] appear more than once in 'names'"
    with pytest.raises(DatasetError, match="appear more than once"):
        datasets.digit_classes(["0", "1", "1 "], dataset)


def test_a_class_id_written_as_a_float_is_read_as_ultralytics_reads_it(tmp_path):
    assert parse_line("1.0 0.5 0.5 0.2 0.2", 10).cls == 1
    with pytest.raises(ValueError, match="class id 1.5 is not a whole number"):
        parse_line("1.5 0.5 0.5 0.2 0.2", 10)
    path = tmp_path / "a.txt"
    path.write_text("3.0 0.5 0.5 0.2 0.2\n")
    datasets.relabel([path], lambda cls: cls + 1)
    assert path.read_text() == "4 0.5 0.5 0.2 0.2\n"


def test_evaluating_a_split_without_labels_is_an_error(dataset, tmp_path):
    for label in (tmp_path / "ds" / "labels" / "val").glob("*.txt"):
        label.unlink()
    with pytest.raises(DatasetError, match="split 'val' has 2 images but not one labeled box"):
        evaluate.run(data=dataset, split="val", predictor=lambda images: [], project=tmp_path, verbose=False)


def test_detect_makes_no_folder_when_nothing_matched(tmp_path, nothing_finder):
    report = detect.run([str(tmp_path / "none" / "*.png")], detector=nothing_finder, save_dir=tmp_path / "out",
                        save_json=True, verbose=False)
    assert report.failed and not (tmp_path / "out").exists()
