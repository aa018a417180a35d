"""`lightning-dims demo` end to end on a tiny grid: properties, training, report, findings that match the report."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from lightning_dims.cli import main
from lightning_dims.commands.demo import DEMO_SWEEPS, common_reference_size, measure_tasks, print_properties, varied_settings
from lightning_dims.data import DatasetTask
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
    synthetic = {(r.parameters["data"]["dataset_options"]["d"], r.parameters["data"]["dataset_options"].get("margin", 0))
                 for r in runs if r.parameters["data"]["name"] == "synthetic"}
    assert {m for d, m in synthetic if d == 2} == {0, 6, 9, 12, 16, 24, 36}  # margin (hence K_F) varied at one pool
    assert {d for d, m in synthetic if m == 0} == {2, 3, 4, 5, 6, 7}  # d varied on the plain torus
    sizes = {r.parameters["data.train_size"] for r in runs if r.parameters["data"]["name"] == "synthetic"}
    assert len(sizes) >= 3  # an exponent per task needs 3 distinct sizes
    assert {r.parameters["data.seed"] for r in runs} == {0, 1}  # seeds: every (task, N) point twice
    tasks = {json.dumps(r.parameters["data"], sort_keys=True) for r in runs}
    assert len(tasks) == 14 and len(runs) == 84


def test_step_one_prints_the_mean_over_the_seeds_that_the_findings_use(capsys):
    """Step 1 measures each task's training set at the reference N for every seed of the grid and prints
    the mean: the analysis's reference_properties of those runs (checked here against each seed's own measurement)."""
    runs = [run for run in expand_grid(load_sweep(DEMO_SWEEPS[0]))
            if run.parameters["data"].get("dataset_options", {}).get("margin") in (6, 36) and run.parameters["data.train_size"] == 60]
    rows = measure_tasks(runs, 60)
    assert sorted(row["task"] for row in rows) == ["synthetic margin=36", "synthetic margin=6"]
    for row in rows:
        options = {"d": 2, "n": 3000, "margin": int(row["task"].rsplit("=", 1)[1])}
        each = [DatasetTask("synthetic", train_size=60, val_size=100, test_size=200, size=16, seed=seed, options=options)
                .properties(m=1000, k=20, estimator="mle", kf_mode="exhaustive") for seed in (0, 1)]
        assert [s for s, _, _ in row["per_seed"]] == [0, 1]
        assert row["label_sharpness"] == pytest.approx(np.mean([p.label_sharpness for p in each]), rel=1e-12)
        assert row["d_data"] == pytest.approx(np.mean([p.d_data for p in each]), rel=1e-12)
    print_properties(rows, 60)
    printed = capsys.readouterr().out
    assert "at N = 60, the mean over seeds 0, 1 (the values the findings use" in printed
    assert f"K_F = {rows[0]['label_sharpness']:.3e}" in printed


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
    for name, task in fits["task_properties"].items():  # step 1 printed the table the findings use
        assert f"{task['task']}  synthetic  K_F = {task['label_sharpness']:.3e} " in printed, name
    assert "Plan (lightning-dims plan --task" in printed and "  backtest (curve): " in printed  # it ends with a plan
    assert len(list((out / "results").glob("*.record.json"))) == 9


def test_the_demo_pools_its_two_sweeps_by_declaring_what_their_points_vary():
    runs = [run for path in DEMO_SWEEPS for run in expand_grid(load_sweep(path))]
    varied = varied_settings(runs)
    assert {"data.val_size", "data.test_size", "data.train_size", "data.name"} <= set(varied)  # digits has a smaller pool
    assert "model.arch" not in varied  # one architecture: not a grid dimension here
