"""Train yolov8n to box and classify handwritten digits, or fine-tune the shipped model on any YOLO/Roboflow export.

Usage:
    python train.py                                          # data.yaml; weights/yolov8n.pt if present, else scratch
    python train.py --weights weights/yolov8n.pt --freeze 10 # transfer learning from COCO-pretrained yolov8n
    python train.py --data path/to/export/data.yaml --weights weights/best.pt --epochs 30 --export
                                                             # fine-tune on your own labeled set and ship the result
    python train.py --orientation                            # 40 joint classes (digit x quarter turn): detect.py
                                                             # then finds each page's orientation, 6 apart from 9
    python train.py --name digits --resume                   # continue the interrupted run runs/digits
    python train.py --name digits --resume --time 1.5        # ... refitting its schedule to 1.5 hours in all
    python train.py --time 6 --epoch-images 2000             # six hours in epochs of 2000 images: validation
                                                             # and last.pt every few minutes, for --resume
    python train.py --device 0,1,2,3 --batch 64              # four GPUs (ultralytics' DDP)

What happens:
  1. The dataset is validated (digitdet.labels: every bad image or label line is listed with its file and line).
  2. Classes are matched to digits by name ('0'..'9', in any order, list or dict); when the export's order is not
     0..9 its labels are rewritten in a derived copy so that class i is digit i. A class that is not a digit is an
     error, unless --allow-other-classes keeps it as class 10, 11, ...
  3. The train split is expanded into 0/90/180/270-degree copies (digitdet.datasets, augment.rotate); --no-turns
     skips this.
     Derived copies live in .cache/datasets/, keyed on a fingerprint of the source files (paths, sizes, times),
     and are reused until the source changes. Delete that folder at any time to reclaim the space.
     With --orientation each turned copy's boxes get the joint class of their digit at that turn (digit + 10 x
     turn index, names '0'..'9', '0@90'..'9@270'; see digitdet/orientation.py).
  4. Ultralytics trains with its own progress bars and per-epoch lines; fliplr and flipud are always 0 because a
     mirrored digit is not a digit. Each run goes to runs/<name>/ (weights/best.pt, weights/last.pt, results.csv,
     PR/F1 curves, confusion matrices); an existing name gets a number appended (digits2, digits3, ...).
     Its trainer (digitdet/trainer.py) trains in bf16 on a CPU with native bf16 (--precision), picks the fastest
     thread count each epoch, validates on the first --val-images val images until best.pt's final validation,
     with --epoch-images makes epochs of N images drawn anew each epoch, and enlarges a training image smaller
     than --imgsz at most --max-gain times (1.5), as detect.py does, instead of to fill --imgsz.
  5. --export copies best.pt to weights/best.pt with weights/best.json: where it came from and how well it did.

Without --weights and without weights/yolov8n.pt the model is built from yolov8n.yaml and trains from scratch
(nothing is downloaded: put a pretrained yolov8n.pt in weights/ for transfer learning).
"""

from __future__ import annotations

import os

# Before anything loads torch's OpenMP: waiting threads sleep instead of spinning. On a machine shared with other work,
# spinning made 2 threads up to 3x slower than 1; sleeping, 0.85x to 1.7x as fast as 1 (digitdet/trainer.py picks
# the count). This is why the imports below come after a statement (E402 is off for this file in pyproject.toml).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import functools
import json
import math
import shlex
import shutil
import sys
import time
from pathlib import Path

import yaml

from digitdet import cli, runtime  # digitdet first: it sets ultralytics up offline
from digitdet.atomic import replaced
from digitdet.datasets import prepare_data
from digitdet.detector import MAX_GAIN, ModelError
from digitdet.orientation import is_joint
from digitdet.precision import PRECISIONS
from digitdet.trainer import VAL_IMAGES, Trainer
from ultralytics import YOLO
from ultralytics.utils import LOGGER

ROOT = runtime.PROJECT_ROOT
DEFAULT_DATA = ROOT / "data.yaml"
PRETRAINED = ROOT / "weights" / "yolov8n.pt"  # COCO-pretrained yolov8n, placed by hand (no downloads here)
SCRATCH = "yolov8n.yaml"  # the architecture ultralytics builds when there are no weights to start from
SHIPPED = ROOT / "weights"  # where --export puts best.pt and best.json

