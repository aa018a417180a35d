"""Run ids, W&B mode resolution and fallbacks, per-run config files (pure helpers of lightning_dims.runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_dims.runs.config_files import free_config_name
from lightning_dims.runs.identity import (
    RUN_ID_ENV,
    new_run_id,
    resolve_run_id,
    sanitize_run_id,
)
from lightning_dims.tracking.run import (
    WandbOptions,
    make_run_logger,
    resolve_wandb_mode,
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
    monkeypatch.setenv(RUN_ID_ENV, "../../outside")  # the environment is sanitised like --run_id
    assert resolve_run_id(None, "fresh") == "outside"
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


def test_a_wandb_server_that_never_answers_is_abandoned_within_init_timeout(tmp_path, monkeypatch):
    """A server that accepts connections and never replies: offline after init_timeout (+10%), not W&B's own waits."""
    import socket
    import time
    import warnings

    from lightning_dims.tracking.run import finish_wandb, wandb_summary

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)  # the kernel accepts connections into the backlog; nothing ever answers
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.delenv("WANDB_MODE")
    timeout, warned_at = 8.0, []
    started = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda *args, **kwargs: warned_at.append(time.monotonic())
        logger = make_run_logger(WandbOptions(mode="auto", init_timeout=timeout), "silent-server", tmp_path)
    try:
        assert wandb_summary([logger])["mode"] == "offline"
        assert warned_at and timeout * 0.9 <= warned_at[0] - started <= timeout * 1.1
    finally:
        finish_wandb([logger])
        server.close()


def test_every_rank_of_one_launch_derives_the_same_run_id():
    from lightning_dims.runs.identity import launcher_key

    fresh = new_run_id("resnet18", "mnist", 500, 1, now=0)
    torchrun = {"WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "abc", "RANK": "1"}
    srun = {"SLURM_NTASKS": "4", "SLURM_JOB_ID": "77", "SLURM_ARRAY_TASK_ID": "3", "SLURM_STEP_ID": "0"}
    assert resolve_run_id(None, fresh, torchrun) == resolve_run_id(None, new_run_id("resnet18", "mnist", 500, 1), torchrun)
    assert resolve_run_id(None, fresh, torchrun).startswith("resnet18-mnist-n500-s1-torchrun")
    assert resolve_run_id(None, fresh, srun) == "resnet18-mnist-n500-s1-slurm77_3.0"
    assert launcher_key({"SLURM_NTASKS": "1", "SLURM_JOB_ID": "77"}) is None  # one task: a fresh id
    # torchrun --rdzv-backend c10d without --rdzv-id: every rank sees TORCHELASTIC_RUN_ID=none and the same store
    unnamed = {"WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "none", "MASTER_ADDR": "node1", "MASTER_PORT": "40235"}
    ranks = [unnamed | {"RANK": str(r), "LOCAL_RANK": str(r), "TORCHELASTIC_ERROR_FILE": f"/tmp/x/{r}/error.json"} for r in (0, 1)]
    argv = ["fit", "--model.arch", "resnet18"]
    rank0, rank1 = (resolve_run_id(None, new_run_id("resnet18", "mnist", 500, 1), env, argv) for env in ranks)
    assert rank0 == rank1 and rank0.startswith("resnet18-mnist-n500-s1-torchrun")
    assert resolve_run_id(None, fresh, unnamed | {"MASTER_PORT": "40236"}, argv) != rank0  # the next launch: a new run
    assert resolve_run_id(None, fresh, unnamed, [*argv, "--data.seed", "2"]) != rank0  # another job on the same store
    agent = {"WANDB_SWEEP_ID": "s", "WANDB_RUN_ID": "w1ld"} | torchrun
    assert resolve_run_id(None, fresh, agent) == "w1ld"  # the agent's W&B run id wins over the launcher
    assert resolve_run_id("mine", fresh, agent) == "mine"


def test_wandb_runs_are_organised_by_task_unless_told_otherwise():
    from lightning_dims.tracking.run import WandbOptions, organised

    facts = {"dataset": "mnist", "domain": "natural", "arch": "vgg13", "task": "mnist-3v8"}
    default = organised(WandbOptions(), facts, environ={})
    assert (default.group, default.job_type, default.tags) == ("mnist-3v8", "fit", ["mnist", "natural", "vgg13", "mnist-3v8"])
    assert default.save_code is True
    sweep = organised(WandbOptions(tags=["mine", "mnist"]), facts, environ={"WANDB_RUN_GROUP": "paper", "WANDB_TAGS": "a, b"})
    assert (sweep.group, sweep.tags) == ("paper", ["mnist", "natural", "vgg13", "mnist-3v8", "a", "b", "mine"])
    asked = organised(WandbOptions(group="g", job_type="evaluate"), facts, environ={"WANDB_RUN_GROUP": "paper", "WANDB_JOB_TYPE": "x"})
    assert (asked.group, asked.job_type) == ("g", "evaluate")
