"""LightningCLI's ``--optimizer``/``--lr_scheduler`` on ``fit``: unset, the paper's Adam trains and the
config hash of existing commands is unchanged; set, they train and enter the hash."""

from __future__ import annotations

import pytest
import torch

from lightning_dims.commands.fit import main as fit
from lightning_dims.records import read_records
from lightning_dims.runs.identity import config_hash, result_config
from lightning_dims.training.config_parser import FitConfigParser

BASE = ["--model.arch", "resnet18", "--data.name", "digits", "--data.classes", "[3,8]", "--data.train_size", "100",
        "--trainer.accelerator", "cpu"]  # fmt: skip


def hashed(parser: FitConfigParser, args: list[str]) -> tuple[dict, str]:
    config = result_config(parser.dump(parser.parse(args)), "fingerprint")
    return config, config_hash(config)


def test_unset_optimizer_options_leave_the_config_and_its_hash_as_they_were():
    parser = FitConfigParser()
    plain, plain_hash = hashed(parser, BASE)
    assert not {"optimizer", "lr_scheduler"} & set(plain)  # absent, as before the options existed
    assert (plain["model.lr"], plain["model.weight_decay"]) == (1e-3, 1e-4)  # the paper's Adam
    sgd, sgd_hash = hashed(parser, [*BASE, "--optimizer", "SGD", "--optimizer.lr", "0.05"])
    assert sgd["optimizer"]["class_path"] == "torch.optim.SGD" and sgd["optimizer"]["init_args"]["lr"] == 0.05
    assert sgd_hash != plain_hash
    assert hashed(parser, BASE)[1] == plain_hash  # parsing another command first changes nothing


def test_a_scheduler_without_an_optimizer_is_refused(tmp_path, capsys):
    assert fit([*BASE, "--lr_scheduler", "StepLR", "--lr_scheduler.step_size", "1", "--run_dir", str(tmp_path)]) == 2
    assert "--lr_scheduler needs --optimizer" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_the_given_optimizer_and_scheduler_train_the_run(tmp_path):
    args = [
        "--preset", "none", "--model.arch", "test_resnet", "--data.name", "digits", "--data.classes", "[3,8]",
        "--data.train_size", "40", "--data.val_size", "10", "--data.test_size", "10", "--data.size", "16",
        "--data.batch_size", "20", "--trainer.max_epochs", "2", "--trainer.accelerator", "cpu", "--data_properties", "false",
        "--trainer.enable_progress_bar", "false", "--wandb.mode", "disabled", "--run_dir", str(tmp_path), "--run_id", "sgd",
        "--optimizer", "SGD", "--optimizer.lr", "0.05", "--optimizer.momentum", "0.9",
        "--lr_scheduler", "StepLR", "--lr_scheduler.step_size", "1", "--lr_scheduler.gamma", "0.5",
    ]  # fmt: skip
    assert fit(args) == 0
    (record,) = read_records(tmp_path)
    assert record.status == "finished" and record.config["optimizer"]["class_path"] == "torch.optim.SGD"
    used = {key: record.hparams[key] for key in ("optimizer", "lr", "weight_decay", "lr_scheduler")}
    assert used == {"optimizer": "SGD", "lr": 0.05, "weight_decay": 0.0, "lr_scheduler": "StepLR"}  # not the model's unused lr
    checkpoint = torch.load(tmp_path / "sgd" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    (group,) = checkpoint["optimizer_states"][0]["param_groups"]
    assert group["momentum"] == 0.9 and group["lr"] == pytest.approx(0.05 * 0.5**2)  # SGD, halved after each epoch