# Training hyperparameters that differ from ultralytics' defaults (ultralytics/cfg/default.yaml), and why.
# Everything else is ultralytics' default on purpose. In particular degrees stays 0: orientation variety comes from
# the exact quarter turns of augment.rotate, and free angles would loosen boxes (a turned box's box is larger).
DIGIT_SAFE = {
    "fliplr": 0.0,  # default 0.5: a mirrored 2, 3, 4, 5, 6, 7 or 9 is not a digit, and teaches wrong shapes
    "flipud": 0.0,  # already the default; pinned, as mirrored digits must never be trained on whatever the default
}


def start_weights(weights: str | Path | None) -> str:
    """The model to start from: the given .pt (or model .yaml), else weights/yolov8n.pt, else yolov8n.yaml."""
    if weights:
        path = Path(weights)
        if path.suffix == ".yaml":  # an architecture: ultralytics builds it untrained
            return str(weights)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: weights not found (nothing is downloaded; give the path of a .pt file)")
        return str(path.resolve())
    if PRETRAINED.is_file():
        return str(PRETRAINED)
    LOGGER.warning(f"train.py: no pretrained weights ({PRETRAINED} is absent and --weights was not given): "
                   f"building {SCRATCH} and training FROM SCRATCH, which needs far more data and epochs. "
                   f"For transfer learning put yolov8n.pt in weights/ or pass --weights.")
    return SCRATCH


def load_model(weights: str) -> YOLO:
    """ultralytics' model from a .pt (or .yaml); a file that is not a usable checkpoint is a ModelError naming it."""
    try:
        return YOLO(weights)
    except Exception as error:  # torch and ultralytics raise many types (TypeError, RuntimeError) for a bad file
        raise ModelError(f"{weights}: not a usable ultralytics checkpoint (empty, truncated or corrupted: "
                         f"{type(error).__name__}); give another .pt file") from error


def resume_model(run_dir: Path) -> YOLO:
    """The interrupted run's last.pt, refused when that run has finished (ultralytics would start anew)."""
    last = run_dir / "weights" / "last.pt"
    if not last.is_file():
        raise FileNotFoundError(f"{last}: no checkpoint to resume (check --name and --project)")
    model = load_model(str(last))
    if model.ckpt.get("optimizer") is None:
        raise ValueError(f"{run_dir}: this run finished; start a new one (e.g. --weights {run_dir}/weights/best.pt)")
    return model


def final_metrics(results) -> dict[str, float]:
    """The validation metrics of best.pt after training (DetMetrics here, a dict from a DDP run's checkpoint)."""
    values = getattr(results, "results_dict", results) or {}
    return {key: round(float(value), 5) for key, value in values.items()}


def provenance(model: YOLO, started: float, results) -> dict:
    """Where a trained model came from and how well it did, for weights/best.json."""
    args = model.trainer.args
    trained_on = yaml.safe_load(Path(args.data).read_text())  # the derived data.yaml names its source
    return {
        "data": trained_on["source"],
        "trained_on": str(args.data),
        "rotate": trained_on["rotated"],
        "weights": str(args.model),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "run": str(model.trainer.save_dir),
        "epochs": args.epochs,
        "imgsz": args.imgsz,
        "batch": args.batch,
        "device": str(model.trainer.device),
        "precision": model.trainer.precision,
        # None: ultralytics fills imgsz (--max-gain inf)
        "max_gain": model.trainer.max_gain if math.isfinite(model.trainer.max_gain) else None,
        "names": list(model.names.values()),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "duration_s": round(time.time() - started, 1),
        "metrics": final_metrics(results),
    }


