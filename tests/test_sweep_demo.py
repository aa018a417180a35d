"""`lightning-dims sweep` and `demo` end to end on a tiny grid: records, skip on re-run, report."""

import json
from pathlib import Path

import pytest
import yaml

from lightning_dims.cli import main

REPO = Path(__file__).resolve().parents[1]

TINY_SWEEP = {
    "program": "lightning-dims",
    "method": "grid",
    "parameters": {
        "data": {
            "values": [
                {"name": "digits", "classes": [3, 8], "val_size": 20, "test_size": 50, "size": 16},
                {"name": "synthetic", "val_size": 20, "test_size": 50, "size": 16, "dataset_options": {"d": 4}},
            ]
        },
        "data.train_size": {"values": [40, 80]},
        "model.arch": {"value": "resnet18"},
    },
    "command": [
        "${env}", "${program}", "fit", "--preset=none", f"--config={REPO / 'callbacks' / 'fast.yaml'}",
        "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        "--data.batch_size=20", "${args}",
    ],
}


@pytest.mark.slow
def test_sweep_runs_every_point_once_then_skips_and_reports(tmp_path, capsys):
    sweep = tmp_path / "tiny.yaml"
    sweep.write_text(yaml.safe_dump(TINY_SWEEP, sort_keys=False))
    results = tmp_path / "results"
    assert main(["sweep", str(sweep), "--results", str(results), "--workers", "2"]) == 0  # 2 at once: half the wall time
    records = sorted(results.glob("*.record.json"))
    assert len(records) == 4
    for path in records:
        record = json.loads(path.read_text())
        assert record["status"] == "finished" and record["n_train"] in (40, 80)
        assert record["label_sharpness"] > 0 and record["d_data"] > 0 and record["fgsm"] and record["d_repr"]
    assert "4 finished, 0 already done, 0 running elsewhere, 0 failed" in capsys.readouterr().out

    assert main(["sweep", str(sweep), "--results", str(results)]) == 0  # nothing left to do
    assert "0 finished, 4 already done, 0 running elsewhere, 0 failed" in capsys.readouterr().out
    assert len(list(results.glob("*.record.json"))) == 4

    out = tmp_path / "report"
    assert main(["report", "--results", str(results), "--out", str(out)]) == 0
    fits = json.loads((out / "fits.json").read_text())
    assert fits["n_runs"] == 4 and fits["spec"] == "16px-1ch-max255"
    assert (out / "report.md").read_text().count("| resnet18 | digits 3 vs 8 | natural | 40..80 (2) | 2 |") == 1


def test_sweep_refuses_a_random_search_with_the_fix(tmp_path, capsys):
    sweep = tmp_path / "bayes.yaml"
    sweep.write_text(yaml.safe_dump({"method": "bayes", "parameters": {"model.lr": {"min": 0.001, "max": 0.1}}}))
    assert main(["sweep", str(sweep)]) == 2
    assert "wandb agent" in capsys.readouterr().err


def test_report_without_records_says_where_it_looked(tmp_path, capsys):
    assert main(["report", "--results", str(tmp_path / "none"), "--out", str(tmp_path / "out")]) == 2
    assert "none" in capsys.readouterr().err
