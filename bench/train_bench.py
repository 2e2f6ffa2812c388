"""Benchmark: training images/s on this machine, from the raw model step to train.py's trainer.

On N new pages from the page builder (640 x 640), yolov8n from yolov8n.yaml, batch B, at each --imgsz:
  1. raw step fp32: forward, loss, backward and SGD step on one fixed batch of pages, nothing else (the ceiling);
  2. raw step bf16: the same with the forward pass under torch.autocast("cpu", dtype=torch.bfloat16);
  3. plain ultralytics: YOLO(...).train(...) as train.py ran before its own trainer (fp32, ultralytics' thread
     count, batches loaded in the training process);
  4. train.py: digitdet.trainer.Trainer with train.py's defaults (precision auto, the fastest thread count).
Raw steps run on the thread count that was fastest in a trial step (as train.py's trainer does). Rows 3 and 4 are
timed from the end of their first batch (for train.py: of the first after its thread trial) to the end of the last:
data loading and augmentation, target assignment, step, EMA and logging are in; setup, the thread trial, validation
and checkpoints are costs per epoch, shown with --profile.
The rows take turns, round after round, so that a machine whose load changes slows them alike; compare figures
within one run only.

Goals (imgsz 480): train.py >= 2.5 x plain ultralytics, and >= 85% of the raw bf16 step.

Usage:
    python bench/train_bench.py                            # 200 pages, imgsz 480 and 640, batch 8, 2 rounds
    python bench/train_bench.py --imgsz 480 --seconds 60 --rounds 3
    python bench/train_bench.py --profile                  # where one epoch's time goes, plain and train.py
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as train.py sets it, before torch loads OpenMP

import digitdet  # noqa: F401 - first: it sets ultralytics up offline
import torch
from ultralytics import YOLO
from ultralytics.cfg import get_cfg
from ultralytics.data import build_yolo_dataset
from ultralytics.data.utils import check_det_dataset
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.nn.tasks import DetectionModel

from digitdet.precision import BF16_FLAGS, cpu_flags
from digitdet.trainer import Fp32Loss, Trainer, cpu_count, thread_counts

SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"
SAFE = {"fliplr": 0.0, "flipud": 0.0}  # as train.py: mirrored digits are never trained on
ROWS = ("raw step fp32", "raw step bf16", "plain ultralytics", "train.py")
# one epoch's parts: (file, function) whose cumulative time in the profile each part is
PARTS = {
    "data loading + augmentation": ("torch/utils/data/dataloader.py", "__next__"),
    "preprocess (to float)": ("ultralytics/models/yolo/detect/train.py", "preprocess_batch"),
    "forward": ("ultralytics/nn/tasks.py", "predict"),
    "loss": ("ultralytics/utils/loss.py", "__call__"),
    "  of which target assignment": ("ultralytics/utils/tal.py", "forward"),
    "backward": ("torch/_tensor.py", "backward"),
    "optimizer step (clip, SGD, EMA)": ("ultralytics/engine/trainer.py", "optimizer_step"),
    "  of which EMA": ("ultralytics/utils/torch_utils.py", "update"),
    "logging (progress bar)": ("ultralytics/utils/tqdm.py", "set_description"),
}


class Enough(Exception):
    """Raised from a callback to end a timed training run."""


def make_pages(out: Path, count: int, mnist_dir: Path) -> Path:
    from augment import pages

    return pages.run(mnist_dir, out, counts={"train": count, "val": max(count // 10, 8)}, size=640, seed=4321,
                     workers=2, progress=False)


def fixed_batch(data_yaml: Path, imgsz: int, batch: int) -> dict:
    """One batch of augmented training pages, as the trainer feeds it to the model."""
    data = check_det_dataset(str(data_yaml))
    dataset = build_yolo_dataset(get_cfg(overrides={"imgsz": imgsz, **SAFE}), data["train"], batch, data)
    items = dataset.collate_fn([dataset[i] for i in range(batch)])
    return {**items, "img": items["img"].float() / 255}


class RawStep:
    """yolov8n's forward, loss, backward and SGD step on one fixed batch; the loss in fp32, as train.py's trainer
    computes it."""

    def __init__(self, batch: dict, nc: int):
        self.batch, self.model = batch, DetectionModel("yolov8n.yaml", nc=nc, verbose=False)
        self.model.args = get_cfg()  # the loss gains
        self.model.criterion = Fp32Loss(self.model.init_criterion())
        self.model.train()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9)
        self.threads, self.warm = None, False  # the fastest thread count (in fp32), found at the first use

    def step(self, bf16: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, _ = self.model(self.batch)
        loss.sum().backward()
        self.optimizer.step()
        self.optimizer.zero_grad()

    def rate(self, bf16: bool, seconds: float) -> tuple[int, float]:
        self.threads = self.threads or self.fastest_threads()
        torch.set_num_threads(self.threads)
        if bf16 and not self.warm:  # the first bf16 step builds its kernels
            self.step(bf16)
            self.warm = True
        steps, start = 0, time.perf_counter()
        while not steps or time.perf_counter() - start < seconds:
            self.step(bf16)
            steps += 1
        return steps * len(self.batch["img"]), time.perf_counter() - start

    def fastest_threads(self) -> int:
        """One fp32 step to build the kernels for these shapes, then one timed step on each thread count."""
        self.step(False)
        seconds = {}
        for count in thread_counts():
            torch.set_num_threads(count)
            start = time.perf_counter()
            self.step(False)
            seconds[count] = time.perf_counter() - start
        return min(seconds, key=seconds.get)


def train_rate(trainer, data_yaml: Path, imgsz: int, batch: int, seconds: float, project: Path) -> tuple[int, float]:
    """Images and seconds from the end of the first batch to the end of the last (at least 2 batches)."""
    ends = []

    def batch_end(trainer):
        if getattr(trainer, "threads", None) and trainer.threads.trials:
            return  # train.py's thread trial at the epoch's start: a cost per epoch, in --profile
        ends.append(time.perf_counter())
        if len(ends) > 2 and ends[-1] - ends[0] >= seconds:
            raise Enough

    def epoch_end(_):
        raise Enough

    model = YOLO("yolov8n.yaml")
    model.add_callback("on_train_batch_end", batch_end)
    model.add_callback("on_train_epoch_end", epoch_end)
    try:
        model.train(trainer=trainer, data=str(data_yaml), imgsz=imgsz, batch=batch, epochs=100, device="cpu",
                    plots=False, project=str(project), name="bench", exist_ok=True, verbose=False, **SAFE)
    except Enough:
        pass
    if len(ends) < 2:
        raise SystemExit("an epoch ended before 2 batches were timed: give more --pages")
    return batch * (len(ends) - 1), ends[-1] - ends[0]


def cpu_line() -> str:
    """The cores, torch's vector instructions and whether bf16 is native: why the bf16 row is what it is."""
    native = sorted(cpu_flags() & BF16_FLAGS)
    bf16 = f"native bf16 ({', '.join(native)})" if native else "no avx512_bf16/amx_bf16 flag: bf16 is emulated"
    return f"CPU: {cpu_count()} cores, torch {torch.backends.cpu.get_cpu_capability()}, {bf16}"


