"""digitdet.trainer: CPU precision choice, bf16 training with fp32 checkpoints, fp32 as before, short epochs, the
enlarging cap, resume."""

import functools
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from ultralytics import YOLO
from ultralytics.cfg import get_cfg
from ultralytics.data import build_yolo_dataset
from ultralytics.data.utils import check_det_dataset
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import NUM_THREADS
from ultralytics.utils.callbacks import base as callbacks

import train
from digitdet import datasets
from digitdet import precision as precisions
from digitdet import trainer as trainers
from digitdet.detector import DEFAULT_WEIGHTS, MAX_GAIN, Detector
from digitdet.trainer import EpochDraw, Trainer

IMGSZ, BATCH = 64, 4
SHIPPED = train.SHIPPED / "best.pt"


class Stop(Exception):
    """Raised from a callback to end a run early."""


@pytest.fixture(autouse=True)
def derived_dir(tmp_path, monkeypatch):
    """Derived datasets go to the test's tmp folder, never into the project's .cache/."""
    monkeypatch.setattr(datasets, "DERIVED_DIR", tmp_path / "derived")


@pytest.fixture(autouse=True)
def thread_count():
    """The trainer sets torch's thread count; later tests get the one they started with."""
    count = torch.get_num_threads()
    yield
    torch.set_num_threads(count)


def fit(trainer, data, project, callbacks=(), **options):
    """A tiny run from yolov8n.yaml: ultralytics' own train() with the given trainer class, on a linked copy of the
    data (ultralytics writes label caches beside the labels, and the session's tiny_pages must stay as built)."""
    data = datasets.prepare_data(data, rotate=False)
    model = YOLO("yolov8n.yaml")
    for event, callback in callbacks:
        model.add_callback(event, callback)
    model.train(trainer=trainer, data=str(data), batch=BATCH, device="cpu", plots=False, fliplr=0.0,
                project=str(project), exist_ok=True, **{"epochs": 1, "name": "run", "imgsz": IMGSZ, **options})
    return model


def dtypes(value, key=""):
    """{path: dtype} of every tensor in a checkpoint: the model's state dict, optimizer state, ..."""
    if isinstance(value, torch.nn.Module):
        value = value.state_dict()
    if isinstance(value, torch.Tensor):
        return {key: value.dtype}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    return {path: dtype for k, v in items for path, dtype in dtypes(v, f"{key}/{k}").items()}


# Precision


@pytest.mark.parametrize("flags, expected", [("fpu avx2 avx512f avx512_vnni", "fp32"),
                                             ("fpu avx2 avx512f avx512_bf16", "bf16"),
                                             ("fpu amx_tile amx_bf16 amx_int8", "bf16")])
def test_auto_precision_follows_the_cpu_flags(tmp_path, monkeypatch, tiny_pages, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    monkeypatch.setattr(precisions, "CPUINFO", cpuinfo)
    assert precisions.resolve_precision("auto", torch.device("cpu")) == expected
    assert precisions.resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert precisions.resolve_precision("auto", torch.device("cuda", 0)) == "auto"  # ultralytics' AMP check decides
    made = Trainer(overrides={"model": "yolov8n.yaml", "data": str(tiny_pages), "device": "cpu",
                              "project": str(tmp_path / "runs")})
    assert made.precision == expected
    assert Detector(DEFAULT_WEIGHTS).backend.precision == expected  # inference follows the same flags


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match=r"precision 'fp16': expected one of \('auto', 'fp32', 'bf16'\)"):
        precisions.resolve_precision("fp16", torch.device("cpu"))
    with pytest.raises(SystemExit):
        train.parse_opt(["--precision", "fp16"])


def test_command_line_trainer_options():
    opt = train.parse_opt([])
    assert (opt.precision, opt.epoch_images, opt.val_images, opt.max_gain) == ("auto", None, trainers.VAL_IMAGES,
                                                                               MAX_GAIN)
    opt = train.parse_opt(["--precision", "bf16", "--epoch-images", "2000", "--val-images", "0", "--max-gain", "inf"])
    assert (opt.precision, opt.epoch_images, opt.val_images, opt.max_gain) == ("bf16", 2000, 0, math.inf)


