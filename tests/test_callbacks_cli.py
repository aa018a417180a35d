"""``lightning-dims fit --config callbacks/fast.yaml`` on digits: the record and the offline W&B run hold
d_repr of the default layers, FGSM metrics and K_F/d_data; single process and 2-process CPU DDP."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightning_dims.data import DimsDataModule
from lightning_dims.properties import intrinsic_dimension
from tests.helpers.reference_properties import brute_force_properties
from tests.helpers.wandb_files import offline_run

ROOT = Path(__file__).resolve().parents[1]


def lightning_dims_command() -> list[str]:
    script = Path(sys.executable).parent / "lightning-dims"
    if script.exists():
        return [str(script)]
    found = shutil.which("lightning-dims")
    if found is None:
        pytest.fail("the lightning-dims console script is not installed: pip install -e .")
    return [found]


def fit_digits(tmp_path: Path, *options: str) -> tuple[dict, Path]:
    """Run the fast callbacks config on a small digits task; returns the record and the run folder."""
    command = [
        *lightning_dims_command(), "fit", "--config", "callbacks/fast.yaml",
        "--data.name", "digits", "--data.train_size", "200", "--data.val_size", "100",
        "--data.test_size", "150", "--data.size", "32", "--data.batch_size", "50",
        "--model.arch", "resnet18", "--trainer.max_epochs", "2", "--trainer.enable_progress_bar", "false",
        "--run_dir", str(tmp_path / "runs"), *options,
    ]  # fmt: skip
    env = dict(os.environ, LIGHTNING_DIMS_CACHE=str(tmp_path / "cache"), PYTHONWARNINGS="ignore")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=540)
    assert result.returncode == 0, result.stderr[-4000:]
    (record_file,) = (tmp_path / "runs").rglob("*.record.json")
    return json.loads(record_file.read_text()), record_file.parent


def layer4_twonn_from_checkpoint(path: str, images: torch.Tensor) -> float:
    """TwoNN of ResNet-18 ``layer4`` outputs of ``images`` under the checkpoint's weights (a plain forward hook)."""
    from lightning_dims.models import ImageClassifier

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = ImageClassifier(**{k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")})
    model.load_state_dict(checkpoint["state_dict"])
    outputs = []
    handle = model.model.layer4.register_forward_hook(lambda module, args, output: outputs.append(output.flatten(1)))
    with torch.no_grad():
        model.eval()(images)
    handle.remove()
    return float(intrinsic_dimension(torch.cat(outputs), "twonn"))


def check_record(record: dict) -> None:
    assert record["status"] == "finished"
    assert set(record["d_repr"]) == {"layer4", "avgpool"}  # ResNet defaults
    data = DimsDataModule(name="digits", train_size=200, val_size=100, test_size=150, size=32)
    val_images, _ = data.split_tensors("val")  # all 100 (the cap is 200), as the final weights embed them
    assert record["d_repr"]["layer4"]["twonn"] == pytest.approx(layer4_twonn_from_checkpoint(record["checkpoint"], val_images), rel=1e-4)
    fgsm = record["fgsm"]["2.0"]  # 2/255 of the [0, 255] range
    assert fgsm["n"] == 150
    assert fgsm["attacked_acc"] <= fgsm["clean_acc"] and fgsm["loss_penalty"] >= 0.0
    assert math.isclose(fgsm["loss_penalty"], fgsm["attacked_loss"] - fgsm["clean_loss"], rel_tol=1e-9)
    assert (record["label_sharpness"], record["d_data"]) == pytest.approx(
        brute_force_properties(*data.split_tensors("train")), rel=1e-6
    )
    assert record["extra"]["data_properties"]["n"] == 200


def check_wandb(run_folder: Path, record: dict) -> None:
    run = offline_run(run_folder)
    logged = {key: value for step in run["history"] for key, value in step.items()}
    assert logged["d_repr/layer4/twonn"] == pytest.approx(record["d_repr"]["layer4"]["twonn"])
    assert logged["fgsm/loss_penalty"] == pytest.approx(record["fgsm"]["2.0"]["loss_penalty"])
    assert logged["data/label_sharpness"] == pytest.approx(record["label_sharpness"])
    assert logged["data/d_data"] == pytest.approx(record["d_data"])
    assert logged["d_repr/table/_type"] == "table-file"
    assert logged["d_repr/table/nrows"] == 4  # 2 layers x 2 epochs (the end reuses the last epoch's)
    assert run["config"]["data_properties"]["label_sharpness"] == pytest.approx(record["label_sharpness"])


@pytest.mark.slow
def test_fit_with_fast_callbacks_fills_record_and_wandb(tmp_path):
    record, run_folder = fit_digits(tmp_path)
    check_record(record)
    check_wandb(run_folder, record)


@pytest.mark.slow
def test_fit_with_fast_callbacks_under_two_process_cpu_ddp(tmp_path):
    record, run_folder = fit_digits(
        tmp_path, "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"
    )
    assert record["hparams"]["world_size"] == 2
    check_record(record)
    check_wandb(run_folder, record)
