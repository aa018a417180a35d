"""``lightning-dims fit`` end to end on embedded digits (and MNIST when the shared data is there):
learning, records, checkpoints, W&B offline files, config errors, presets, 2-process DDP, resume."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from tests.helpers.wandb_files import offline_run

from lightning_dims.commands.fit import main
from lightning_dims.models import mixed_precision
from lightning_dims.records import read_records
from tests.helpers.fit_args import QUIET, digits_fit_args
from tests.helpers.processes import child_env

def evaluate_checkpoint(path: Path, data_args: dict) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of a checkpoint on the whole test split, in one process."""
    from lightning_dims.data import DimsDataModule
    from lightning_dims.models import ImageClassifier

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}
    model = ImageClassifier(**hparams)
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    datamodule = DimsDataModule(**data_args)
    x, y = datamodule.split_tensors("test")
    with torch.no_grad():
        logits = model(x)
    return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = child_env()
    return subprocess.run(
        [sys.executable, "-m", "lightning_dims.cli", "fit", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_fit_on_digits_learns_and_leaves_record_checkpoint_and_wandb_run(tmp_path):
    args = digits_fit_args(tmp_path, "digits-run", train=200, val=40, test=90, epochs=4, batch=20)
    assert main([*args, "--test_best", "true"]) == 0

    (record,) = read_records(tmp_path)
    assert record.status == "finished" and record.run_id == "digits-run"
    assert (record.dataset, record.domain, record.classes, record.arch) == ("digits", "natural", [3, 8], "resnet18")
    assert (record.n_train, record.n_val, record.n_test, record.seed) == (200, 40, 90, 0)
    assert record.preprocessing["key"] == "32px-1ch-max255"
    assert record.test.acc >= 0.75, f"no learning: test accuracy {record.test.acc} (chance 0.5)"
    assert record.test.auroc >= 0.9
    assert record.epochs == 4 and record.global_step == 4 * 10
    assert record.hparams["lr"] == 1e-3 and record.hparams["batch_size"] == 20  # paper lr, explicit batch wins
    assert record.label_sharpness > 0 and 1 < record.d_data < 64  # DataPropertiesCallback contributed
    assert record.wall_time_s > 0 and record.error is None

    folder = tmp_path / "digits-run"
    assert Path(record.checkpoint) == folder / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(record.checkpoint, map_location="cpu", weights_only=True)
    assert (checkpoint["epoch"], checkpoint["global_step"]) == (3, 40)  # last.ckpt = the final epoch
    data = {"name": "digits", "classes": [3, 8], "train_size": 200, "val_size": 40, "test_size": 90, "size": 32}
    loss, acc = evaluate_checkpoint(folder / "checkpoints" / "last.ckpt", data)
    assert record.test.loss == pytest.approx(loss, rel=1e-4) and record.test.acc == pytest.approx(acc)  # final weights
    (best,) = (folder / "checkpoints").glob("best-epoch*.ckpt")
    loss, acc = evaluate_checkpoint(best, data)
    assert record.test_best.loss == pytest.approx(loss, rel=1e-4) and record.test_best.acc == pytest.approx(acc)

    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["run_id"] == "digits-run" and config["model"]["arch"] == "resnet18"

    wandb = offline_run(folder)
    assert wandb["file"].is_relative_to(folder / "wandb") and record.wandb["mode"] == "offline"
    logged = {key: value for row in wandb["history"] for key, value in row.items()}
    assert logged["test/acc"] == pytest.approx(record.test.acc)
    assert {"train/loss", "val/loss", "val/acc", "val/auroc", "test/loss", "test/auroc"} <= set(logged)
    assert wandb["config"]["lr"] == 1e-3 and wandb["config"]["arch"] == "resnet18"
    assert wandb["config"]["data_properties"]["label_sharpness"] == pytest.approx(record.label_sharpness)
    assert wandb["config"]["cli"]["run_id"] == "digits-run"

    # the same run id again is refused before any training, resumed or not; a new id gets its own folder
    assert main(args) == 2
    assert main([*args, "--ckpt_path", "last"]) == 2
    assert main(digits_fit_args(tmp_path, "second", train=40, val=0, test=20, epochs=1, batch=20)) == 0
    assert sorted(r.run_id for r in read_records(tmp_path)) == ["digits-run", "second"]
    assert (tmp_path / "second" / "config.yaml").is_file()
    assert [p.name for p in (tmp_path / "second" / "checkpoints").iterdir()] == ["last.ckpt"]  # no val set


def test_fit_on_mnist_from_shared_data_learns(tmp_path, shared_data):
    args = [
        "--model.arch", "resnet18", "--data.name", "mnist", "--data.classes", "[3,8]",
        "--data.train_size", "200", "--data.val_size", "40", "--data.test_size", "200", "--data.size", "32",
        "--data.batch_size", "20", "--data.data_root", str(shared_data), "--trainer.max_epochs", "3",
        "--run_dir", str(tmp_path), "--run_id", "mnist-run", "--data_properties", "false", *QUIET,
    ]  # fmt: skip
    assert main(args) == 0
    (record,) = read_records(tmp_path)
    assert record.dataset == "mnist" and record.n_train == 200 and record.n_test == 200
    assert record.test.acc >= 0.75, f"no learning on MNIST 3 vs 8: test accuracy {record.test.acc}"
    assert (tmp_path / "mnist-run" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--data.train_size", "many"], "data.train_size"),
        (["--model.arch", "resnet19"], "unknown architecture 'resnet19'"),
        (["--model.lr", "-1"], "model.lr"),
        (["--wandb.mode", "sometimes"], "wandb.mode"),
        (["--data.name", "digits", "--data.classes", "[3,8]", "--data.train_size", "5000"], "train_size=5000"),
        (["--data.name", "digits", "--data.classes", "[3,8]", "--data.train_size", "345", "--data.val_size", "20",
          "--data.test_size", "90"], "the test set is empty (asked for test_size=90"),  # it used to shrink to 0 and train
        (["--trainer.default_root_dir", "x"], "--run_dir"),
        (["--trainer.max_epochs", "0"], "max_epochs"),
        (["--config", "no/such/config"], "no/such/config"),
    ],
)
def test_config_errors_are_one_line_and_name_the_field(tmp_path, capsys, args, field):
    assert main([*args, "--run_dir", str(tmp_path), "--data.size", "32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lightning-dims fit: error:") and field in err[0], err
    assert not any(tmp_path.iterdir())  # nothing was started


def test_an_unwritable_run_folder_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")  # a file where the run folder's parent should be: no one can create it
    args = digits_fit_args(blocker, "x", train=40, val=0, test=20, epochs=1, batch=20)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write to the run folder" in err[0] and "--run_dir" in err[0], err


def printed_config(args: list[str], capsys) -> dict:
    with pytest.raises(SystemExit) as stop:
        main([*args, "--print_config"])
    assert stop.value.code == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_paper_preset_defaults_and_explicit_values_win(capsys):
    config = printed_config(["--model.arch", "vgg16", "--data.name", "svhn"], capsys)
    assert config["model"]["lr"] == 1e-6 and config["data"]["batch_size"] == 6  # VGG-on-SVHN exception
    assert config["trainer"]["max_epochs"] == 100 and config["data"]["size"] == 224
    cuda = torch.cuda.is_available()
    expected_precision = mixed_precision("auto", cuda, cuda and torch.cuda.is_bf16_supported())  # None on CPU
    assert config["seed_everything"] == 0 and config["trainer"]["precision"] == expected_precision
    config = printed_config(["--model.arch", "resnet34", "--data.batch_size", "40", "--data.seed", "3"], capsys)
    assert config["model"]["lr"] == 1e-3 and config["data"]["batch_size"] == 40 and config["seed_everything"] == 3
    config = printed_config(["--model.arch", "resnet50", "--preset", "none"], capsys)
    assert config["model"]["lr"] is None and config["data"]["batch_size"] == 32 and config["trainer"]["max_epochs"] is None
    config = printed_config(["--model.arch", "resnet18", "--trainer.accelerator", "cpu"], capsys)
    assert config["trainer"]["precision"] is None  # mixed precision only where CUDA can be used


def test_unreachable_wandb_server_falls_back_to_offline(tmp_path, monkeypatch):
    from lightning_dims.tracking.run import (
        WandbOptions,
        finish_wandb,
        make_run_logger,
        wandb_summary,
    )

    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.delenv("WANDB_MODE")
    with pytest.warns(UserWarning, match="logging offline"):
        logger = make_run_logger(WandbOptions(mode="auto", init_timeout=2), "unreachable", tmp_path)
    logger.log_metrics({"x": 1.0}, step=0)
    summary = wandb_summary([logger])
    finish_wandb([logger])
    assert summary["mode"] == "offline" and summary["id"] == "unreachable"
    deadline = time.monotonic() + 20  # W&B's core process may still be flushing the file
    while not offline_run(tmp_path)["history"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert offline_run(tmp_path)["history"][0]["x"] == 1.0


def test_failed_run_leaves_a_failed_record_that_a_retry_replaces(tmp_path):
    args = digits_fit_args(tmp_path, "flaky", train=80, val=20, test=20, epochs=2, batch=40)
    failing = json.dumps([{"class_path": "tests.helpers.kill_callback.RaiseAtEpoch", "init_args": {"epoch": 1, "marker": str(tmp_path / "struck")}}])
    with pytest.raises(RuntimeError, match="injected failure"):
        main([*args, "--trainer.callbacks", failing])
    (record,) = read_records(tmp_path)
    assert record.status == "failed" and "injected failure at epoch 1" in record.error
    assert record.epochs == 1 and record.test is None
    assert record.label_sharpness > 0  # what the callbacks measured before the failure is kept
    assert not (tmp_path / "flaky" / "claim.json").exists()  # a failed run does not stay claimed

    assert main([*args, "--trainer.callbacks", failing]) == 2  # its checkpoint must be resumed, not overwritten
    assert main([*args, "--trainer.callbacks", failing, "--ckpt_path", "last"]) == 0  # retry: resumes after epoch 0
    (record,) = read_records(tmp_path)
    assert record.status == "finished" and record.epochs == 2 and record.error is None
    assert [a.status for a in record.attempts] == ["failed", "finished"]
    assert record.wall_time_s == pytest.approx(sum(a.wall_time_s for a in record.attempts))


@pytest.mark.slow
def test_two_process_cpu_ddp_writes_exactly_one_record_with_synced_metrics(tmp_path):
    args = digits_fit_args(tmp_path / "runs", "ddp", train=80, val=20, test=20, epochs=2, batch=20)
    done = run_cli([*args, "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list(tmp_path.rglob("*.record.json"))) == 1
    (record,) = read_records(tmp_path)
    assert record.status == "finished" and record.hparams["world_size"] == 2 and record.n_test == 20
    assert record.epochs == 2 and record.global_step == 2 * 2  # 80 images / (2 ranks x 20 per batch)
    data = {"name": "digits", "classes": [3, 8], "train_size": 80, "val_size": 20, "test_size": 20, "size": 32}
    loss, acc = evaluate_checkpoint(Path(record.checkpoint), data)
    assert record.test.loss == pytest.approx(loss, rel=1e-4)  # both ranks' halves, not rank 0's alone
    assert record.test.acc == pytest.approx(acc)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_final_epoch_with_one_record(tmp_path):
    args = digits_fit_args(tmp_path / "runs", "resume", train=80, val=20, test=20, epochs=3, batch=40)
    killer = json.dumps([{"class_path": "tests.helpers.kill_callback.KillAtEpoch", "init_args": {"epoch": 1, "marker": str(tmp_path / "k")}}])
    args += ["--trainer.callbacks", killer]
    killed = run_cli(args, tmp_path)
    assert killed.returncode == -9, killed.stderr[-3000:]  # SIGKILL after the first epoch
    folder = tmp_path / "runs" / "resume"
    assert not list(tmp_path.rglob("*.record.json"))
    assert torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0

    resumed = run_cli([*args, "--ckpt_path", "last"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (record,) = read_records(tmp_path)
    assert record.status == "finished" and record.epochs == 3 and record.global_step == 3 * 2
    checkpoint = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)
    assert (checkpoint["epoch"], checkpoint["global_step"]) == (2, 6)
    assert record.hparams["resumed_from"] == "last"
    assert [a.status for a in record.attempts] == ["killed", "finished"] and record.resumed
    # both invocations' configs are kept; the W&B run continues under the same id
    assert yaml.safe_load((folder / "config.yaml").read_text())["ckpt_path"] is None
    assert yaml.safe_load((folder / "config.v2.yaml").read_text())["ckpt_path"] == "last"
    assert {p.name.rsplit("-", 1)[-1] for p in (folder / "wandb").glob("offline-run-*")} == {"resume"}


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("rendezvous", ["standalone", "c10d"])
def test_torchrun_ranks_share_one_run_id_and_folder(tmp_path, rendezvous):
    """Under torchrun each rank starts the command itself: they must still agree on one run (no empty folders),
    also with a c10d rendezvous and no ``--rdzv-id`` (``TORCHELASTIC_RUN_ID=none`` on every rank)."""
    args = [
        "--preset", "none", "--model.arch", "resnet18", "--data.name", "digits", "--data.classes", "[3,8]",
        "--data.train_size", "40", "--data.val_size", "10", "--data.test_size", "20", "--data.size", "16",
        "--data.batch_size", "10", "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--trainer.devices", "2",
        "--trainer.strategy", "ddp", "--trainer.enable_progress_bar", "false", "--data_properties", "false",
        "--run_dir", str(tmp_path / "runs"),
    ]  # fmt: skip
    env = child_env()
    launch = ["--standalone"] if rendezvous == "standalone" else ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"localhost:{free_port()}"]
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", *launch, "--nproc_per_node", "2", "-m", "lightning_dims", "fit", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = (tmp_path / "runs").iterdir()
    assert "torchrun" in folder.name
    (record,) = read_records(tmp_path)
    assert record.run_id == folder.name and record.hparams["world_size"] == 2 and record.status == "finished"
