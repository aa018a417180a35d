"""Run ids, W&B mode resolution and fallbacks, per-run config files (pure helpers of lightning_dims.runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_dims.runs import (
    RUN_ID_ENV,
    WandbOptions,
    free_config_name,
    make_run_logger,
    new_run_id,
    resolve_run_id,
    resolve_wandb_mode,
    sanitize_run_id,
    service_owner_pid,
    wandb_key_configured,
    wandb_run_id,
)


def test_run_ids_are_readable_unique_and_safe():
    a, b = new_run_id("timm/resnet18", "mnist", 500, 3, now=0), new_run_id("timm/resnet18", "mnist", 500, 3, now=0)
    assert a.startswith("timm-resnet18-mnist-n500-s3-19700101-000000-") and a != b
    assert sanitize_run_id(" my run/#1 ") == "my-run-1"
    with pytest.raises(ValueError, match="run_id"):
        sanitize_run_id("///")
    long = "x" * 100
    assert len(wandb_run_id(long)) == 64 and wandb_run_id(long) != wandb_run_id(long[:-1] + "y")
    assert wandb_run_id("short") == "short"


def test_ddp_workers_take_the_launchers_run_id(monkeypatch):
    monkeypatch.setenv(RUN_ID_ENV, "from-launcher")
    assert resolve_run_id(None, "fresh") == "from-launcher"
    assert resolve_run_id("asked", "fresh") == "asked"
    monkeypatch.delenv(RUN_ID_ENV)
    assert resolve_run_id(None, "fresh") == "fresh"


def test_wandb_mode_resolution(tmp_path):
    netrc = tmp_path / "netrc"
    assert resolve_wandb_mode("auto", {"NETRC": str(netrc)}) == "offline"  # no key anywhere
    assert resolve_wandb_mode("auto", {"WANDB_API_KEY": "k"}) == "online"
    assert resolve_wandb_mode("auto", {"WANDB_API_KEY": "k", "WANDB_MODE": "offline"}) == "offline"
    assert resolve_wandb_mode("auto", {"WANDB_MODE": "dryrun"}) == "offline"
    assert resolve_wandb_mode("auto", {"WANDB_MODE": "disabled"}) == "disabled"
    assert resolve_wandb_mode("online", {"WANDB_MODE": "offline"}) == "online"  # asked explicitly
    netrc.write_text("machine api.wandb.ai\n  login user\n  password secret\n")
    assert wandb_key_configured({"NETRC": str(netrc)})
    assert not wandb_key_configured({"NETRC": str(netrc), "WANDB_BASE_URL": "https://wandb.example.org"})


def test_config_files_are_never_overwritten_with_different_content(tmp_path):
    assert free_config_name(tmp_path, "a: 1\n") == ("config.yaml", False)
    (tmp_path / "config.yaml").write_text("a: 1\n")
    assert free_config_name(tmp_path, "a: 1\n") == ("config.yaml", True)  # identical bytes: rewrite is lossless
    assert free_config_name(tmp_path, "a: 2\n") == ("config.v2.yaml", False)
    (tmp_path / "config.v2.yaml").write_text("a: 2\n")
    assert free_config_name(tmp_path, "a: 3\n") == ("config.v3.yaml", False)
    assert free_config_name(tmp_path, "a: 2\n") == ("config.v2.yaml", True)


def test_disabled_wandb_and_a_wandb_that_cannot_start_log_to_csv(tmp_path, monkeypatch):
    from lightning.pytorch.loggers import CSVLogger, WandbLogger

    logger = make_run_logger(WandbOptions(mode="disabled"), "r", tmp_path / "a")
    assert isinstance(logger, CSVLogger) and Path(logger.log_dir) == tmp_path / "a"

    def broken(self):
        raise RuntimeError("run ID r is in use")

    monkeypatch.setattr(WandbLogger, "experiment", property(broken))
    with pytest.warns(UserWarning, match="metrics.csv"):
        logger = make_run_logger(WandbOptions(mode="offline"), "r", tmp_path / "b")
    assert isinstance(logger, CSVLogger) and Path(logger.log_dir) == tmp_path / "b"


def test_wandb_service_owner():
    assert service_owner_pid({}) is None
    assert service_owner_pid({"WANDB_SERVICE": "3-15582-unix-/tmp/wandb-15582-15588-1/socket"}) == 15582
    assert service_owner_pid({"WANDB_SERVICE": "garbage"}) == -1  # unknown: never torn down
