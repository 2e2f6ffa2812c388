"""The shipped model's training curve: one row per working day in weights/curve.csv, drawn as weights/curve.png.

Each row is cumulative (training hours and images seen since yolov8n.yaml), with the day's recipe change and why,
ultralytics' val mAP50 at the end of the day, and evaluate.py's figures on the campaign's held-out test pages. The
curve is how anyone sees whether more training still pays.

Usage:
    python -m digitdet.curve --hours 2.1 --images 152000 --val-map50 0.81 --metrics results/shipped/metrics.json \\
        --recipe "imgsz 480 -> 640: small digits are missed"      # add a day (hours and images of that day)
    python -m digitdet.curve ... --continues 3                     # a day that went on from row 3's model
    python -m digitdet.curve                                       # redraw weights/curve.png from the CSV
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import sys
from pathlib import Path

from digitdet import runtime
from digitdet.atomic import replaced

CURVE_CSV = runtime.PROJECT_ROOT / "weights" / "curve.csv"
FIELDS = ("date", "hours", "images", "recipe", "val_map50", "test_map50", "test_map50_turns", "test_map50_95",
          "read_exactly", "turn_right", "continues")  # continues: the row (from 1) a day went on from; empty: above


def read_rows(path: Path = CURVE_CSV) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_figures(metrics_json: Path) -> dict[str, float]:
    """The test-page figures of a row from evaluate.py's metrics.json (run at turns 0, 90, 180 and 270)."""
    metrics = json.loads(metrics_json.read_text())
    upright, turns = metrics["rotations"]["0"], metrics.get("mean")
    if turns is None:
        raise ValueError(f"{metrics_json}: no mean over turns; run evaluate.py with --turns 0,90,180,270")
    return {"test_map50": upright["map50"], "test_map50_turns": turns["map50"], "test_map50_95": upright["map50_95"],
            "read_exactly": upright["reading_accuracy"], "turn_right": turns["orientation_accuracy"]}


def add_row(hours: float, images: int, val_map50: float, metrics_json: Path, recipe: str, date: str | None = None,
            path: Path = CURVE_CSV, continues: int | None = None) -> dict:
    """Append a day: its hours and images are added to the totals of the row whose model it went on from
    (`continues`, counted from 1; default the last row, or none for a model trained from scratch)."""
    rows = read_rows(path)
    if continues is not None and not 1 <= continues <= len(rows):
        raise ValueError(f"{path}: no row {continues} to continue from (it has {len(rows)})")
    last = rows[(continues or len(rows)) - 1] if rows else {"hours": 0, "images": 0}
    row = {"date": date or datetime.date.today().isoformat(), "hours": round(float(last["hours"]) + hours, 2),
           "images": int(last["images"]) + images, "recipe": recipe, "val_map50": round(val_map50, 4),
           **{key: round(value, 4) for key, value in test_figures(metrics_json).items()}, "continues": continues or ""}
    with replaced(path) as partial, partial.open("w", newline="") as file:
        writer = csv.DictWriter(file, FIELDS)
        writer.writeheader()
        writer.writerows([*rows, row])
    return row


def parent(rows: list[dict], i: int) -> int | None:
    """The index of the row whose model row i went on from: its `continues` (from 1), else the row above."""
    continues = rows[i].get("continues")
    return int(continues) - 1 if continues else (i - 1 if i else None)


def draw(path: Path = CURVE_CSV) -> Path:
    """curve.png beside the CSV: val and test mAP50 against cumulative training hours, each point dated and joined
    to the day it went on from."""
    import matplotlib.pyplot as plt  # pyplot only where a plot is drawn

    rows = read_rows(path)
    if not rows:
        raise ValueError(f"{path}: no rows to draw")
    hours = [float(row["hours"]) for row in rows]
    parents = [parent(rows, i) for i in range(len(rows))]
    fig, ax = plt.subplots(figsize=(9, 5.5), tight_layout=True)
    for key, label, marker, line in (("test_map50", "test mAP50, upright", "o", "-"),
                                     ("test_map50_turns", "test mAP50, mean over 0/90/180/270", "s", "-"),
                                     ("val_map50", "val mAP50 (ultralytics, upright val pages)", "^", "--")):
        values = [float(row[key]) for row in rows]
        points = ax.plot(hours, values, marker, label=label)[0]
        for i, j in enumerate(parents):  # each day joined to the model it went on from
            if j is not None:
                ax.plot([hours[j], hours[i]], [values[j], values[i]], line, color=points.get_color())
    for row, x in zip(rows, hours):
        ax.annotate(f"{row['date']}\n{int(row['images']) / 1000:.0f}k images", (x, float(row["test_map50"])),
                    textcoords="offset points", xytext=(4, -24), fontsize=7)
    ax.axhline(0.99, color="grey", linewidth=0.8, linestyle=":", label="goal: upright mAP50 0.99")
    ax.set(xlabel="cumulative training hours (2-core CPU)", ylabel="mAP50", ylim=(0, 1.02),
           title="weights/best.pt over the training campaign (held-out test pages)")
    ax.legend(loc="lower right")
    with replaced(path.with_suffix(".png")) as partial:
        fig.savefig(partial, dpi=110, format="png")
    plt.close(fig)
    return path.with_suffix(".png")


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m digitdet.curve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, help="training hours of this day (added to the total)")
    parser.add_argument("--images", type=int, help="images seen in training this day (added to the total)")
    parser.add_argument("--val-map50", type=float, help="ultralytics' val mAP50 of the day's best checkpoint")
    parser.add_argument("--metrics", type=Path, help="evaluate.py's metrics.json at turns 0,90,180,270")
    parser.add_argument("--recipe", default="", help="the day's recipe change and why")
    parser.add_argument("--continues", type=int, default=None,
                        help="row (from 1) whose model this day went on from, when not the last one's")
    parser.add_argument("--date", help="the row's date (default: today)")
    parser.add_argument("--csv", type=Path, default=CURVE_CSV, help="default: %(default)s")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opt = parse_opt(argv)
    day = (opt.hours, opt.images, opt.val_map50, opt.metrics)
    if any(value is not None for value in day) and None in day:
        print("error: adding a day needs --hours, --images, --val-map50 and --metrics", file=sys.stderr)
        return 2
    try:
        if opt.metrics is not None:
            print(add_row(opt.hours, opt.images, opt.val_map50, opt.metrics, opt.recipe, opt.date, opt.csv,
                          opt.continues))
        print(f"drew {draw(opt.csv)}")
    except (OSError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
