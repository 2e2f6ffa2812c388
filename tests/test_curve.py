"""digitdet.curve: the training campaign's rows add up day by day and are drawn."""

import json

import pytest

from digitdet import curve


def write_metrics(path, map50, turns_map50):
    """evaluate.py's metrics.json, reduced to what a curve row reads."""
    upright = {"map50": map50, "map50_95": map50 / 2, "reading_accuracy": 0.25, "orientation_accuracy": 0.9}
    path.write_text(json.dumps({"rotations": {"0": upright}, "mean": {"map50": turns_map50,
                                                                      "orientation_accuracy": 0.75}}))
    return path


def test_days_add_up_and_keep_their_figures(tmp_path):
    csv_path = tmp_path / "curve.csv"
    first = curve.add_row(1.5, 18000, 0.43, write_metrics(tmp_path / "a.json", 0.39, 0.31), "start", "2026-11-21",
                          csv_path)
    second = curve.add_row(2.25, 150000, 0.8, write_metrics(tmp_path / "b.json", 0.7, 0.65), "bf16", "2026-12-01",
                           csv_path)
    assert (first["hours"], first["images"]) == (1.5, 18000)
    assert (second["hours"], second["images"]) == (3.75, 168000)
    rows = curve.read_rows(csv_path)
    assert [row["date"] for row in rows] == ["2026-11-21", "2026-12-01"]
    assert [float(row["test_map50"]) for row in rows] == [0.39, 0.7]
    assert [float(row["test_map50_turns"]) for row in rows] == [0.31, 0.65]
    assert float(rows[1]["test_map50_95"]) == 0.35 and float(rows[1]["turn_right"]) == 0.75
    assert rows[1]["recipe"] == "bf16"


def test_a_day_that_went_on_from_an_earlier_row_adds_to_its_totals(tmp_path):
    csv_path = tmp_path / "curve.csv"
    for hours, images, name in ((2.0, 10000, "a"), (1.5, 4000, "b")):  # b: measured, not gone on from
        curve.add_row(hours, images, 0.5, write_metrics(tmp_path / f"{name}.json", 0.5, 0.4), name, path=csv_path)
    row = curve.add_row(1.25, 6000, 0.6, write_metrics(tmp_path / "c.json", 0.6, 0.5), "c", path=csv_path,
                        continues=1)
    assert (row["hours"], row["images"]) == (3.25, 16000)
    with pytest.raises(ValueError, match="no row 4 to continue from"):
        curve.add_row(1, 1, 0.5, write_metrics(tmp_path / "d.json", 0.5, 0.4), "", path=csv_path, continues=4)
    rows = curve.read_rows(csv_path)
    assert [curve.parent(rows, i) for i in range(3)] == [None, 0, 0]  # the curve joins c to a, not to b


def test_a_row_needs_the_mean_over_turns(tmp_path):
    metrics = tmp_path / "m.json"
    metrics.write_text(json.dumps({"rotations": {"0": {"map50": 0.5}}}))
    with pytest.raises(ValueError, match="m.json: no mean over turns"):
        curve.add_row(1, 1, 0.5, metrics, "", path=tmp_path / "curve.csv")
    assert not (tmp_path / "curve.csv").exists()


def test_the_curve_is_drawn_as_a_png(tmp_path):
    csv_path = tmp_path / "curve.csv"
    curve.add_row(1, 1000, 0.4, write_metrics(tmp_path / "a.json", 0.39, 0.31), "", "2026-11-21", csv_path)
    png = curve.draw(csv_path)
    assert png == tmp_path / "curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_command_line_adds_a_day_only_with_all_its_figures(tmp_path, capsys):
    csv_path = tmp_path / "curve.csv"
    assert curve.main(["--csv", str(csv_path), "--hours", "2"]) == 2
    assert "needs --hours, --images, --val-map50 and --metrics" in capsys.readouterr().err
    metrics = write_metrics(tmp_path / "a.json", 0.5, 0.4)
    assert curve.main(["--csv", str(csv_path), "--hours", "2", "--images", "10", "--val-map50", "0.6",
                       "--metrics", str(metrics), "--recipe", "why"]) == 0
    assert len(curve.read_rows(csv_path)) == 1 and (tmp_path / "curve.png").exists()
