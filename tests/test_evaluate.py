"""``lightning-dims validate`` / ``test`` on a fit checkpoint with the run's saved config: the numbers the
run recorded for its final weights, from a separate process; a checkpoint of another config is refused."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lightning_dims.cli import main as cli
from lightning_dims.commands.fit import main as fit
from lightning_dims.records import read_records
from tests.helpers.processes import child_env


def lightning_dims(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lightning_dims", *args], cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_validate_and_test_a_checkpoint_give_the_records_numbers(tmp_path, capsys):
    args = [
        "--preset", "none", "--model.arch", "test_resnet", "--data.name", "digits", "--data.classes", "[3,8]",
        "--data.train_size", "40", "--data.val_size", "20", "--data.test_size", "20", "--data.size", "16",
        "--data.batch_size", "10", "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--data_properties", "false",
        "--trainer.enable_progress_bar", "false", "--wandb.mode", "disabled", "--run_dir", str(tmp_path), "--run_id", "run",
    ]  # fmt: skip
    assert fit(args) == 0
    capsys.readouterr()
    (record,) = read_records(tmp_path)
    config, last = tmp_path / "run" / "config.yaml", tmp_path / "run" / "checkpoints" / "last.ckpt"

    tested = lightning_dims("test", "--config", str(config), "--ckpt_path", str(last), "--json", cwd=tmp_path)
    assert tested.returncode == 0, tested.stderr[-3000:]
    numbers = json.loads(tested.stdout.strip().splitlines()[-1])
    assert numbers["test/loss"] == pytest.approx(record.test.loss, rel=1e-5)
    assert numbers["test/acc"] == pytest.approx(record.test.acc)

    assert cli(["validate", "--config", str(config), "--ckpt_path", str(last), "--json"]) == 0
    validated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert validated["val/loss"] == pytest.approx(record.val.loss, rel=1e-5)

    assert cli(["test", "--config", str(config), "--data.size", "24", "--ckpt_path", str(last)]) == 2
    assert "was trained under another model/data config: data.size: 16 -> 24" in capsys.readouterr().err
    assert not list((tmp_path / "run").glob("*.v2.*")) and len(read_records(tmp_path)) == 1  # nothing written