@pytest.mark.slow
def test_bf16_trains_in_bf16_keeps_fp32_state_and_saves_an_fp32_runs_checkpoint(tiny_pages, tmp_path):
    seen = {}

    def first_output(module, args, out):  # the first conv's output: what autocast made of the forward pass
        seen.setdefault("forward", out.dtype)

    def record_forward(trainer):
        trainer.model.model[0].register_forward_hook(first_output)

    def record_state(trainer):  # what is kept between steps, when the checkpoint is written
        state = [*trainer.model.parameters(), *trainer.ema.ema.parameters(),
                 *(v for s in trainer.optimizer.state.values() for v in s.values() if v.is_floating_point())]
        seen["state"] = {v.dtype for v in state}
        seen["fp32 loss"] = isinstance(trainer.model.criterion, trainers.Fp32Loss)

    checkpoints = {}
    for precision in ("bf16", "fp32"):
        hooks = [("on_train_start", record_forward), ("on_model_save", record_state)] if precision == "bf16" else []
        fit(functools.partial(Trainer, precision=precision, epoch_images=BATCH), tiny_pages, tmp_path, hooks,
            name=precision)
        checkpoints[precision] = tmp_path / precision / "weights"
    assert seen == {"forward": torch.bfloat16, "state": {torch.float32}, "fp32 loss": True}
    for name in ("last.pt", "best.pt"):
        bf16, fp32 = (torch.load(checkpoints[p] / name, weights_only=False) for p in ("bf16", "fp32"))
        assert bf16.keys() == fp32.keys() and dtypes(bf16) == dtypes(fp32)
        assert torch.float16 in dtypes(bf16).values()  # ultralytics' own format: half weights
    results = YOLO(str(checkpoints["bf16"] / "best.pt")).predict(str(tiny_pages.parent / "images" / "test"),
                                                                  imgsz=IMGSZ, verbose=False)
    assert len(results) == 4 and all(r.boxes is not None for r in results)


def test_bf16_losses_are_computed_in_fp32(tiny_pages):
    model = YOLO(str(SHIPPED)).model.float().train()  # a trained model: its boxes are near the truth
    model.args = get_cfg()
    data = check_det_dataset(str(datasets.prepare_data(tiny_pages, rotate=False)))  # label caches go in the copy
    pages = build_yolo_dataset(get_cfg(overrides={"imgsz": 320}), data["val"], 2, data, mode="val")  # not augmented
    batch = pages.collate_fn([pages[0], pages[1]])
    batch["img"] = batch["img"].float() / 255

    def loss(bf16, criterion):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return [float(v) for v in criterion(model.predict(batch["img"]), batch)[1].values()]

    fp32 = loss(False, model.init_criterion())
    assert loss(True, trainers.Fp32Loss(model.init_criterion())) == pytest.approx(fp32, rel=0.005)
    assert loss(True, model.init_criterion()) != pytest.approx(fp32, rel=0.005)  # why: bf16 box decoding


@pytest.mark.slow
def test_fp32_trains_as_the_plain_trainer(tiny_pages, tmp_path):
    losses = {}

    def record(name):
        def callback(trainer):
            losses.setdefault(name, []).append(trainer.loss.item())
            if len(losses[name]) == 3:
                raise Stop
        return callback

    for name, trainer in {"plain": DetectionTrainer,
                          "fp32": functools.partial(Trainer, precision="fp32", threads=NUM_THREADS)}.items():
        with pytest.raises(Stop):
            fit(trainer, tiny_pages, tmp_path, [("on_train_batch_end", record(name))], name=name)
    assert len(losses["plain"]) == 3 and losses["plain"][0] > 0
    assert losses["fp32"] == pytest.approx(losses["plain"], rel=1e-5)


def test_each_epoch_keeps_the_thread_count_its_trial_batches_found_fastest(monkeypatch):
    monkeypatch.setattr(trainers, "cpu_count", lambda: 4)
    threads = trainers.Threads()
    assert threads.candidates == [4, 2, 1] and torch.get_num_threads() == 4
    clock = iter([0.0, 10.0, 16.0, 19.0])  # first batch (untimed), then 10 s on 4, 6 s on 2, 3 s on 1
    monkeypatch.setattr(trainers, "perf_counter", lambda: next(clock))
    threads.epoch_start()
    counts = []
    for _ in range(5):
        threads.batch_end()
        counts.append(torch.get_num_threads())
    assert counts == [4, 2, 1, 1, 1]  # each candidate in turn, then the fastest for the rest of the epoch
    clock = iter([0.0, 2.0, 6.0, 12.0])  # later, with the machine quiet: every core is fastest
    threads.epoch_start()
    for _ in range(4):
        threads.batch_end()
    assert threads.count == 4 and torch.get_num_threads() == 4
    fixed = trainers.Threads(fixed=3)
    fixed.epoch_start()
    fixed.batch_end()
    assert fixed.candidates == [3] and torch.get_num_threads() == 3


def test_thread_trials_compare_seconds_per_pixel_for_batches_of_any_size(monkeypatch):
    monkeypatch.setattr(trainers, "cpu_count", lambda: 2)
    threads = trainers.Threads()
    trainer = SimpleNamespace(batch_pixels=0)
    clock = iter([0.0, 4.0, 6.0])  # first batch (untimed), then 4 s on 2 threads, 2 s on 1
    monkeypatch.setattr(trainers, "perf_counter", lambda: next(clock))
    threads.epoch_start()
    for pixels in (8 * 3 * 640 * 640, 8 * 3 * 960 * 960, 8 * 3 * 480 * 480):  # multi_scale's sizes, drawn per batch
        trainer.batch_pixels = pixels
        threads.batch_end(trainer)
    # 2 threads took twice as long on four times the pixels (960 against 480 square): they are the faster
    assert threads.seconds[2] == pytest.approx(4.0 / (8 * 3 * 960 * 960))
    assert threads.count == 2 and torch.get_num_threads() == 2


