"""Ultralytics' DetectionTrainer, made to train as fast as a CPU allows, and to checkpoint often.

What changes against the plain trainer (everything else is ultralytics' own code, on purpose):
  - precision: on a CPU with native bf16 (avx512_bf16 or amx_bf16 in /proc/cpuinfo) the forward pass runs under
    bf16 autocast and the loss in fp32 on its outputs; weights, gradients, optimizer state, EMA and validation stay
    fp32, and checkpoints are ultralytics' own, with the same tensor dtypes as an fp32 run's. On CUDA, ultralytics'
    own AMP as before.
  - threads: ultralytics sets torch to cpu_count - 1 threads (1 on a 2-core machine). Here each epoch starts by
    timing a batch on every core and one on fewer, and keeps the fastest: on a quiet machine every core computes,
    while on one shared with other work, OpenMP threads that spin-wait for a descheduled peer can make 2 threads
    3x slower than 1 (train.py has them sleep instead: OMP_WAIT_POLICY=PASSIVE).
  - epoch_images: each epoch trains on the next N images of a seeded shuffle of the train split (a new stretch each
    epoch, every image once per pass), so that validation, last.pt/best.pt, the --time schedule and resume come
    every few minutes instead of once per full pass.
  - val_images: validation during training on a fixed subset of the val split (its first N images, ultralytics'
    own `fraction`); the final validation of best.pt uses the whole split.
  - max_gain: a training image smaller than imgsz is enlarged at most max_gain times, as detect.py enlarges it
    (digitdet.detector.MAX_GAIN), not to fill imgsz as ultralytics' loader does: the campaign's close-ups (15% of
    its training pages, under 640 pixels long) were trained at 3.3 times their size (median; up to 7.5) and seen
    at 1.5 by detect.py. Validation loads as ultralytics does, so that its figures stay ultralytics' own.
  - validation batches of one image on the CPU: ultralytics' NMS gives up on a batch after 2 s + 0.05 s per image,
    and at its conf 0.001 a CPU needs about 0.2 s per page, so its batches of 2 x batch lost most detections (the
    shipped model: val mAP50 0.215 in batches of 32, 0.425 of 4, 0.429 of 1, on the same 200 pages).
The options a run was started with are kept in its folder (trainer.yaml), so that a resumed run goes on alike.
"""

from __future__ import annotations

import math
import os
from time import perf_counter

import cv2
import torch
import yaml
from ultralytics.data.utils import get_split_fraction
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import DEFAULT_CFG, LOGGER
from ultralytics.utils.torch_utils import unwrap_model

from digitdet.detector import input_size
from digitdet.precision import native_bf16, resolve_precision

VAL_IMAGES = 200  # default validation subset during training: enough boxes for a steady mAP50, a minute on a CPU
RECORD = "trainer.yaml"  # the run's options, beside ultralytics' args.yaml
CPU_VAL_BATCH = 1  # images per validation batch on the CPU (see above)