def export_weights(run_dir: Path, folder: Path, record: dict) -> Path:
    """Copy best.pt into `folder` with best.json beside it; each file is written aside and renamed into place."""
    folder.mkdir(parents=True, exist_ok=True)
    with replaced(folder / "best.pt") as partial:
        shutil.copyfile(run_dir / "weights" / "best.pt", partial)
    with replaced(folder / "best.json") as partial:
        partial.write_text(json.dumps(record, indent=2) + "\n")
    LOGGER.info(f"train.py: exported {folder / 'best.pt'} with provenance {folder / 'best.json'}")
    return folder / "best.pt"


def train_options(data_yaml: Path, overrides: dict, **options) -> dict:
    """ultralytics' train() arguments: ours, the caller's extra ones, and the digit-safe flips last."""
    if flips := {k: v for k, v in overrides.items() if k in DIGIT_SAFE and v != DIGIT_SAFE[k]}:
        raise ValueError(f"{flips}: a mirrored digit is not a digit; these stay {DIGIT_SAFE}")
    return {"data": str(data_yaml), **options, **overrides, **DIGIT_SAFE}


def run(data: str | Path = DEFAULT_DATA, weights: str | Path | None = None, epochs: int = 100, imgsz: int = 640,
        batch: int = 16, workers: int = 8, device: str | None = None, freeze: int | None = None, rotate: bool = True,
        resume: bool = False, name: str = "digits", project: str | Path = ROOT / "runs",
        export: bool | str | Path = False, allow_other_classes: bool = False, orientation: bool | None = None,
        precision: str = "auto", epoch_images: int | None = None, val_images: int | None = VAL_IMAGES,
        max_gain: float = MAX_GAIN, **overrides) -> Path:
    """Train (or fine-tune) yolov8n on a digit dataset and return the run folder.

    Args:
        data: the dataset's data.yaml (YOLO or Roboflow layout, box or polygon labels).
        weights: .pt to start from (pretrained yolov8n.pt, or our weights/best.pt to fine-tune);
            None: weights/yolov8n.pt when present, else yolov8n.yaml from scratch (with a warning).
        epochs, imgsz, batch: as in ultralytics (batch -1: as large as the GPU memory allows).
        workers: dataloader worker processes on a GPU (ultralytics loads in-process on the CPU); also the
            processes that write the rotated copies.
        device: "cpu", "0", or "0,1,2,3" (DDP); None: the first GPU if there is one, else the CPU.
        freeze: freeze the first N layers (transfer learning on a small set: 10 keeps the whole backbone).
        rotate: expand the train split into 0/90/180/270-degree copies first.
        resume: continue the interrupted run project/name from its last.pt (other settings come from the run,
            except device and time: a new time is the whole run's hours, the epochs before the resume included).
        name, project: the run goes to project/name (a number is appended when that exists, unless resuming).
        export: True: copy best.pt and its provenance best.json to weights/; a path: to that folder.
        allow_other_classes: keep non-digit classes (as 10, 11, ...) instead of refusing the dataset.
        orientation: train the 40 joint classes (digit x quarter turn) with which detect.py finds each page's
            orientation and tells 6 from 9; None: as the start weights (joint weights stay joint).
        precision: "auto" (bf16 on a CPU with native bf16, else fp32; ultralytics' AMP on a GPU), "fp32" or "bf16".
        epoch_images: train each epoch on the next N images of a seeded shuffle (short epochs: validation,
            checkpoints and the --time schedule every few minutes); None: every image, every epoch.
        val_images: validate on the first N val images during training (None: all); best.pt's final
            validation uses them all.
        max_gain: enlarge a training image smaller than imgsz at most this many times, as detect.py does
            (math.inf: to fill imgsz, as ultralytics does).
        overrides: further ultralytics train arguments (e.g. lr0=0.002, patience=20, plots=False).
    """
    project, started = runtime.project_path(project), time.time()
    trainer = functools.partial(Trainer, precision=precision, epoch_images=epoch_images, val_images=val_images,
                                max_gain=max_gain)
    if resume:  # the run's own trainer options (its trainer.yaml) win over these
        model = resume_model(project / name)
        changes = {"device": device, "time": overrides.get("time")}  # what ultralytics lets a resumed run change
        results = model.train(trainer=trainer, resume=True, workers=workers,
                              **{key: value for key, value in changes.items() if value is not None})
    else:
        model = load_model(start_weights(weights))  # before the data, so a wrong path fails at once
        if orientation is None:  # fine-tuning an orientation-aware model keeps it so
            orientation = is_joint(model.names.values())
        data_yaml = prepare_data(data, rotate, allow_other_classes, max(1, min(workers, os.cpu_count() or 1)),
                                 orientation)
        options = train_options(data_yaml, overrides, epochs=epochs, imgsz=imgsz, batch=batch, workers=workers,
                                device=device, freeze=freeze, project=str(project), name=name)
        results = model.train(trainer=trainer, **options)
    run_dir = Path(model.trainer.save_dir)
    if export:
        export_weights(run_dir, SHIPPED if export is True else Path(export),
                       provenance(model, started, results))
    return run_dir


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python train.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dataset data.yaml (default: %(default)s)")
    parser.add_argument("--weights", help="start weights .pt (default: weights/yolov8n.pt, else yolov8n.yaml)")
    parser.add_argument("--epochs", type=int, default=100, help="training epochs (default: %(default)s)")
    parser.add_argument("--time", type=float, help="train for this many hours instead of --epochs (schedule fitted)")
    parser.add_argument("--imgsz", type=int, default=640, help="training image size in pixels (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=16, help="batch size; -1 fills the GPU (default: %(default)s)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: bf16 on a CPU with avx512_bf16/amx_bf16, else fp32; ultralytics' AMP on a GPU")
    parser.add_argument("--epoch-images", type=int, metavar="N",
                        help="train each epoch on N images (a new random draw each epoch), so that validation, "
                             "checkpoints and --time come every few minutes (default: all images)")
    parser.add_argument("--val-images", type=int, default=VAL_IMAGES, metavar="N",
                        help="validate on the first N val images during training; 0: all (default: %(default)s)")
    parser.add_argument("--max-gain", type=float, default=MAX_GAIN, metavar="X",
                        help="enlarge a training image smaller than --imgsz at most X times, as detect.py does; "
                             "inf: to fill --imgsz, as ultralytics does (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=8,
                        help="dataloader workers on a GPU; the CPU loads in-process (default: %(default)s)")
    parser.add_argument("--device", help="cpu, 0, or 0,1,2,3 (default: first GPU if any, else cpu)")
    parser.add_argument("--freeze", type=int, help="freeze the first N layers (10: the backbone)")
    parser.add_argument("--no-turns", "--no-rotate", dest="rotate", action="store_false",
                        help="train on the split as it is, without 0/90/180/270-degree copies")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run runs/<name>")
    parser.add_argument("--name", default="digits", help="run name: runs/<name>/ (default: %(default)s)")
    parser.add_argument("--project", type=Path, default=ROOT / "runs", help="folder of runs (default: runs/)")
    parser.add_argument("--export", nargs="?", const=True, default=False, metavar="DIR",
                        help="copy best.pt and best.json (provenance) to weights/, or to DIR")
    parser.add_argument("--orientation", action=argparse.BooleanOptionalAction, default=None,
                        help="train 40 joint classes (digit x quarter turn) so that detect.py finds each page's "
                             "orientation and tells 6 from 9 (default: as the start weights)")
    parser.add_argument("--allow-other-classes", action="store_true",
                        help="train classes that are not digits as 10, 11, ... instead of refusing the dataset")
    parser.add_argument("--set", dest="overrides", nargs="+", default=[], metavar="KEY=VALUE", type=key_value,
                        help="further ultralytics train arguments, e.g. --set lr0=0.002 optimizer=AdamW mosaic=0")
    return parser.parse_args(argv)


def key_value(text: str) -> tuple[str, object]:
    """'lr0=0.002' -> ('lr0', 0.002): the value is read as YAML, as ultralytics reads its own command line."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE, e.g. lr0=0.002")
    return key, yaml.safe_load(value)


@cli.one_line_errors
def main(argv: list[str] | None = None) -> int:
    opt = vars(parse_opt(argv))
    overrides = dict(opt.pop("overrides"))
    run_dir = run(**opt, **overrides)
    print(f"run folder: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