def bench(data_yaml: Path, sizes: list[int], batch: int, seconds: float, rounds: int, project: Path) -> None:
    print(cpu_line(), flush=True)
    nc = len(check_det_dataset(str(data_yaml))["names"])
    steps = {imgsz: RawStep(fixed_batch(data_yaml, imgsz, batch), nc) for imgsz in sizes}
    measure = {
        ROWS[0]: lambda imgsz: steps[imgsz].rate(False, seconds),
        ROWS[1]: lambda imgsz: steps[imgsz].rate(True, seconds),
        ROWS[2]: lambda imgsz: train_rate(DetectionTrainer, data_yaml, imgsz, batch, seconds, project),
        ROWS[3]: lambda imgsz: train_rate(Trainer, data_yaml, imgsz, batch, seconds, project),
    }
    totals = {(row, imgsz): [0, 0.0] for row in ROWS for imgsz in sizes}
    for turn in range(rounds):
        for imgsz in sizes:
            for row in ROWS[turn % 2::] + ROWS[:turn % 2]:  # each round starts one row later
                images, elapsed = measure[row](imgsz)
                totals[row, imgsz][0] += images
                totals[row, imgsz][1] += elapsed
                print(f"  round {turn + 1} imgsz {imgsz}: {row}: {images / elapsed:.2f} img/s", flush=True)
    rate = {key: images / elapsed for key, (images, elapsed) in totals.items()}
    print(f"\nimages/s, batch {batch}, {rounds} rounds of >= {seconds:g} s per row and size; {cpu_line()}")
    print("| | " + " | ".join(f"imgsz {imgsz}" for imgsz in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for number, row in enumerate(ROWS, 1):
        print(f"| ({number}) {row} | " + " | ".join(f"{rate[row, imgsz]:.2f}" for imgsz in sizes) + " |")
    for name, (top, bottom) in {"(4)/(3)": (ROWS[3], ROWS[2]), "(4)/(2)": (ROWS[3], ROWS[1])}.items():
        print(f"| {name} | " + " | ".join(f"{rate[top, imgsz] / rate[bottom, imgsz]:.2f}" for imgsz in sizes) + " |")
    print("raw step threads: " + ", ".join(f"{steps[imgsz].threads} at imgsz {imgsz}" for imgsz in sizes))


def profile_epoch(trainer, data_yaml: Path, imgsz: int, batch: int, images: int, project: Path, **options) -> dict:
    """Seconds per part of one epoch of `images` images: the batches under cProfile, then validation and
    checkpoint timed by ultralytics' callbacks."""
    profiler, marks = cProfile.Profile(), {}

    def stop():
        raise Enough

    def mark(name, then=None):
        def callback(_):
            marks[name] = time.perf_counter()
            if then:
                then()
        return callback

    model = YOLO("yolov8n.yaml")
    for event, then in (("on_train_start", profiler.enable), ("on_train_epoch_end", profiler.disable),
                        ("on_val_start", None), ("on_val_end", None), ("on_model_save", stop)):
        model.add_callback(event, mark(event, then))
    try:
        model.train(trainer=trainer, data=str(data_yaml), imgsz=imgsz, batch=batch, epochs=100, device="cpu",
                    plots=False, project=str(project), name="profile", exist_ok=True, verbose=False, **SAFE,
                    **options)
    except Enough:
        pass
    stats = pstats.Stats(profiler).stats
    cumulative = {}
    for (file, _, function), (_, _, _, seconds, _) in stats.items():
        for part, (suffix, name) in PARTS.items():
            if function == name and file.endswith(suffix):
                cumulative[part] = cumulative.get(part, 0.0) + seconds
    batches = marks["on_train_epoch_end"] - marks["on_train_start"]
    return {**cumulative, "other": batches - sum(v for k, v in cumulative.items() if not k.startswith(" ")),
            "all batches": batches, "validation": marks["on_val_end"] - marks["on_val_start"],
            "checkpoint (last.pt, best.pt)": marks["on_model_save"] - marks["on_val_end"]}


def profile(data_yaml: Path, imgsz: int, batch: int, images: int, project: Path) -> None:
    columns = {
        "plain ultralytics": profile_epoch(DetectionTrainer, data_yaml, imgsz, batch, images, project,
                                           fraction=images),
        "train.py": profile_epoch(functools.partial(Trainer, epoch_images=images), data_yaml, imgsz, batch,
                                  images, project),
    }
    print(f"\none epoch of {images} images at imgsz {imgsz}, batch {batch}: seconds (share of the batches' time)")
    print("| part | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for part in [*PARTS, "other", "all batches", "validation", "checkpoint (last.pt, best.pt)"]:
        cells = []
        for times in columns.values():
            seconds = times.get(part, 0.0)
            cells.append(f"{seconds:.1f}" + (f" ({seconds / times['all batches']:.0%})" if part in PARTS or
                                             part == "other" else ""))
        print(f"| {part} | " + " | ".join(cells) + " |")
    print("| images/s over the batches | " + " | ".join(f"{images / t['all batches']:.2f}"
                                                      for t in columns.values()) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=200, help="train pages to build (default: %(default)s)")
    parser.add_argument("--imgsz", type=int, nargs="+", default=[480, 640], help="training sizes (default: 480 640)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=15, help="timed seconds per row, size and round "
                                                                  "(default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of all rows (default: %(default)s)")
    parser.add_argument("--profile", action="store_true", help="profile one epoch by part instead")
    parser.add_argument("--epoch-images", type=int, default=96, help="--profile: images in the epoch "
                                                                      "(default: %(default)s)")
    parser.add_argument("--mnist", type=Path, default=SHARED_MNIST, help="MNIST folder (default: %(default)s)")
    opt = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        data_yaml = make_pages(Path(tmp) / "pages", opt.pages, opt.mnist)
        if opt.profile:
            profile(data_yaml, opt.imgsz[0], opt.batch, opt.epoch_images, Path(tmp) / "runs")
        else:
            bench(data_yaml, opt.imgsz, opt.batch, opt.seconds, opt.rounds, Path(tmp) / "runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
