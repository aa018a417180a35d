"""`lightning-dims demo` end to end on a tiny grid: properties, training, report, findings that match the report."""

import json
from pathlib import Path

import pytest
import yaml

from lightning_dims.cli import main
from lightning_dims.commands.demo import DEMO_SWEEPS, common_reference_size, varied_settings
from lightning_dims.sweep.grid import expand_grid, load_sweep


def tiny_sweep(path: Path) -> Path:
    """The demo's own command (callbacks/demo, batch-norm recalibration) on 3 synthetic tasks x 3 sizes, 2 epochs."""
    demo = load_sweep(DEMO_SWEEPS[0])
    demo["parameters"] = {
        "data": {"values": [{"name": "synthetic", "val_size": 20, "test_size": 50, "size": 8,
                             "dataset_options": {"d": d, "contrast": 1.0}} for d in (2, 4, 6)]},
        "data.train_size": {"values": [30, 60, 120]},
        "model.arch": {"value": "test_resnet"},
    }
    assert "--config=callbacks/demo" in demo["command"]  # the shipped callbacks, found from any folder
    demo["command"] = [token.replace("--trainer.max_epochs=20", "--trainer.max_epochs=2") for token in demo["command"]]
    path.write_text(yaml.safe_dump(demo, sort_keys=False))
    return path


def test_the_demo_grids_share_a_reference_size_and_hold_the_controlled_experiment():
    runs = [run for path in DEMO_SWEEPS for run in expand_grid(load_sweep(path))]
    assert common_reference_size(runs) == 120
    synthetic = {(r.parameters["data"]["dataset_options"]["d"], r.parameters["data"]["dataset_options"]["contrast"])
                 for r in runs if r.parameters["data"]["name"] == "synthetic"}
    assert {c for d, c in synthetic if d == 4} == {1.0, 0.85, 0.7, 0.6, 0.5, 0.4}  # contrast (hence K_F) varied at fixed d
    assert {d for d, c in synthetic if c == 1.0} == {2, 3, 4, 5, 6, 7}  # d varied at fixed contrast
    sizes = {r.parameters["data.train_size"] for r in runs if r.parameters["data"]["name"] == "synthetic"}
    assert len(sizes) >= 3  # an exponent per task needs 3 distinct sizes
    assert {r.parameters["data.seed"] for r in runs} == {0, 1}  # seeds: every (task, N) point twice
    tasks = {json.dumps(r.parameters["data"], sort_keys=True) for r in runs}
    assert len(tasks) == 13 and len(runs) == 78


@pytest.mark.slow
def test_demo_prints_findings_that_are_its_reports(tmp_path, capsys):
    sweep = tiny_sweep(tmp_path / "tiny.yaml")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--sweep", str(sweep), "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    assert "1/3 K_F and d_data of each task at N = 120" in printed
    assert "synthetic d=2" in printed and "runs learned" in printed
    fits = json.loads((out / "report" / "fits.json").read_text())
    report = (out / "report" / "report.md").read_text()
    assert fits["n_runs"] == 9 and fits["reference_n"] == {"test_resnet": 120}
    assert fits["findings"], "the demo prints at least one finding"
    for number, finding in enumerate(fits["findings"], start=1):
        assert f"  {number}. {finding['text']}" in printed
        assert finding["text"] in report
    assert any("alpha vs 1/d_data" in f["text"] for f in fits["findings"])
    assert "Plan (lightning-dims plan --task" in printed and "  backtest (curve): " in printed  # it ends with a plan
    assert len(list((out / "results").glob("*.record.json"))) == 9


def test_the_demo_pools_its_two_sweeps_by_declaring_what_their_points_vary():
    runs = [run for path in DEMO_SWEEPS for run in expand_grid(load_sweep(path))]
    varied = varied_settings(runs)
    assert {"data.val_size", "data.test_size", "data.train_size", "data.name"} <= set(varied)  # digits has a smaller pool
    assert "model.arch" not in varied  # one architecture: not a grid dimension here
