"""Commands the sweep prints (``--dry-run``, the first line of each run's log) paste into a shell and run:
values with quotes, braces and spaces (``--data={'name': 'digits', ...}``) are ``shlex``-quoted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lightning_dims.cli import main as cli
from lightning_dims.records import read_records
from tests.helpers.processes import child_env

SWEEP = {
    "program": "lightning-dims",
    "method": "grid",
    "parameters": {
        "data": {"value": {"name": "digits", "classes": [3, 8], "val_size": 10, "test_size": 20, "size": 16}},
        "data.train_size": {"value": 40},
        "model.arch": {"value": "test_resnet"},
    },
    "command": [
        "${env}", "${program}", "fit", "--preset=none", "--data_properties=false", "--trainer.max_epochs=1",
        "--trainer.enable_progress_bar=false", "--trainer.accelerator=cpu", "--data.batch_size=20", "${args}",
    ],
}  # fmt: skip


def shell(line: str, cwd: Path) -> subprocess.CompletedProcess:
    """``line`` run by bash as a user pasting it would, with this installation's ``lightning-dims`` on PATH."""
    env = child_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_dry_run_line_and_the_log_line_run_when_pasted_into_a_shell(tmp_path, capsys):
    sweep = tmp_path / "one.yaml"
    sweep.write_text(yaml.safe_dump(SWEEP, sort_keys=False))
    results = tmp_path / "results"
    assert cli(["sweep", str(sweep), "--results", str(results), "--dry-run"]) == 0
    (line,) = [text.strip() for text in capsys.readouterr().out.splitlines() if text.startswith("    ")]
    assert "'--data={'\"'\"'name'\"'\"': '\"'\"'digits'\"'\"'" in line  # quoted, not the bare Python dict

    pasted = tmp_path / "pasted"
    pasted.mkdir()
    done = shell(line, pasted)
    assert done.returncode == 0, done.stderr[-3000:]
    (record,) = read_records(pasted / "runs")
    assert (record.status, record.dataset, record.classes, record.n_train) == ("finished", "digits", [3, 8], 40)

    assert cli(["sweep", str(sweep), "--results", str(results)]) == 0
    (log,) = (results / "logs").iterdir()
    first = log.read_text().splitlines()[0]
    assert first.startswith("$ ")
    again = shell(first[2:], tmp_path)  # the same run: it parses, then is refused as already finished
    assert again.returncode == 2 and "already finished (status finished" in again.stderr, again.stderr[-3000:]
