"""The names a real offline run writes into W&B: one name per quantity whatever the arch or spec, no
dots, a flat config with one meaning per key (issue 10 point 3), read back from the run's files."""

from __future__ import annotations

import math

import pytest
from wandb_files import settled_offline_run

from lightning_dims.commands.fit import main
from lightning_dims.records import read_records
from lightning_dims.runs.wandb_names import CONFIG_KEYS, FGSM_FIELDS


@pytest.mark.slow
def test_an_offline_run_logs_the_dashboard_names(tmp_path):
    args = [
        "--model.arch", "resnet18", "--data.name", "digits", "--data.classes", "[3,8]",
        "--data.train_size", "60", "--data.val_size", "20", "--data.test_size", "20", "--data.size", "16",
        "--data.batch_size", "20", "--trainer.max_epochs", "2", "--trainer.accelerator", "cpu",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--config", "callbacks/fast", "--test_best", "true", "--run_dir", str(tmp_path), "--run_id", "names",
    ]  # fmt: skip
    assert main(args) == 0
    (record,) = read_records(tmp_path)
    run = settled_offline_run(tmp_path / "names", "test_best/loss", "fgsm/loss_penalty")
    config, summary = run["config"], run["summary"]
    logged = set(summary) | {key for row in run["history"] for key in row}

    assert {key: config[key] for key in CONFIG_KEYS} == {
        "dataset": "digits", "task": "digits-3v8", "domain": "natural", "arch": "resnet18", "n_train": 60, "seed": 0,
        "spec": "16px-1ch-max255", "lr": 1e-3, "epochs": 2, "config_hash": record.config_hash,
    }  # fmt: skip
    assert not {"name", "size", "train_size"} & set(config)  # no ambiguous flat keys from Lightning's hparams

    expected = {
        "data/label_sharpness", "data/d_data", "data/log_n_over_d_data",
        "d_repr/penultimate/twonn", "d_repr/layer4/twonn", "d_repr/avgpool/twonn",
        *(f"fgsm/{name}" for name in FGSM_FIELDS), "test/loss", "test/acc", "test_best/loss", "test_best/acc", "val/loss",
    }  # fmt: skip
    assert expected <= logged, expected - logged
    assert not [key for key in logged if "." in key], "dots break W&B filters"

    assert summary["fgsm/loss_penalty"] == pytest.approx(record.fgsm["2.0"].loss_penalty)
    assert summary["d_repr/penultimate/twonn"] == pytest.approx(record.d_repr["layer4"]["twonn"])
    assert summary["data/log_n_over_d_data"] == pytest.approx(math.log(60) / record.d_data)
    assert summary["test/loss"] == pytest.approx(record.test.loss)  # final weights, not the best-val test
    assert summary["test_best/loss"] == pytest.approx(record.test_best.loss)
    assert run["metrics"]["val/loss"] == ["min"]
    assert record.wandb["project"] == "lightning-dims" and record.wandb["sweep_id"] is None