# Short epochs, validation subset, resume


def test_epoch_draws_walk_through_seeded_shuffles():
    draw = EpochDraw(size=10, images=4, seed=7)
    draws = [list(draw) for _ in range(5)]
    assert len(draw) == 4 and all(len(d) == 4 for d in draws) and draws[0] != draws[1]
    walk = sum(draws, [])
    assert sorted(walk[:10]) == list(range(10)) and sorted(walk[10:20]) == list(range(10))  # each once per pass
    again = EpochDraw(size=10, images=4, seed=7)
    again.draws = 3  # a resumed run at epoch 3 draws what the interrupted one would have
    assert list(again) == draws[3]
    assert list(EpochDraw(size=10, images=4, seed=8)) != draws[0]
    assert len(EpochDraw(size=3, images=4, seed=0)) == 3


@pytest.mark.slow
def test_epoch_images_make_short_epochs_and_validation_uses_the_subset(tiny_pages, tmp_path):
    batches, validated = [], []
    callbacks = [("on_train_batch_end", lambda trainer: batches.append(trainer.epoch)),
                 ("on_val_start", lambda validator: validated.append((len(validator.dataloader.dataset),
                                                                      validator.dataloader.batch_size)))]
    model = fit(functools.partial(Trainer, epoch_images=2 * BATCH, val_images=3), tiny_pages, tmp_path, callbacks,
                epochs=2)
    assert batches == [0, 0, 1, 1]  # 8 of the 12 train images per epoch, in batches of 4
    # the subset after each epoch, then best.pt on the whole val split, one image per batch (ultralytics' NMS
    # time limit would drop detections of larger batches on a CPU)
    assert validated == [(3, 1), (3, 1), (4, 1)]
    assert len((model.trainer.save_dir / "results.csv").read_text().splitlines()) == 1 + 2


@pytest.mark.slow
def test_training_enlarges_small_images_at_most_max_gain_and_validation_as_ultralytics(tiny_pages, tmp_path):
    """tiny_pages are 320 x 320: at imgsz 640 ultralytics' loader enlarges them 2x; with max_gain 1.5 the training
    pages are 480 x 480 on the 640 canvas, their digits 1.5x as large as in the file (as detect.py shows them)."""
    loaded = []

    def look(trainer):
        loaded.extend([trainer.train_loader.dataset, trainer.test_loader.dataset])
        raise Stop

    with pytest.raises(Stop):
        fit(functools.partial(Trainer, max_gain=1.5), tiny_pages, tmp_path, [("on_pretrain_routine_end", look)],
            imgsz=640, mosaic=0.0, scale=0.0, translate=0.0)
    training, validation = loaded
    assert training.load_image(0)[1:] == ((320, 320), (480, 480))
    assert validation.load_image(0)[1:] == ((320, 320), (640, 640))  # validation stays ultralytics' own
    sample = training[0]  # through ultralytics' augmentation with no random scale or shift: centred, at 1.5x
    assert tuple(sample["img"].shape[1:]) == (640, 640)
    source, boxes = training.labels[0]["bboxes"], sample["bboxes"].numpy()  # xywh of the 320 page, of the canvas
    assert len(boxes) == len(source) > 0
    np.testing.assert_allclose(boxes[:, 2:] * 640, source[:, 2:] * 320 * 1.5, atol=1)
    np.testing.assert_allclose((boxes[:, :2] - 0.5) * 640, (source[:, :2] - 0.5) * 320 * 1.5, atol=1)


@pytest.mark.slow
def test_resume_goes_on_with_the_runs_own_trainer_options(tiny_pages, tmp_path, monkeypatch):
    def interrupt(trainer):
        raise Stop

    options = dict(data=tiny_pages, weights="yolov8n.yaml", epochs=2, imgsz=IMGSZ, batch=BATCH, workers=0,
                   project=tmp_path / "runs", name="cut", rotate=False, plots=False, epoch_images=BATCH, max_gain=2.0)
    with monkeypatch.context() as patch:  # the run stops right after saving its first epoch
        patch.setitem(callbacks.default_callbacks, "on_model_save", [interrupt])
        with pytest.raises(Stop):
            train.run(**options)
    resumed = []
    monkeypatch.setattr(Trainer, "final_eval", lambda trainer: resumed.append(
        (trainer.start_epoch, trainer.epoch_images, trainer.max_gain, trainer.draw.draws, len(trainer.train_loader),
         trainer.args.time)))
    run_dir = train.run(resume=True, name="cut", project=tmp_path / "runs", workers=0, epoch_images=None, max_gain=1.0,
                        time=1e-5)  # a new time: the schedule is refitted and the run ends after this epoch
    # epoch 2, drawn as the second draw, with the run's 4 images per epoch and its max_gain
    assert resumed == [(1, BATCH, 2.0, 2, 1, 1e-5)]
    assert len((run_dir / "results.csv").read_text().splitlines()) == 1 + 2
