"""Tiny sweeps for the process tests (concurrent sweeps, kill and resume, warm workers, job arrays):
the sweep file, the ``lightning-dims sweep`` process, and the finished records it leaves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers.processes import child_env


def tiny_sweep(epochs: int = 1, sizes=(40, 60), arch: str = "test_resnet") -> dict:
    """Two tasks x ``sizes``, by default with timm's 0.37M-parameter test_resnet (small checkpoints:
    these tests are about processes)."""
    return {
        "program": "lightning-dims",
        "method": "grid",
        "parameters": {
            "data": {
                "values": [
                    {"name": "digits", "classes": [3, 8], "val_size": 10, "test_size": 50, "size": 16},
                    {"name": "synthetic", "val_size": 10, "test_size": 50, "size": 16, "dataset_options": {"d": 4, "n": 300}},
                ]
            },
            "data.train_size": {"values": list(sizes)},
            "model.arch": {"value": arch},
        },
        "command": [
            "${env}", "${program}", "fit", "--preset=none", "--data_properties=false",
            f"--trainer.max_epochs={epochs}", "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false", "--trainer.accelerator=cpu", "--data.batch_size=20", "${args}",
        ],
    }  # fmt: skip


def write_sweep(folder: Path, config: dict, name: str = "tiny.yaml") -> Path:
    """``config`` as ``folder/name``, keys in their given order."""
    path = folder / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def sweep_process(sweep: Path, results: Path, *extra: str) -> subprocess.Popen:
    """A ``lightning-dims sweep`` in its own process group (so a test can SIGKILL it with its children)."""
    env = child_env()
    return subprocess.Popen(
        [sys.executable, "-m", "lightning_dims", "sweep", str(sweep), "--results", str(results), *extra],
        cwd=sweep.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip


def finished_records(results: Path) -> dict[str, dict]:
    """Every record under ``results`` by run id; each must be ``finished``."""
    records = {}
    for path in results.glob("*.record.json"):
        record = json.loads(path.read_text())
        assert record["status"] == "finished", path
        records[record["run_id"]] = record
    return records
