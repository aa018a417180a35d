"""Smoke tests (Lightning's ``fast_dev_run``, ``limit_*_batches``, ``overfit_batches``) end with status
``smoke``: complete, never run again, and never a result: ``report`` lists them under Skipped."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_dims.cli import main
from lightning_dims.records import RecordState, inspect_record, read_record, record_path
from lightning_dims.records.schema import smoke_settings
from tests.helpers.processes import child_env

REPRODUCTION = Path(__file__).resolve().parents[1] / "docs" / "reproduction" / "2026-11-29"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, []),
        ({"trainer.fast_dev_run": False, "trainer.limit_train_batches": 1.0, "trainer.overfit_batches": 0.0}, []),
        ({"trainer.fast_dev_run": True}, ["trainer.fast_dev_run=True"]),
        ({"trainer.fast_dev_run": 3}, ["trainer.fast_dev_run=3"]),
        ({"trainer.limit_train_batches": 0.25}, ["trainer.limit_train_batches=0.25"]),
        ({"trainer.limit_val_batches": 1}, ["trainer.limit_val_batches=1"]),  # one batch, not the whole set
        ({"trainer.limit_test_batches": 0}, ["trainer.limit_test_batches=0"]),
        ({"trainer.overfit_batches": 2}, ["trainer.overfit_batches=2"]),
    ],
)
def test_smoke_settings_name_every_partial_run(config, expected):
    assert smoke_settings(config) == expected


@pytest.mark.slow
def test_a_fast_dev_run_is_a_smoke_record_that_no_report_uses(tmp_path, capsys):
    """A real ``fit --trainer.fast_dev_run true`` process, then ``report`` over it and 25 finished records."""
    results = tmp_path / "results"
    shutil.copytree(REPRODUCTION / "records", results / "records")
    args = [
        sys.executable, "-m", "lightning_dims", "fit", "--trainer.fast_dev_run", "true", "--model.arch", "test_resnet",
        "--data.name", "digits", "--data.classes", "[3,8]", "--data.train_size", "40", "--data.val_size", "10",
        "--data.test_size", "10", "--data.size", "16", "--trainer.accelerator", "cpu",
        "--trainer.enable_progress_bar", "false", "--run_dir", str(results / "runs"), "--run_id", "smoke",
    ]  # fmt: skip
    done = subprocess.run(args, cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "lightning-dims fit: smoke; results record" in done.stderr
    path = record_path(results / "runs" / "smoke", "smoke")
    record = read_record(path)
    assert record.status == "smoke" and record.test is not None
    assert inspect_record(path)[0] is RecordState.FINISHED  # complete: a sweep never runs it again

    out = tmp_path / "report"
    report = [
        "report", "--results", str(results), "--out", str(out), "--ref-n", "1200",
        "--measurements", str(REPRODUCTION / "paper_spec.jsonl"), "--vary", "data.val_size", "--vary", "data.test_size",
    ]  # fmt: skip
    assert main(report) == 0
    text = (out / "report.md").read_text()
    assert json.loads((out / "fits.json").read_text())["n_runs"] == 25  # the finished runs only
    skipped = text.split("## Skipped", 1)[1]
    assert f"record [{path}]: smoke test: trainer.fast_dev_run=True; its numbers are not a result" in skipped

    capsys.readouterr()
    assert main(args[3:]) == 2  # the same command again: complete, so refused
    assert "already finished (status smoke" in capsys.readouterr().err