def cpu_count() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def thread_counts() -> list[int]:
    """The thread counts worth trying: every core, then halves down to 1."""
    cores = cpu_count()
    return sorted({cores // 2 ** k for k in range(cores.bit_length())}, reverse=True)


class EpochDraw(torch.utils.data.Sampler):
    """`images` indices per epoch, walking on through seeded shuffles of range(size): each image once per pass.

    Draw k depends only on (seed, k), so a run resumed at epoch k draws what the interrupted run would have.
    """

    def __init__(self, size: int, images: int, seed: int):
        self.size, self.images, self.seed, self.draws = size, min(images, size), seed, 0

    def __len__(self) -> int:
        return self.images

    def __iter__(self):
        start, self.draws = self.draws * self.images, self.draws + 1
        return iter(self.positions(start, start + self.images))

    def positions(self, start: int, stop: int) -> list[int]:
        indices = []
        for shuffle in range(start // self.size, (stop - 1) // self.size + 1):
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + shuffle))
            offset = shuffle * self.size
            indices += order[max(start - offset, 0):stop - offset].tolist()
        return indices


class Threads:
    """torch's CPU thread count: `fixed`, or chosen anew each epoch: after the epoch's first batch, one batch is
    timed on each candidate (every core, then halves down to 1), and the fastest runs the rest of the epoch.
    Fastest per pixel: with multi_scale each batch has its own size (320 to 960 pixels at imgsz 640), so that seconds
    alone would crown whichever count drew the smallest batch."""

    def __init__(self, fixed: int | None = None):
        self.candidates = [fixed] if fixed else thread_counts()
        self.trials, self.seconds, self.mark = [], {}, None
        self.use(self.candidates[0])

    def use(self, count: int) -> None:
        self.count = count
        torch.set_num_threads(count)

    def epoch_start(self, trainer=None) -> None:
        self.trials = list(self.candidates) if len(self.candidates) > 1 else []
        self.seconds, self.mark = {}, None

    def batch_end(self, trainer=None) -> None:
        if not self.trials:
            return
        now = perf_counter()
        if self.mark is not None:  # the batch that just ended ran on trials[0] threads
            self.seconds[self.trials.pop(0)] = (now - self.mark) / getattr(trainer, "batch_pixels", 1)
        self.use(self.trials[0] if self.trials else min(self.seconds, key=self.seconds.get))
        self.mark = now


def to_fp32(value):
    """Every floating-point tensor in a nest of dicts, lists and tuples, as fp32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, dict):
        return {key: to_fp32(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_fp32(item) for item in value)
    return value


class Fp32Loss:
    """ultralytics' loss, run outside autocast on the model's outputs cast to fp32.

    Under CPU bf16 autocast the loss's box decode (a softmax and a matmul, which stay bf16 there) rounds box sides
    to 8 bits: on a batch of 16 pages through the shipped model the box loss came out 7% high and 6% of the
    gradients changed sign against fp32; with the loss in fp32, 0.02% and 2%.
    """

    def __init__(self, loss):
        self.loss = loss

    def __call__(self, preds, batch):
        with torch.autocast("cpu", enabled=False):
            return self.loss(to_fp32(preds), batch)

    def update(self) -> None:  # ultralytics calls it after each epoch; end-to-end heads' losses have one
        if hasattr(self.loss, "update"):
            self.loss.update()


class CappedGain:
    """A dataset's load_image whose images end up enlarged at most `max_gain` times (see the module's docstring).

    ultralytics' loader has already enlarged the image to fill imgsz (and may keep it so in its buffer); shrinking
    it back by area averaging costs a resize per load of a small image, where re-reading it would bypass the
    loader's caches.
    """

    def __init__(self, load_image, imgsz: int, max_gain: float):
        self.load_image, self.imgsz, self.max_gain = load_image, imgsz, max_gain

    def __call__(self, index: int, *args, **kwargs):
        image, (height, width), resized = self.load_image(index, *args, **kwargs)
        size = input_size(width, height, self.imgsz, self.max_gain)  # (width, height), as detect.py letterboxes it
        if size[0] < resized[1]:
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)
        return image, (height, width), image.shape[:2]


class Trainer(DetectionTrainer):
    """DetectionTrainer with CPU bf16, the fastest thread count, short epochs and a val subset (see the module's
    docstring). Give it to ultralytics as `YOLO(...).train(trainer=functools.partial(Trainer, precision=...), ...)`.
    """

    def __init__(self, cfg=DEFAULT_CFG, overrides: dict | None = None, _callbacks: dict | None = None,
                 precision: str = "auto", epoch_images: int | None = None, val_images: int | None = VAL_IMAGES,
                 threads: int | None = None, max_gain: float = math.inf):
        overrides = dict(overrides or {})
        if val_images and not overrides.get("resume") and isinstance(overrides.get("fraction", 1.0), (int, float)):
            overrides["fraction"] = [overrides.get("fraction", 1.0), val_images]  # [train, val] in ultralytics
        super().__init__(cfg, overrides, _callbacks)
        options = {"precision": precision, "epoch_images": epoch_images, "threads": threads, "max_gain": max_gain}
        record = self.save_dir / RECORD
        if self.resume and record.is_file():  # a resumed run goes on as it started (runs before max_gain: none)
            options = {"max_gain": math.inf, **yaml.safe_load(record.read_text())}
        else:
            record.write_text(yaml.safe_dump(options, sort_keys=False))
        self.epoch_images, self.max_gain = options["epoch_images"], options["max_gain"]
        if self.epoch_images and self.world_size > 1:
            raise ValueError("epoch_images is for single-device training (DDP shards the data itself)")
        self.precision = resolve_precision(options["precision"], self.device)
        if self.device.type == "cpu":
            self.threads = Threads(options["threads"])
            self.add_callback("on_train_epoch_start", self.threads.epoch_start)
            self.add_callback("on_train_batch_end", self.threads.batch_end)
            # a validator run on its own (the final one on best.pt) sets ultralytics' thread count again
            self.add_callback("on_val_start", lambda validator: self.threads.use(self.threads.count))
            if self.precision == "bf16" and not native_bf16():
                LOGGER.warning("bf16 on a CPU without avx512_bf16/amx_bf16 is emulated and much slower than fp32")
        elif self.precision != "auto":
            self.args.amp = "bf16" if self.precision == "bf16" else False
        enlarged = f"training images enlarged at most {self.max_gain:g}x, " if self.max_gain < math.inf else ""
        LOGGER.info(f"Trainer: {self.precision}, {self.epoch_images or 'all'} images per epoch, {enlarged}validation "
                    f"on {get_split_fraction(self.args.fraction, 'val')} of the val images")

    def _setup_train(self):
        super()._setup_train()
        if self.device.type == "cpu" and self.precision == "bf16":
            # ultralytics wraps forward and loss in autocast(self.amp): on the CPU that is bf16 (torch's CPU
            # default), and the GradScaler it built stays off, as bf16 needs none; the loss leaves autocast
            self.amp = True
            model = unwrap_model(self.model)
            model.criterion = Fp32Loss(model.init_criterion())
        if self.epoch_images:
            self.draw.draws = self.start_epoch  # the first epoch's draw, when resuming

    def preprocess_batch(self, batch: dict) -> dict:
        batch = super().preprocess_batch(batch)
        self.batch_pixels = batch["img"].numel()  # after multi_scale's resize: the thread trials' measure
        return batch

    def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None):
        dataset = super().build_dataset(img_path, mode, batch)
        if mode == "train" and self.max_gain < math.inf:
            dataset.load_image = CappedGain(dataset.load_image, dataset.imgsz, self.max_gain)
        return dataset

    def get_dataloader(self, dataset_path: str, batch_size: int = 16, rank: int = 0, mode: str = "train"):
        if mode == "val" and self.device.type == "cpu":
            batch_size = CPU_VAL_BATCH
        loader = super().get_dataloader(dataset_path, batch_size, rank, mode)
        if mode == "train" and self.epoch_images:
            self.draw = EpochDraw(len(loader.dataset), self.epoch_images, self.args.seed)
            loader.batch_sampler.sampler.sampler = self.draw  # ultralytics' repeating batch sampler draws from it
        return loader

    def build_optimizer(self, model, name="auto", lr=0.001, momentum=0.9, decay=1e-5, iterations=1e5):
        if self.epoch_images:  # ultralytics' optimizer=auto chooses by the steps really taken
            iterations *= min(self.epoch_images / len(self.train_loader.dataset), 1.0)
        return super().build_optimizer(model, name, lr, momentum, decay, iterations)

    def final_eval(self):
        self.validator.dataloader, self.validator.args.fraction = None, 1.0  # best.pt on the whole val split
        if self.device.type == "cpu":
            self.validator.args.batch = CPU_VAL_BATCH
        super().final_eval()
